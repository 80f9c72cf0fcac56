//! The person index, the suppression list and the erasure audit, in the organization's
//! partition. A person item (`PERSON#{hash}`) holds the ids of what commits wrote about the
//! person (string sets, added in the commit's transaction) and, once they are erased,
//! `suppressed_at`: the commits' condition then fails.

use crate::domain::ids::time_ordered_bound;
use crate::domain::{Booking, ErasureRecord, Notification, NotificationId, OrganizationId, PersonIndex, PersonKeys};
use crate::store::dynamodb::item::{Item, from_item, get_s, s, to_item};
use crate::store::dynamodb::keys::{
    DEPLOYMENT_PK, ERASURE_PREFIX, GSI1, NOTIFICATION_PREFIX, PERSON_HASH_KEY_SK, PK, SK, booking_sk, bookings_gsi1pk,
    erasure_sk, notification_sk, org_pk, person_sk, time_sort_key,
};
use crate::store::dynamodb::shapes::Query;
use crate::store::dynamodb::{CONSUMED_CAPACITY, Kind, backoff, build, error};
use crate::store::{CalendlyData, DynamoStore, PageOf, PersonHashKeyStore, PrivacyStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, ReturnValue, WriteRequest};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// BatchGetItem's and BatchWriteItem's limits per request.
const BATCH_GET: usize = 100;
const BATCH_WRITE: usize = 25;

fn index_of(item: &Item) -> PersonIndex {
    let set = |name: &str| item.get(name).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    PersonIndex {
        bookings: set("bookings"),
        notifications: set("notifications").into_iter().map(NotificationId::new).collect(),
        guest_of: set("guest_of"),
    }
}

