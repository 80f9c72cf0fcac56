//! The DynamoDB adapter of every store port, on one table (see `keys.rs`).
//!
//! Exactly-once is the table's job: a booking, its note and its notification are one
//! `TransactWriteItems` guarded by conditions; a prospect and its email claim are created
//! together; notes are appended with `list_append`; every other read-modify-write carries an
//! `item_version` condition. `TransactionConflict` and throttling are retried with jittered
//! backoff, a bounded number of times.

pub mod item;
pub mod keys;
pub mod table;

mod booking;
mod booking_context;
mod commit_items;
mod grant;
pub use grant::actions_of;
mod connection;
mod integration;
mod ledger;
mod notification;
mod oauth_state;
mod organization;
mod privacy;
mod prospect;
mod quota;
mod rate_limit;
mod routing;
mod schedule;
mod shapes;
mod sync_job;

use crate::domain::{Integration, OrganizationId};
use crate::store::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};
use item::{Item, from_item, get_n, n, s, to_item};
use keys::*;
use shapes::*;
use std::collections::HashMap;
use std::sync::Arc;
#[cfg(feature = "request-metrics")]
use std::sync::atomic::{AtomicU64, Ordering};

/// How many times a write is retried after a transaction conflict or throttling.
const MAX_ATTEMPTS: u32 = 10;
/// Attribute guarding read-modify-writes of organizations, integrations and prospects.
const ITEM_VERSION: &str = "item_version";

/// Whether requests ask DynamoDB for their consumed capacity (with `request-metrics` only).
#[cfg(feature = "request-metrics")]
const CONSUMED_CAPACITY: Option<ReturnConsumedCapacity> = Some(ReturnConsumedCapacity::Total);
#[cfg(not(feature = "request-metrics"))]
const CONSUMED_CAPACITY: Option<ReturnConsumedCapacity> = None;

/// Requests and consumed capacity, for the benchmarks and the cost figures of `docs/PERFORMANCE.md`
/// (`request-metrics` feature: the functions are built without it).
#[cfg(feature = "request-metrics")]
#[derive(Debug, Default)]
pub struct DynamoMetrics {
    /// Read requests (get, query, batch get).
    pub reads: AtomicU64,
    /// Single-item write requests (put, update, delete).
    pub writes: AtomicU64,
    /// Transactions (`TransactWriteItems`).
    pub transactions: AtomicU64,
    /// Consumed capacity units × 1000 (as DynamoDB reports them).
    pub capacity_milli: AtomicU64,
}

#[cfg(feature = "request-metrics")]
impl DynamoMetrics {
    /// `(reads, writes, transactions, capacity units)` so far.
    pub fn snapshot(&self) -> (u64, u64, u64, f64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
            self.transactions.load(Ordering::Relaxed),
            self.capacity_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }
}

/// The production store.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How many parts the due index is spread over (`DUE_SHARDS`).
    due_shards: u16,
    /// The sync job items this process wrote or read last, by partition key: the next change
    /// of one starts from it instead of reading it (a worker's start read, progress and end
    /// are one read and two writes, not two of each). Only ever a first guess: the write is
    /// conditional on its version, and a guess that fails, or that the change refuses, is
    /// read afresh.
    known_jobs: std::sync::Arc<std::sync::Mutex<HashMap<String, Item>>>,
    /// The IAM actions the function using this store is granted (`None`: not checked here;
    /// IAM checks them on AWS, and the local stack gives each function a store that refuses
    /// what the function's grant leaves out, as IAM would).
    granted: Option<Arc<[&'static str]>>,
    /// The actions refused by a grant so far (every clone's): a refusal a caller only logs
    /// still shows here.
    denied: Arc<std::sync::Mutex<Vec<&'static str>>>,
    #[cfg(feature = "request-metrics")]
    metrics: Arc<DynamoMetrics>,
}

enum Kind {
    Read,
    Write,
    Transaction,
}

/// DynamoDB's errors by kind: only throttling and conflicts are worth retrying; a refused
/// request or a wrong deployment keeps its error code for the logs.
fn error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = || format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or_default());
    if matches!(
        e.code(),
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded")
    ) {
        crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::DynamoThrottles, None, 1);
    }
    match e.code() {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TransactionConflictException"
            | "TransactionInProgressException",
        ) => StoreError::Throttled,
        Some("ValidationException" | "ItemCollectionSizeLimitExceededException") => StoreError::Rejected(detail()),
        Some(
            "AccessDeniedException"
            | "ResourceNotFoundException"
            | "UnrecognizedClientException"
            | "MissingAuthenticationTokenException"
            | "InvalidSignatureException"
            | "ExpiredTokenException",
        ) => StoreError::Misconfigured(detail()),
        _ => StoreError::Unavailable(Box::new(e)),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn build<T, E: std::error::Error + Send + Sync + 'static>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::RequestBuild(Box::new(e)))
}

