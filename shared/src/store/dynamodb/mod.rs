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

use super::*;
use crate::domain::booking::ProspectChange;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem, Update,
};
use item::{Item, from_item, get_n, get_s, n, s, to_item};
use keys::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many times a write is retried after a transaction conflict or throttling.
const MAX_ATTEMPTS: u32 = 10;
/// Attribute guarding read-modify-writes of organizations, integrations and prospects.
const ITEM_VERSION: &str = "item_version";

/// Requests and consumed capacity, for the benchmarks and the README's cost figures.
#[derive(Debug, Default)]
pub struct DynamoMetrics {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub transactions: AtomicU64,
    /// Consumed capacity units × 1000 (as DynamoDB reports them).
    pub capacity_milli: AtomicU64,
}

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
    metrics: Arc<DynamoMetrics>,
}

enum Kind {
    Read,
    Write,
    Transaction,
}

/// DynamoDB's errors by kind: only throttling and conflicts are worth retrying; a refused
/// request or a wrong deployment keeps its error code for the logs.
fn error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    let detail = || format!("{}: {}", e.code().unwrap_or("unknown"), e.message().unwrap_or_default());
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
        _ => StoreError::Unavailable(DisplayErrorContext(e).to_string()),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Corrupt(format!("request build: {e}")))
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
        Self { client, table: table.into(), metrics: Arc::default() }
    }

    /// A client from the environment (`AWS_ENDPOINT_URL_DYNAMODB` points it anywhere).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        Self::new(Client::new(&shared), table)
    }

    /// The SDK client (table creation in tests and the local stack).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Requests and capacity so far.
    pub fn metrics(&self) -> &DynamoMetrics {
        &self.metrics
    }

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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(error)?;
        self.record(Kind::Read, out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(out.item)
    }

    async fn put(&self, item: Item, condition: Option<(&str, Item)>) -> Result<bool, StoreError> {
        let mut request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        if let Some((expression, values)) = condition {
            request = request.condition_expression(expression);
            if !values.is_empty() {
                request = request.set_expression_attribute_values(Some(values));
            }
        }
        match request.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await {
            Ok(out) => {
                self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
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
        for attempt in 0..MAX_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
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
                            None => Cancelled::Retry,
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
        let (pk_name, sk_name) = match query.index {
            Some(index) => (index.pk, index.sk),
            None => (PK, SK),
        };
        let mut condition = "#pk = :pk".to_string();
        let mut names = HashMap::from([("#pk".to_string(), pk_name.to_string())]);
        let mut values = HashMap::from([(":pk".to_string(), s(query.partition.clone()))]);
        if let Some(prefix) = query.sk_prefix {
            condition.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".into(), sk_name.into());
            values.insert(":prefix".into(), s(prefix));
        }
        if let Some(upper) = &query.sk_at_most {
            condition.push_str(" AND #sk <= :upper");
            names.insert("#sk".into(), sk_name.into());
            values.insert(":upper".into(), s(upper.clone()));
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
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
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
        for attempt in 0..MAX_ATTEMPTS {
            let current = self.get(pk.clone(), sk).await?;
            let version = current.as_ref().and_then(|i| get_n(i, ITEM_VERSION));
            let value = current.as_ref().map(from_item::<T>).transpose()?;
            let Some((updated, result)) = change(value)? else { return Ok(None) };
            let mut item_keys = vec![(PK, pk.clone()), (SK, sk.to_string())];
            item_keys.extend(keys(&updated));
            let mut item = to_item(&updated, &item_keys)?;
            item.insert(ITEM_VERSION.into(), n(version.unwrap_or(0) + 1));
            let condition = match version {
                Some(v) => ("item_version = :v", HashMap::from([(":v".to_string(), n(v))])),
                None => ("attribute_not_exists(pk)", HashMap::new()),
            };
            if self.put(item, Some(condition)).await? {
                return Ok(Some(result));
            }
            backoff(attempt).await;
        }
        Err(StoreError::Conflict("the item kept changing under concurrent writers".into()))
    }

    async fn update_integration(
        &self,
        org: &OrganizationId,
        change: impl Fn(&mut Integration) -> bool,
    ) -> Result<bool, StoreError> {
        let changed = self
            .update_versioned(org_pk(org), INTEGRATION_SK, integration_index_keys, |current: Option<Integration>| {
                let Some(mut integration) = current else { return Ok(None) };
                Ok(change(&mut integration).then_some((integration, ())))
            })
            .await?;
        Ok(changed.is_some())
    }
}

/// One query's partition and range.
#[derive(Clone)]
struct Query<'a> {
    index: Option<keys::Index>,
    partition: String,
    sk_prefix: Option<&'a str>,
    sk_at_most: Option<String>,
    newest_first: bool,
}

impl Query<'_> {
    fn partition(partition: String) -> Self {
        Self { index: None, partition, sk_prefix: None, sk_at_most: None, newest_first: false }
    }
    fn index(index: keys::Index, partition: String) -> Self {
        Self { index: Some(index), ..Self::partition(partition) }
    }
}