impl DynamoStore {
    /// Every item of `keys` that exists (consistent reads, unprocessed keys retried).
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.may("dynamodb:BatchGetItem")?;
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request =
                    build(KeysAndAttributes::builder().set_keys(Some(pending.clone())).consistent_read(true).build())?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .set_return_consumed_capacity(CONSUMED_CAPACITY)
                    .send()
                    .await
                    .map_err(error)?;
                self.record(Kind::Read, Some(out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum()));
                found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                pending =
                    out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
                if !pending.is_empty() {
                    backoff(attempt).await;
                    attempt += 1;
                }
            }
        }
        Ok(found)
    }

    /// Deletes every item of `keys` (absent ones are no error), 25 a request.
    pub(super) async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        self.may("dynamodb:BatchWriteItem")?;
        for chunk in keys.chunks(BATCH_WRITE) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let delete = build(DeleteRequest::builder().set_key(Some(key.clone())).build())?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .set_return_consumed_capacity(CONSUMED_CAPACITY)
                    .send()
                    .await
                    .map_err(error)?;
                self.record(Kind::Write, Some(out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum()));
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if !pending.is_empty() {
                    backoff(attempt).await;
                    attempt += 1;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl PrivacyStore for DynamoStore {
    async fn suppress_person(
        &self,
        org: &OrganizationId,
        person: &PersonKeys,
        now: DateTime<Utc>,
    ) -> Result<PersonIndex, StoreError> {
        // One update: from the moment it lands, every commit about the person fails its
        // condition, and what it returns is exactly what the commits before it indexed.
        self.may("dynamodb:UpdateItem")?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), &person_sk(&person.current))))
            .update_expression("SET suppressed_at = if_not_exists(suppressed_at, :now)")
            .expression_attribute_values(":now", s(now.to_rfc3339()))
            .return_values(ReturnValue::AllNew)
            .set_return_consumed_capacity(CONSUMED_CAPACITY)
            .send()
            .await
            .map_err(error)?;
        self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
        let mut index = out.attributes.as_ref().map(index_of).unwrap_or_default();
        if let Some(previous) = &person.previous
            && let Some(item) = self.get(org_pk(org), &person_sk(previous)).await?
        {
            index.merge(index_of(&item));
        }
        Ok(index)
    }

    async fn forget_person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<(), StoreError> {
        for hash in person.all() {
            self.update_if(
                Self::key(org_pk(org), &person_sk(hash)),
                "REMOVE bookings, notifications, guest_of",
                "attribute_exists(pk)",
                &[],
                HashMap::new(),
            )
            .await?;
        }
        Ok(())
    }

    async fn person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<PersonIndex, StoreError> {
        let mut index = PersonIndex::default();
        for hash in person.all() {
            if let Some(item) = self.get(org_pk(org), &person_sk(hash)).await? {
                index.merge(index_of(&item));
            }
        }
        Ok(index)
    }

    async fn lift_suppression(&self, org: &OrganizationId, person: &PersonKeys) -> Result<bool, StoreError> {
        let mut lifted = false;
        for hash in person.all() {
            self.may("dynamodb:DeleteItem")?;
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(org_pk(org), &person_sk(hash))))
                .condition_expression("attribute_exists(suppressed_at)")
                .set_return_consumed_capacity(CONSUMED_CAPACITY)
                .send()
                .await;
            let capacity = out.as_ref().ok().and_then(|o| o.consumed_capacity()).and_then(|c| c.capacity_units());
            lifted |= self.conditional_write(out, capacity)?;
        }
        Ok(lifted)
    }

    async fn get_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<Vec<Booking>, StoreError> {
        let keys = ids.iter().map(|id| Self::key(org_pk(org), &booking_sk(id))).collect();
        self.batch_get(keys).await?.iter().map(from_item).collect()
    }

    async fn get_notifications(
        &self,
        org: &OrganizationId,
        ids: &[NotificationId],
    ) -> Result<Vec<Notification>, StoreError> {
        let keys = ids.iter().map(|id| Self::key(org_pk(org), &notification_sk(id.as_str()))).collect();
        self.batch_get(keys).await?.iter().map(from_item).collect()
    }

    async fn delete_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<(), StoreError> {
        self.batch_delete(ids.iter().map(|id| Self::key(org_pk(org), &booking_sk(id))).collect()).await
    }

    async fn remove_guest(&self, org: &OrganizationId, ids: &[String], key: &str) -> Result<u64, StoreError> {
        let mut removed = 0;
        for id in ids {
            // Read, drop, write back under the revision read: a commit in between re-reads.
            for _ in 0..10 {
                let Some(item) = self.get(org_pk(org), &booking_sk(id)).await? else { break };
                let mut booking: Booking = from_item(&item)?;
                let revision = booking.revision;
                if !booking.drop_guest(key) {
                    break;
                }
                let json = |v: serde_json::Value| crate::store::dynamodb::item::to_attribute(&v);
                let values = HashMap::from([
                    (":guests".to_string(), json(serde_json::to_value(&booking.details.guests).unwrap_or_default())),
                    (":noted".to_string(), json(serde_json::to_value(&booking.guests_noted).unwrap_or_default())),
                    (":r".to_string(), crate::store::dynamodb::item::n(revision)),
                    (":next".to_string(), crate::store::dynamodb::item::n(revision + 1)),
                ]);
                let update = "SET guests = :guests, guests_noted = :noted, revision = :next";
                if self.update_if(Self::key(org_pk(org), &booking_sk(id)), update, "revision = :r", &[], values).await?
                {
                    removed += 1;
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn delete_notifications(&self, org: &OrganizationId, ids: &[NotificationId]) -> Result<(), StoreError> {
        self.batch_delete(ids.iter().map(|id| Self::key(org_pk(org), &notification_sk(id.as_str()))).collect()).await
    }

    async fn delete_calendly_data(
        &self,
        org: &OrganizationId,
        family: CalendlyData,
        ended_before: Option<DateTime<Utc>>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(u64, Option<String>), StoreError> {
        let partition = org_pk(org);
        let query = match (family, ended_before) {
            // A purge reads the base table (consistent: every item it deletes is counted once).
            (CalendlyData::Bookings, None) => Query { sk_prefix: Some("BOOKING#"), ..Query::partition(partition) },
            // Retention: bookings by start time up to the cut-off (each is checked by its end).
            (CalendlyData::Bookings, Some(before)) => {
                Query { sk_at_most: Some(time_sort_key(before, "~")), ..Query::index(GSI1, bookings_gsi1pk(org)) }
            }
            (CalendlyData::Fingerprints, None) => Query { sk_prefix: Some("EVENT#"), ..Query::partition(partition) },
            (CalendlyData::Fingerprints, Some(_)) => return Ok((0, None)),
            (CalendlyData::Notifications, before) => Query {
                sk_prefix: Some(NOTIFICATION_PREFIX),
                sk_at_most: before.map(|b| notification_sk(&time_ordered_bound(b))),
                ..Query::partition(partition)
            },
        };
        let (items, next) = self.query(query, limit, cursor).await?;
        let due = |item: &Item| match (family, ended_before) {
            (CalendlyData::Bookings, Some(before)) => {
                from_item::<Booking>(item).is_ok_and(|b| b.details.end_time < before)
            }
            _ => true,
        };
        let keys: Vec<Item> = items
            .iter()
            .filter(|item| due(item))
            .filter_map(|item| Some(Self::key(get_s(item, PK)?.to_string(), get_s(item, SK)?)))
            .collect();
        let deleted = keys.len() as u64;
        self.batch_delete(keys).await?;
        Ok((deleted, next))
    }

    async fn record_erasure(&self, erasure: &ErasureRecord) -> Result<(), StoreError> {
        let org = &erasure.organization_id;
        let item = to_item(erasure, &[(PK, org_pk(org)), (SK, erasure_sk(&erasure.id))])?;
        self.put(item, None).await?;
        Ok(())
    }

    async fn list_erasures(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<ErasureRecord>, StoreError> {
        let query = Query { sk_prefix: Some(ERASURE_PREFIX), newest_first: true, ..Query::partition(org_pk(org)) };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl PersonHashKeyStore for DynamoStore {
    async fn person_hash_key(&self) -> Result<Option<crate::crypto::Sealed>, StoreError> {
        let item = self.get(DEPLOYMENT_PK.to_string(), PERSON_HASH_KEY_SK).await?;
        item.map(|item| {
            get_s(&item, "sealed")
                .map(|stored| crate::crypto::Sealed::from_stored(stored.to_string()))
                .ok_or_else(|| StoreError::Corrupt("the person-hash key item has no `sealed`".into()))
        })
        .transpose()
    }

    async fn swap_person_hash_key(
        &self,
        expected: Option<&crate::crypto::Sealed>,
        sealed: &crate::crypto::Sealed,
    ) -> Result<bool, StoreError> {
        let mut item = Self::key(DEPLOYMENT_PK.to_string(), PERSON_HASH_KEY_SK);
        item.insert("sealed".into(), s(sealed.as_stored()));
        let condition = match expected {
            None => ("attribute_not_exists(pk)", Item::new()),
            Some(old) => ("sealed = :old", HashMap::from([(":old".to_string(), s(old.as_stored()))])),
        };
        self.put(item, Some(condition)).await
    }
}