async fn backoff(attempt: u32) {
    let mut jitter = [0u8; 1];
    crate::crypto::fill_random(&mut jitter);
    let base = 20u64 << attempt.min(5);
    tokio::time::sleep(std::time::Duration::from_millis(base + u64::from(jitter[0]) % base)).await;
}

/// Which transaction item failed its condition, or whether it was only a conflict.
enum Cancelled {
    Condition(usize),
    Retry,
}

impl DynamoStore {
    /// A store over `client` and `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            due_shards: super::DEFAULT_DUE_SHARDS,
            known_jobs: std::sync::Arc::default(),
            granted: None,
            denied: Arc::default(),
            #[cfg(feature = "request-metrics")]
            metrics: Arc::default(),
        }
    }

    /// The same store with its due index spread over `shards` parts (`DUE_SHARDS`). Raise it
    /// only: an integration stays in its part until its next write, and a part above the new
    /// count would no longer be read.
    pub fn with_due_shards(mut self, shards: u16) -> Self {
        self.due_shards = shards.max(1);
        self
    }

    /// The SDK client (table creation in tests and the local stack).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    #[cfg(feature = "request-metrics")]
    /// Requests and capacity so far.
    pub fn metrics(&self) -> &DynamoMetrics {
        &self.metrics
    }

    #[cfg(feature = "request-metrics")]
    /// The billed size of `org`'s item `sk` (e.g. `CALENDLY`, `SYNCJOB`), if there is one: what
    /// a write of it costs (benchmarks).
    pub async fn billed_item_size(&self, org: &OrganizationId, sk: &str) -> Result<Option<usize>, StoreError> {
        Ok(self.get(keys::org_pk(org), sk).await?.as_ref().map(item::billed_size))
    }

    #[cfg(feature = "request-metrics")]
    /// The same table through a store of its own (its own counts and job guesses): what a
    /// benchmark reads to watch does not count in what it measures.
    pub fn observer(&self) -> Self {
        Self { known_jobs: std::sync::Arc::default(), metrics: Arc::default(), ..self.clone() }
    }

    #[cfg(not(feature = "request-metrics"))]
    fn record(&self, _kind: Kind, _capacity: Option<f64>) {}

    #[cfg(feature = "request-metrics")]
    fn record(&self, kind: Kind, capacity: Option<f64>) {
        let counter = match kind {
            Kind::Read => &self.metrics.reads,
            Kind::Write => &self.metrics.writes,
            Kind::Transaction => &self.metrics.transactions,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(units) = capacity {
            self.metrics.capacity_milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    fn key(pk: String, sk: &str) -> Item {
        HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        self.may("dynamodb:GetItem")?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .set_return_consumed_capacity(CONSUMED_CAPACITY)
            .send()
            .await
            .map_err(error)?;
        self.record(Kind::Read, out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(out.item)
    }

    async fn put(&self, item: Item, condition: Option<(&str, Item)>) -> Result<bool, StoreError> {
        self.may("dynamodb:PutItem")?;
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        if let Some((expression, values)) = condition {
            request = request.condition_expression(expression);
            if !values.is_empty() {
                request = request.set_expression_attribute_values(Some(values));
            }
        }
        let result = request.set_return_consumed_capacity(CONSUMED_CAPACITY).send().await;
        let capacity = result.as_ref().ok().and_then(|out| out.consumed_capacity()).and_then(|c| c.capacity_units());
        self.conditional_write(result, capacity)
    }

    /// One conditional `UpdateItem` (an empty `condition`: none): `true` when applied, `false`
    /// when the condition failed; counted in the metrics either way. Every single-item update
    /// goes through here or `update_returning`.
    async fn update_if(
        &self,
        key: Item,
        update: impl Into<String>,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<bool, StoreError> {
        Ok(self.update_item(key, update.into(), condition, names, values, false).await?.is_some())
    }

    /// `update_if`, answering the item as written (`None`: the condition failed).
    async fn update_returning(
        &self,
        key: Item,
        update: impl Into<String>,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
    ) -> Result<Option<Item>, StoreError> {
        Ok(self.update_item(key, update.into(), condition, names, values, true).await?.map(Option::unwrap_or_default))
    }

    async fn update_item(
        &self,
        key: Item,
        update: String,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
        return_new: bool,
    ) -> Result<Option<Option<Item>>, StoreError> {
        self.may("dynamodb:UpdateItem")?;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression((!condition.is_empty()).then(|| condition.to_string()))
            // DynamoDB refuses an empty map here: none is sent when the update names no value.
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .set_return_consumed_capacity(CONSUMED_CAPACITY);
        if return_new {
            request = request.return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        }
        for (name, attribute) in names {
            request = request.expression_attribute_names(*name, *attribute);
        }
        let result = request.send().await;
        let capacity = result.as_ref().ok().and_then(|out| out.consumed_capacity()).and_then(|c| c.capacity_units());
        let written = result.as_ref().ok().map(|out| out.attributes.clone());
        Ok(self.conditional_write(result, capacity)?.then(|| written.flatten()))
    }

    /// A conditional write's outcome: `true` when applied, `false` when its condition failed,
    /// counted in the metrics either way.
    fn conditional_write<O, E, R>(
        &self,
        result: Result<O, SdkError<E, R>>,
        capacity: Option<f64>,
    ) -> Result<bool, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match result {
            Ok(_) => {
                self.record(Kind::Write, capacity);
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => {
                self.record(Kind::Write, None);
                Ok(false)
            }
            Err(e) => Err(error(e)),
        }
    }

    /// Runs a transaction, retrying conflicts and throttling; reports a failed condition.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Result<(), usize>, StoreError> {
        self.may_transact(&items)?;
        for attempt in 0..MAX_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .set_return_consumed_capacity(CONSUMED_CAPACITY)
                .send()
                .await;
            let cancelled = match result {
                Ok(out) => {
                    let units = out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum::<f64>();
                    self.record(Kind::Transaction, Some(units));
                    return Ok(Ok(()));
                }
                Err(e) => {
                    self.record(Kind::Transaction, None);
                    let reasons = e
                        .as_service_error()
                        .and_then(|s| match s {
                            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => Some(t),
                            _ => None,
                        })
                        .map(|t| t.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect::<Vec<_>>());
                    match reasons {
                        Some(codes) => match codes.iter().position(|c| c == "ConditionalCheckFailed") {
                            Some(index) => Cancelled::Condition(index),
                            None => {
                                crate::telemetry::metrics::count(
                                    crate::telemetry::metrics::Metric::DynamoConflictsRetried,
                                    None,
                                    1,
                                );
                                Cancelled::Retry
                            }
                        },
                        None => match error(e) {
                            StoreError::Throttled => Cancelled::Retry,
                            other => return Err(other),
                        },
                    }
                }
            };
            match cancelled {
                Cancelled::Condition(index) => return Ok(Err(index)),
                Cancelled::Retry => backoff(attempt).await,
            }
        }
        Err(StoreError::Throttled)
    }

    /// Queries a partition (or an index partition) page by page.
    async fn query(
        &self,
        query: Query<'_>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        self.may("dynamodb:Query")?;
        let (pk_name, sk_name) = match query.index {
            Some(index) => (index.pk, index.sk),
            None => (PK, SK),
        };
        let mut condition = "#pk = :pk".to_string();
        let mut names = HashMap::from([("#pk".to_string(), pk_name.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), s(query.partition.clone()))]);
        // One condition on the sort key at the most: a prefix up to a bound is a range.
        match (query.sk_prefix, &query.sk_at_most) {
            (Some(prefix), Some(upper)) => {
                condition.push_str(" AND #sk BETWEEN :prefix AND :upper");
                values.insert(":prefix".into(), s(prefix));
                values.insert(":upper".into(), s(upper.clone()));
            }
            (Some(prefix), None) => {
                condition.push_str(" AND begins_with(#sk, :prefix)");
                values.insert(":prefix".into(), s(prefix));
            }
            (None, Some(upper)) => {
                condition.push_str(" AND #sk <= :upper");
                values.insert(":upper".into(), s(upper.clone()));
            }
            (None, None) => {}
        }
        if query.sk_prefix.is_some() || query.sk_at_most.is_some() {
            names.insert("#sk".into(), sk_name.into());
        }
        let start = decode_cursor(cursor, pk_name, &query.partition)?;
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!query.newest_first)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .set_return_consumed_capacity(CONSUMED_CAPACITY);
        if let Some(index) = query.index {
            request = request.index_name(index.name);
        } else {
            request = request.consistent_read(true);
        }
        let out = request.send().await.map_err(error)?;
        self.record(Kind::Read, out.consumed_capacity().and_then(|c| c.capacity_units()));
        let next = out.last_evaluated_key.as_ref().map(encode_cursor);
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Every item of a query (all pages).
    async fn query_all(&self, query: Query<'_>) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (items, next) = self.query(query.clone(), 1000, cursor.as_deref()).await?;
            all.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Reads, changes and conditionally writes back an item guarded by `item_version`.
    async fn update_versioned<T, R>(
        &self,
        pk: String,
        sk: &str,
        keys: impl Fn(&T) -> Vec<(&'static str, String)>,
        change: impl Fn(Option<T>) -> Result<Option<(T, R)>, StoreError>,
    ) -> Result<Option<R>, StoreError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let remembered = sk == SYNC_JOB_SK;
        let mut guess = if remembered { self.known_job(&pk) } else { None };
        for attempt in 0..MAX_ATTEMPTS {
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(item) => Some(item),
                None => self.get(pk.clone(), sk).await?,
            };
            let version = current.as_ref().and_then(|i| get_n(i, ITEM_VERSION));
            let value = current.as_ref().map(from_item::<T>).transpose()?;
            let Some((updated, result)) = change(value)? else {
                if guessed {
                    // Refused on what this process last wrote: decide again on what is stored.
                    self.forget_job(&pk);
                    continue;
                }
                return Ok(None);
            };
            let mut item_keys = vec![(PK, pk.clone()), (SK, sk.to_string())];
            item_keys.extend(keys(&updated));
            let mut item = to_item(&updated, &item_keys)?;
            item.insert(ITEM_VERSION.into(), n(version.unwrap_or(0) + 1));
            let mut condition = match version {
                Some(v) => ("item_version = :v", HashMap::from([(":v".to_string(), n(v))])),
                None => ("attribute_not_exists(pk)", HashMap::new()),
            };
            // A guessed job must still be that job: a deleted and re-created one starts its
            // versions over.
            if let (true, Some(id)) = (guessed, current.as_ref().and_then(|i| i.get("id")).cloned()) {
                condition.0 = "item_version = :v AND id = :id";
                condition.1.insert(":id".to_string(), id);
            }
            let written = remembered.then(|| item.clone());
            if self.put(item, Some(condition)).await? {
                if let Some(item) = written {
                    self.remember_job(pk, item);
                }
                return Ok(Some(result));
            }
            if remembered {
                self.forget_job(&pk);
            }
            if !guessed {
                backoff(attempt).await;
            }
        }
        Err(StoreError::Conflict("the item kept changing under concurrent writers".into()))
    }

    fn known_job(&self, pk: &str) -> Option<Item> {
        self.known_jobs.lock().unwrap_or_else(|e| e.into_inner()).get(pk).cloned()
    }

    pub(super) fn remember_job(&self, pk: String, item: Item) {
        let mut jobs = self.known_jobs.lock().unwrap_or_else(|e| e.into_inner());
        // A scheduled tick or a busy worker meets many organizations: keep the last few hundred.
        if jobs.len() >= 512 {
            jobs.clear();
        }
        jobs.insert(pk, item);
    }

    fn forget_job(&self, pk: &str) {
        self.known_jobs.lock().unwrap_or_else(|e| e.into_inner()).remove(pk);
    }

    async fn update_integration(
        &self,
        org: &OrganizationId,
        change: impl Fn(&mut Integration) -> bool,
    ) -> Result<bool, StoreError> {
        let written = self
            .update_versioned(org_pk(org), INTEGRATION_SK, integration_index_keys, |current: Option<Integration>| {
                let Some(mut integration) = current else { return Ok(None) };
                let before = integration.next_sync_at;
                Ok(change(&mut integration).then(|| {
                    let moved = integration.next_sync_at != before;
                    (integration.clone(), (integration, moved))
                }))
            })
            .await?;
        let Some((integration, moved)) = written else { return Ok(false) };
        // Its schedule item follows every write (the settings, the health; the due time when
        // this write moved it).
        self.keep_schedule(&integration, moved).await?;
        Ok(true)
    }
}