/// Cursors carry DynamoDB's `LastEvaluatedKey`, opaque to callers.
fn encode_cursor(key: &Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), serde_json::Value::String(s.clone()))))
        .collect();
    cursor::encode(&serde_json::Value::Object(map).to_string())
}

/// A cursor may only continue the partition it came from: no reading across tenants.
fn decode_cursor(cursor: Option<&str>, pk_name: &str, partition: &str) -> Result<Option<Item>, StoreError> {
    let Some(raw) = cursor::decode(cursor)? else { return Ok(None) };
    let map: HashMap<String, String> = serde_json::from_str(&raw).map_err(|_| StoreError::InvalidCursor)?;
    if map.get(pk_name).map(String::as_str) != Some(partition) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(Some(map.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

fn integration_index_keys(i: &Integration) -> Vec<(&'static str, String)> {
    let mut keys = vec![(GSI1.pk, integration_gsi1pk(&i.id)), (GSI1.sk, "INTEGRATION".to_string())];
    if i.is_active {
        keys.push((GSI2.pk, calendly_user_gsi2pk(&i.calendly_user_uri)));
        keys.push((GSI2.sk, i.organization_id.to_string()));
    }
    // Every healthy integration is on the schedule: auto-sync off still gets its daily
    // webhook subscription check (see `jobs.rs`).
    if i.is_active && !i.needs_reconnect {
        let next = i.next_sync_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        keys.push((GSI3.pk, DUE_GSI3PK.to_string()));
        keys.push((GSI3.sk, time_sort_key(next, i.organization_id.as_str())));
    }
    keys
}

fn prospect_keys(p: &Prospect) -> Vec<(&'static str, String)> {
    let order = time_sort_key(p.created_at, p.id.as_str());
    vec![
        (PK, org_pk(&p.organization_id)),
        (SK, prospect_sk(p.id.as_str())),
        (GSI1.pk, prospects_gsi1pk(&p.organization_id)),
        (GSI1.sk, order.clone()),
        (GSI2.pk, prospects_by_source_gsi2pk(&p.organization_id, &p.source)),
        (GSI2.sk, order),
    ]
}

fn claim_item(org: &OrganizationId, email_key: &str, prospect: &ProspectId) -> Item {
    HashMap::from([
        (PK.to_string(), s(org_pk(org))),
        (SK.to_string(), s(email_sk(email_key))),
        ("prospect_id".to_string(), s(prospect.as_str())),
    ])
}

fn put_item(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, StoreError> {
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(String::from))
            .set_expression_attribute_values(values)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete_item(
    table: &str,
    key: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, StoreError> {
    let delete = build(
        Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .set_condition_expression(condition.map(String::from))
            .set_expression_attribute_values(values)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn ttl_of(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp())
}

#[async_trait]
impl OrganizationStore for DynamoStore {
    async fn get_organization(&self, org: &OrganizationId) -> Result<Organization, StoreError> {
        let settings = match self.get(org_pk(org), ORG_SK).await? {
            Some(item) => from_item::<Organization>(&item)?.settings,
            None => Map::new(),
        };
        Ok(Organization { id: org.clone(), settings })
    }

    async fn merge_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<Organization, StoreError> {
        let updated = self
            .update_versioned(
                org_pk(org),
                ORG_SK,
                |_| Vec::new(),
                |current: Option<Organization>| {
                    let mut organization = current.unwrap_or(Organization { id: org.clone(), settings: Map::new() });
                    crate::domain::merge_settings(&mut organization.settings, patch);
                    Ok(Some((organization.clone(), organization)))
                },
            )
            .await?;
        updated.ok_or(StoreError::NotFound)
    }

    async fn merge_calendly_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.update_versioned(
            org_pk(org),
            ORG_SK,
            |_| Vec::new(),
            |current: Option<Organization>| {
                let mut organization = current.unwrap_or(Organization { id: org.clone(), settings: Map::new() });
                crate::domain::merge_calendly_settings(&mut organization.settings, patch);
                Ok(Some((organization, ())))
            },
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl OAuthStateStore for DynamoStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        let mut item = to_item(state, &[(PK, oauth_state_pk(&state.state)), (SK, OAUTH_STATE_SK.to_string())])?;
        item.insert(TTL.into(), ttl_of(state.expires_at));
        self.put(item, None).await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state: &str,
        org: &OrganizationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<StateTake, StoreError> {
        // Delete-and-return is atomic: of two callbacks racing with one state, one gets it; the
        // condition leaves a state someone else started where it is (nothing burnt).
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(oauth_state_pk(state), OAUTH_STATE_SK)))
            .condition_expression("attribute_not_exists(pk) OR (organization_id = :org AND user_id = :user)")
            .expression_attribute_values(":org", s(org.as_str()))
            .expression_attribute_values(":user", s(user.as_str()))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if is_condition_failure(&e) => {
                self.record(Kind::Write, None);
                return Ok(StateTake::NotYours);
            }
            Err(e) => return Err(error(e)),
        };
        self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
        let Some(item) = out.attributes else { return Ok(StateTake::Absent) };
        Ok(match from_item::<OAuthState>(&item)?.clone() {
            taken if taken.expires_at > now => StateTake::Taken(taken),
            _ => StateTake::Absent,
        })
    }
}

#[async_trait]
impl IntegrationStore for DynamoStore {
    async fn get_integration(&self, org: &OrganizationId) -> Result<Option<Integration>, StoreError> {
        self.get(org_pk(org), INTEGRATION_SK).await?.map(|i| from_item(&i)).transpose()
    }

    async fn get_integration_by_id(&self, id: &IntegrationId) -> Result<Option<Integration>, StoreError> {
        let (items, _) = self.query(Query::index(GSI1, integration_gsi1pk(id)), 1, None).await?;
        items.first().map(from_item).transpose()
    }

    async fn find_integration_by_calendly_user(&self, user_uri: &str) -> Result<Option<Integration>, StoreError> {
        let (items, _) = self.query(Query::index(GSI2, calendly_user_gsi2pk(user_uri)), 1, None).await?;
        items.first().map(from_item).transpose()
    }

    async fn save_connected_integration(&self, integration: Integration) -> Result<Integration, StoreError> {
        let org = integration.organization_id.clone();
        let saved = self
            .update_versioned(org_pk(&org), INTEGRATION_SK, integration_index_keys, |previous: Option<Integration>| {
                let mut next = integration.clone();
                if let Some(previous) = previous {
                    next.token_version = next.token_version.max(previous.token_version + 1);
                    next.created_at = previous.created_at;
                }
                Ok(Some((next.clone(), next)))
            })
            .await?;
        saved.ok_or(StoreError::NotFound)
    }

    async fn claim_calendly_user(
        &self,
        user_uri: &str,
        org: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claim = |owner: &OrganizationId| -> Item {
            HashMap::from([
                (PK.to_string(), s(calendly_user_pk(user_uri))),
                (SK.to_string(), s(CALENDLY_USER_OWNER_SK)),
                ("organization_id".to_string(), s(owner.as_str())),
                ("claimed_at_ms".to_string(), n(now.timestamp_millis())),
            ])
        };
        let ours = HashMap::from([(":org".to_string(), s(org.as_str()))]);
        if self.put(claim(org), Some(("attribute_not_exists(pk) OR organization_id = :org", ours))).await? {
            return Ok(true);
        }
        // Held by another organization: it keeps it while its connect is under way or its
        // integration is active on this user; a claim left behind is taken over, but only
        // from that owner, so of two organizations racing for it one wins.
        let Some(item) = self.get(calendly_user_pk(user_uri), CALENDLY_USER_OWNER_SK).await? else {
            return Ok(false);
        };
        let owner = OrganizationId::new(get_s(&item, "organization_id").unwrap_or_default());
        let claimed_at = get_n(&item, "claimed_at_ms").and_then(DateTime::<Utc>::from_timestamp_millis);
        if claimed_at.is_none_or(|at| now - at < CLAIM_SETTLES) {
            return Ok(false);
        }
        let held = self.get_integration(&owner).await?.is_some_and(|i| i.is_active && i.calendly_user_uri == user_uri);
        if held {
            return Ok(false);
        }
        let theirs = HashMap::from([(":owner".to_string(), s(owner.as_str()))]);
        self.put(claim(org), Some(("organization_id = :owner", theirs))).await
    }

    async fn release_calendly_user(&self, user_uri: &str, org: &OrganizationId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(calendly_user_pk(user_uri), CALENDLY_USER_OWNER_SK)))
            .condition_expression("organization_id = :org")
            .expression_attribute_values(":org", s(org.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(error(e)),
        }
    }

    async fn try_acquire_refresh_lease(
        &self,
        org: &OrganizationId,
        token_version: u64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // One conditional update, so twenty Lambdas asking at once cost one write each and
        // exactly one wins, without read-modify-write retries.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), INTEGRATION_SK)))
            .update_expression("SET refresh_lease_until = :until, lease_until_ms = :until_ms ADD item_version :one")
            .condition_expression(
                "token_version = :v AND (attribute_not_exists(lease_until_ms) OR attribute_type(refresh_lease_until, :null) OR lease_until_ms <= :now_ms)",
            )
            .set_expression_attribute_values(Some(HashMap::from([
                (":until".to_string(), item::to_attribute(&serde_json::to_value(until).unwrap_or_default())),
                (":until_ms".to_string(), n(until.timestamp_millis())),
                (":now_ms".to_string(), n(now.timestamp_millis())),
                (":v".to_string(), n(token_version)),
                (":null".to_string(), s("NULL")),
                (":one".to_string(), n(1)),
            ])))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => {
                self.record(Kind::Write, None);
                Ok(false)
            }
            Err(e) => Err(error(e)),
        }
    }

    async fn store_refreshed_tokens(
        &self,
        org: &OrganizationId,
        expected_version: u64,
        tokens: TokenUpdate,
    ) -> Result<bool, StoreError> {
        self.update_integration(org, |i| i.store_refreshed_tokens(expected_version, &tokens)).await
    }

    async fn release_refresh_lease(&self, org: &OrganizationId, token_version: u64) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.release_refresh_lease(token_version)).await?;
        Ok(())
    }

    async fn mark_needs_reconnect(&self, org: &OrganizationId, token_version: u64) -> Result<bool, StoreError> {
        self.update_integration(org, |i| i.mark_needs_reconnect(token_version)).await
    }

    async fn record_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // A plain update: concurrent syncs of one integration must not contend on it. The due
        // index's sort key moves with it (it only counts while the index's hash key is there).
        let at = |t: DateTime<Utc>| item::to_attribute(&serde_json::to_value(t).unwrap_or_default());
        let mut values = HashMap::from([
            (":next".to_string(), at(next_sync_at)),
            (":due".to_string(), s(time_sort_key(next_sync_at, org.as_str()))),
            (":one".to_string(), n(1)),
        ]);
        let mut set = "SET next_sync_at = :next, #due = :due".to_string();
        if let Some(synced_at) = synced_at {
            set.push_str(", last_synced_at = :last");
            values.insert(":last".to_string(), at(synced_at));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), INTEGRATION_SK)))
            .update_expression(format!("{set} ADD item_version :one"))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#due", GSI3.sk)
            .set_expression_attribute_values(Some(values))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(())
            }
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(error(e)),
        }
    }

    async fn update_sync_settings(
        &self,
        org: &OrganizationId,
        auto_sync_enabled: bool,
        interval_minutes: u32,
        next_sync_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let found = self
            .update_integration(org, |i| {
                i.apply_sync_settings(auto_sync_enabled, interval_minutes, next_sync_at);
                true
            })
            .await?;
        if found { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn set_booking_filter(&self, org: &OrganizationId, filter: &BookingFilter) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_filter(filter.clone())).await?;
        Ok(())
    }

    async fn set_webhook(
        &self,
        org: &OrganizationId,
        subscription_uri: Option<String>,
        active: bool,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_webhook(subscription_uri.clone(), active, error.clone())).await?;
        Ok(())
    }

    async fn deactivate_integration(&self, org: &OrganizationId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_integration(org, |i| {
            i.deactivate(now);
            true
        })
        .await?;
        Ok(())
    }

    async fn list_due_integrations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Integration>, StoreError> {
        let query = Query {
            sk_at_most: Some(format!("{:020}#~", now.timestamp_micros())),
            ..Query::index(GSI3, DUE_GSI3PK.to_string())
        };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl BookingStore for DynamoStore {
    async fn get_booking(&self, org: &OrganizationId, invitee_uuid: &str) -> Result<Option<Booking>, StoreError> {
        self.get(org_pk(org), &booking_sk(invitee_uuid)).await?.map(|i| from_item(&i)).transpose()
    }

    async fn commit_booking(&self, plan: &BookingPlan) -> Result<(), CommitError> {
        let booking = &plan.booking;
        let org = &booking.organization_id;
        let table = self.table.as_str();
        let mut items = Vec::new();

        let booking_item = to_item(
            booking,
            &[
                (PK, org_pk(org)),
                (SK, booking_sk(booking.id())),
                (GSI1.pk, bookings_gsi1pk(org)),
                (GSI1.sk, time_sort_key(booking.details.start_time, booking.id())),
            ],
        )?;
        items.push(match plan.expected_revision {
            None => put_item(table, booking_item, Some("attribute_not_exists(pk)"), None)?,
            Some(r) => {
                put_item(table, booking_item, Some("revision = :r"), Some(HashMap::from([(":r".into(), n(r))])))?
            }
        });
        let mut claim_index = None;
        let mut append_index = None;
        match &plan.prospect {
            ProspectChange::Create(p) => {
                let mut item = to_item(p, &prospect_keys(p))?;
                item.insert(ITEM_VERSION.into(), n(1));
                items.push(put_item(table, item, Some("attribute_not_exists(pk)"), None)?);
                if let Some(email) = &p.email {
                    claim_index = Some(items.len());
                    items.push(put_item(
                        table,
                        claim_item(org, &email.key(), &p.id),
                        Some("attribute_not_exists(pk)"),
                        None,
                    )?);
                }
            }
            ProspectChange::Append { prospect_id, notes } => {
                append_index = Some(items.len());
                let update = build(
                    Update::builder()
                        .table_name(table)
                        .set_key(Some(Self::key(org_pk(org), &prospect_sk(prospect_id.as_str()))))
                        .update_expression(
                            "SET notes = list_append(notes, :notes), updated_at = :at ADD item_version :one",
                        )
                        .condition_expression("attribute_exists(pk)")
                        .set_expression_attribute_values(Some(HashMap::from([
                            (":notes".to_string(), AttributeValue::L(notes.iter().map(|n| s(n.clone())).collect())),
                            (
                                ":at".to_string(),
                                item::to_attribute(&serde_json::to_value(booking.updated_at).unwrap_or_default()),
                            ),
                            (":one".to_string(), n(1)),
                        ])))
                        .build(),
                )?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            ProspectChange::None => {}
        }
        if let Some(notification) = &plan.notification {
            let item = to_item(notification, &[(PK, org_pk(org)), (SK, notification_sk(notification.id.as_str()))])?;
            items.push(put_item(table, item, Some("attribute_not_exists(pk)"), None)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(0) => Err(CommitConflict::BookingChanged.into()),
            Err(i) if Some(i) == claim_index => Err(CommitConflict::EmailClaimed.into()),
            Err(i) if Some(i) == append_index => Err(CommitConflict::ProspectMissing.into()),
            // A prospect or notification id collision: random ids make this a re-plan, not data loss.
            Err(_) => Err(CommitConflict::BookingChanged.into()),
        }
    }

    async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, StoreError> {
        let query = Query { newest_first: true, ..Query::index(GSI1, bookings_gsi1pk(org)) };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn event_fingerprints(
        &self,
        org: &OrganizationId,
        event_uuids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut found = HashMap::new();
        for chunk in event_uuids.chunks(100) {
            let mut keys: Vec<Item> = chunk.iter().map(|uuid| Self::key(org_pk(org), &event_sk(uuid))).collect();
            let mut attempt = 0;
            while !keys.is_empty() {
                let request =
                    build(KeysAndAttributes::builder().set_keys(Some(keys.clone())).consistent_read(true).build())?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(error)?;
                self.record(Kind::Read, Some(out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum()));
                for item in out.responses.as_ref().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let (Some(sk), Some(fp)) = (get_s(item, SK), get_s(item, "fingerprint")) {
                        found.insert(sk.trim_start_matches("EVENT#").to_string(), fp.to_string());
                    }
                }
                keys = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
                if !keys.is_empty() {
                    backoff(attempt).await;
                    attempt += 1;
                }
            }
        }
        Ok(found)
    }

    async fn put_event_fingerprint(
        &self,
        org: &OrganizationId,
        event_uuid: &str,
        fingerprint: &str,
    ) -> Result<(), StoreError> {
        let mut item = Self::key(org_pk(org), &event_sk(event_uuid));
        item.insert("fingerprint".into(), s(fingerprint));
        self.put(item, None).await?;
        Ok(())
    }
}

#[async_trait]
impl ProspectStore for DynamoStore {
    async fn get_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Option<Prospect>, StoreError> {
        self.get(org_pk(org), &prospect_sk(id.as_str())).await?.map(|i| from_item(&i)).transpose()
    }

    async fn find_prospect_by_email(
        &self,
        org: &OrganizationId,
        email_key: &str,
    ) -> Result<Option<Prospect>, StoreError> {
        let Some(claim) = self.get(org_pk(org), &email_sk(email_key)).await? else { return Ok(None) };
        let Some(id) = get_s(&claim, "prospect_id") else { return Ok(None) };
        self.get_prospect(org, &ProspectId::new(id)).await
    }

    async fn create_prospect(&self, prospect: &Prospect) -> Result<(), StoreError> {
        let org = &prospect.organization_id;
        let mut item = to_item(prospect, &prospect_keys(prospect))?;
        item.insert(ITEM_VERSION.into(), n(1));
        let mut items = vec![put_item(&self.table, item, Some("attribute_not_exists(pk)"), None)?];
        if let Some(email) = &prospect.email {
            items.push(put_item(
                &self.table,
                claim_item(org, &email.key(), &prospect.id),
                Some("attribute_not_exists(pk)"),
                None,
            )?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Conflict(format!(
                "a prospect with email {} already exists",
                prospect.email.as_ref().map(Email::as_str).unwrap_or_default()
            ))),
        }
    }

    async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
        now: DateTime<Utc>,
    ) -> Result<Prospect, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let item = self.get(org_pk(org), &prospect_sk(id.as_str())).await?.ok_or(StoreError::NotFound)?;
            let version = get_n(&item, ITEM_VERSION).unwrap_or(0);
            let current: Prospect = from_item(&item)?;
            let mut updated = current.clone();
            patch.apply_fields(&mut updated);
            if let Some(v) = &patch.email {
                updated.email = v.clone();
            }
            updated.updated_at = now;

            let mut new_item = to_item(&updated, &prospect_keys(&updated))?;
            new_item.insert(ITEM_VERSION.into(), n(version + 1));
            let mut items = vec![put_item(
                &self.table,
                new_item,
                Some("item_version = :v"),
                Some(HashMap::from([(":v".into(), n(version))])),
            )?];
            let (old_key, new_key) = (current.email.as_ref().map(Email::key), updated.email.as_ref().map(Email::key));
            let mut claim_index = None;
            if old_key != new_key {
                if let Some(k) = &new_key {
                    claim_index = Some(items.len());
                    items.push(put_item(&self.table, claim_item(org, k, id), Some("attribute_not_exists(pk)"), None)?);
                }
                if let Some(k) = &old_key {
                    items.push(delete_item(&self.table, Self::key(org_pk(org), &email_sk(k)), None, None)?);
                }
            }
            match self.transact(items).await? {
                Ok(()) => return Ok(updated),
                Err(i) if Some(i) == claim_index => {
                    return Err(StoreError::Conflict(format!(
                        "a prospect with email {} already exists",
                        new_key.unwrap_or_default()
                    )));
                }
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict("the prospect kept changing under concurrent writers".into()))
    }

    async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<bool, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(item) = self.get(org_pk(org), &prospect_sk(id.as_str())).await? else { return Ok(false) };
            let version = get_n(&item, ITEM_VERSION).unwrap_or(0);
            let prospect: Prospect = from_item(&item)?;
            let mut items = vec![delete_item(
                &self.table,
                Self::key(org_pk(org), &prospect_sk(id.as_str())),
                Some("item_version = :v"),
                Some(HashMap::from([(":v".into(), n(version))])),
            )?];
            if let Some(email) = &prospect.email {
                items.push(delete_item(&self.table, Self::key(org_pk(org), &email_sk(&email.key())), None, None)?);
            }
            match self.transact(items).await? {
                Ok(()) => return Ok(true),
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict("the prospect kept changing under concurrent writers".into()))
    }

    async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, StoreError> {
        let base = match source {
            Some(src) => Query::index(GSI2, prospects_by_source_gsi2pk(org, src)),
            None => Query::index(GSI1, prospects_gsi1pk(org)),
        };
        let (items, next_cursor) = self.query(Query { newest_first: true, ..base }, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl NotificationStore for DynamoStore {
    async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, StoreError> {
        let query = Query { sk_prefix: Some(NOTIFICATION_PREFIX), newest_first: true, ..Query::partition(org_pk(org)) };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn add_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        let org = &notification.organization_id;
        let item = to_item(notification, &[(PK, org_pk(org)), (SK, notification_sk(notification.id.as_str()))])?;
        self.put(item, None).await?;
        Ok(())
    }

    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), &notification_sk(id.as_str()))))
            .update_expression("SET #read = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#read", "read")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let ttl = ttl_of(connection.expires_at);
        let mut item = HashMap::from([
            (PK.to_string(), s(org_pk(&connection.organization_id))),
            (SK.to_string(), s(connection_sk(&connection.connection_id))),
            ("connection_id".to_string(), s(connection.connection_id.clone())),
            ("organization_id".to_string(), s(connection.organization_id.as_str())),
            ("user_id".to_string(), s(connection.user_id.as_str())),
            ("connected_at".to_string(), n(connection.connected_at.timestamp_millis())),
        ]);
        item.insert(TTL.into(), ttl.clone());
        let owner = HashMap::from([
            (PK.to_string(), s(connection_owner_pk(&connection.connection_id))),
            (SK.to_string(), s(CONNECTION_OWNER_SK)),
            ("organization_id".to_string(), s(connection.organization_id.as_str())),
            (TTL.to_string(), ttl),
        ]);
        let items = vec![put_item(&self.table, item, None, None)?, put_item(&self.table, owner, None, None)?];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection write refused".into()))
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let Some(owner) = self.get(connection_owner_pk(connection_id), CONNECTION_OWNER_SK).await? else {
            return Ok(None);
        };
        let Some(org) = get_s(&owner, "organization_id").map(OrganizationId::new) else { return Ok(None) };
        let connection =
            self.get(org_pk(&org), &connection_sk(connection_id)).await?.and_then(|item| connection_from(&item));
        let items = vec![
            delete_item(&self.table, Self::key(org_pk(&org), &connection_sk(connection_id)), None, None)?,
            delete_item(&self.table, Self::key(connection_owner_pk(connection_id), CONNECTION_OWNER_SK), None, None)?,
        ];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection delete refused".into()))?;
        Ok(connection)
    }

    async fn connections(&self, org: &OrganizationId) -> Result<Vec<Connection>, StoreError> {
        let items =
            self.query_all(Query { sk_prefix: Some(CONNECTION_PREFIX), ..Query::partition(org_pk(org)) }).await?;
        Ok(items.iter().filter_map(connection_from).collect())
    }
}

