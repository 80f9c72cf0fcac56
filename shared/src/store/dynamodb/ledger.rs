//! The webhook delivery ledger: one item per organization and hour, added to without reading
//! (`ADD`), expiring with the table's TTL.
use crate::domain::OrganizationId;
use crate::domain::ledger::{LEDGER_KEPT, LedgerHour, hour_of};
use crate::store::dynamodb::item::{Item, get_n, get_s, n, s};
use crate::store::dynamodb::keys::{LEDGER_PREFIX, SK, TTL, ledger_sk, org_pk};
use crate::store::dynamodb::shapes::{Query, ttl_of};
use crate::store::dynamodb::{CONSUMED_CAPACITY, Kind, error};
use crate::store::{DeliveryLedgerStore, DynamoStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::HashMap;

#[async_trait]
impl DeliveryLedgerStore for DynamoStore {
    async fn record_delivery(&self, org: &OrganizationId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let hour = hour_of(at);
        self.may("dynamodb:UpdateItem")?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), &ledger_sk(hour))))
            .update_expression("ADD deliveries :one SET last_delivery_at = :at, #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":ttl", ttl_of(hour + LEDGER_KEPT))
            .set_return_consumed_capacity(CONSUMED_CAPACITY)
            .send()
            .await
            .map_err(error)?;
        self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(())
    }

    async fn ledger_hours(&self, org: &OrganizationId) -> Result<Vec<LedgerHour>, StoreError> {
        let query = Query { sk_prefix: Some(LEDGER_PREFIX), ..Query::partition(org_pk(org)) };
        let now = Utc::now();
        Ok(self
            .query_all(query)
            .await?
            .iter()
            // The TTL deletes some time after: reads skip what it let expire.
            .filter(|item| get_n(item, TTL).is_none_or(|ttl| ttl > now.timestamp()))
            .filter_map(hour_from_item)
            .collect())
    }
}

fn hour_from_item(item: &Item) -> Option<LedgerHour> {
    let key = get_s(item, SK)?.strip_prefix(LEDGER_PREFIX)?;
    let hour = NaiveDateTime::parse_from_str(&format!("{key}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?.and_utc();
    let time = |name: &str| get_s(item, name).and_then(|t| t.parse().ok());
    let count = |name: &str| get_n(item, name).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Some(LedgerHour {
        hour,
        deliveries: count("deliveries"),
        missed: count("missed"),
        last_delivery_at: time("last_delivery_at"),
        first_missed_at: time("first_missed_at"),
    })
}

/// The part of a booking's commit that counts it missed by the webhook (unconditional: it is
/// never the item that fails), in the hour of `now`.
pub(super) fn missed_delivery(
    table: &str,
    org: &OrganizationId,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<TransactWriteItem, StoreError> {
    let hour = hour_of(now);
    let update = crate::store::dynamodb::build(
        Update::builder()
            .table_name(table)
            .set_key(Some(DynamoStore::key(org_pk(org), &ledger_sk(hour))))
            .update_expression(
                "ADD missed :one SET first_missed_at = if_not_exists(first_missed_at, :created), #ttl = :ttl",
            )
            .expression_attribute_names("#ttl", TTL)
            .set_expression_attribute_values(Some(HashMap::from([
                (":one".to_string(), n(1)),
                (":created".to_string(), s(created_at.to_rfc3339())),
                (":ttl".to_string(), ttl_of(hour + LEDGER_KEPT)),
            ])))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}