fn connection_from(item: &Item) -> Option<Connection> {
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    Some(Connection {
        connection_id: get_s(item, "connection_id")?.to_string(),
        organization_id: OrganizationId::new(get_s(item, "organization_id")?),
        user_id: crate::domain::UserId::new(get_s(item, "user_id")?),
        connected_at: at(get_n(item, "connected_at")?)?,
        expires_at: DateTime::<Utc>::from_timestamp(get_n(item, TTL)?, 0)?,
    })
}

#[async_trait]
impl SyncJobStore for DynamoStore {
    async fn get_sync_job(&self, org: &OrganizationId) -> Result<Option<SyncJob>, StoreError> {
        self.get(org_pk(org), SYNC_JOB_SK).await?.map(|i| from_item(&i)).transpose()
    }

    async fn start_sync_job(&self, job: &SyncJob, now: DateTime<Utc>) -> Result<JobStart, StoreError> {
        // The domain decides; `item_version` makes the read-decide-write atomic.
        let blocking = std::sync::Mutex::new(None);
        let created = self
            .update_versioned(
                org_pk(&job.organization_id),
                SYNC_JOB_SK,
                |_| Vec::new(),
                |current: Option<SyncJob>| match current {
                    Some(current) if !job.may_replace(&current, now) => {
                        *blocking.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
                        Ok(None)
                    }
                    _ => Ok(Some((job.clone(), ()))),
                },
            )
            .await?;
        match (created, blocking.into_inner().unwrap_or_else(|e| e.into_inner())) {
            (Some(()), _) => Ok(JobStart::Created(job.clone())),
            (None, Some(current)) => Ok(JobStart::AlreadyActive(current)),
            (None, None) => Err(StoreError::Corrupt("a sync job was neither created nor found".into())),
        }
    }

    async fn update_sync_job(
        &self,
        org: &OrganizationId,
        job_id: &str,
        change: JobChange<'_>,
    ) -> Result<Option<SyncJob>, StoreError> {
        self.update_versioned(
            org_pk(org),
            SYNC_JOB_SK,
            |_| Vec::new(),
            |current: Option<SyncJob>| {
                let Some(mut job) = current.filter(|j| j.id == job_id) else { return Ok(None) };
                Ok(change(&mut job).then(|| (job.clone(), job)))
            },
        )
        .await
    }
}

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn get_rate_window(&self, user_uri: &str) -> Result<Option<RateWindow>, StoreError> {
        self.get(calendly_user_pk(user_uri), RATE_WINDOW_SK).await?.map(|i| from_item(&i)).transpose()
    }

    async fn record_rate_window(&self, user_uri: &str, window: &RateWindow) -> Result<(), StoreError> {
        self.update_versioned(
            calendly_user_pk(user_uri),
            RATE_WINDOW_SK,
            |_| Vec::new(),
            |stored: Option<RateWindow>| {
                Ok(stored.is_none_or(|stored| window.supersedes(&stored)).then_some((*window, ())))
            },
        )
        .await?;
        Ok(())
    }
}
