//! Bookings, written with their prospect, notes and notification in one transaction.

use crate::domain::booking::BookingPlan;
use crate::domain::{Booking, OrganizationId};
use crate::store::dynamodb::build;
use crate::store::dynamodb::commit_items::{
    Role, integration_active_check, link_item, prospect_change_items, unsuppressed_check,
};
use crate::store::dynamodb::item::{from_item, get_s, n, s, to_item};
use crate::store::dynamodb::keys::{
    GSI1, PK, SK, TTL, booking_sk, bookings_gsi1pk, committed_counts_sk, event_sk, notification_sk, org_pk, person_sk,
    time_sort_key,
};
use crate::store::dynamodb::shapes::{Query, put_item, ttl_of};
use crate::store::{BookingStore, CommitConflict, CommitError, DynamoStore, PageOf, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use std::collections::HashMap;

/// A job's committed counts outlive it by this much (its report holds them from its end on).
const COMMITTED_COUNTS_KEPT: chrono::Duration = chrono::Duration::days(7);

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

        let mut booking_item = to_item(
            booking,
            &[
                (PK, org_pk(org)),
                (SK, booking_sk(booking.id())),
                (GSI1.pk, bookings_gsi1pk(org)),
                (GSI1.sk, time_sort_key(booking.details.start_time, booking.id())),
            ],
        )?;
        if let Some(at) = booking.expires_at {
            booking_item.insert(TTL.into(), ttl_of(at));
        }
        items.push(match plan.expected_revision {
            None => put_item(table, booking_item, Some("attribute_not_exists(pk)"), None)?,
            Some(r) => {
                put_item(table, booking_item, Some("revision = :r"), Some(HashMap::from([(":r".into(), n(r))])))?
            }
        });
        let mut claim_index = None;
        let mut append_index = None;
        for (item, role) in prospect_change_items(table, org, &plan.prospect, booking.updated_at)? {
            match role {
                Role::Claim => claim_index = Some(items.len()),
                Role::Notes => append_index = Some(items.len()),
                Role::Prospect => {}
            }
            items.push(item);
        }
        // The guests' prospects, each under the same guards as the invitee's.
        let mut guest_changed = Vec::new();
        for guest in &plan.guests {
            for (item, role) in prospect_change_items(table, org, &guest.prospect, booking.updated_at)? {
                if role != Role::Prospect {
                    guest_changed.push(items.len());
                }
                items.push(item);
            }
        }
        // Every guest named: the booking indexed under them (`guest_of`, what their erasure
        // takes them out of), refused if they were erased.
        let mut guest_suppressed = Vec::new();
        for (key, person) in &plan.guest_people {
            guest_suppressed.push((items.len(), key.clone()));
            let update = build(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(Self::key(org_pk(org), &person_sk(&person.current))))
                    .update_expression("ADD guest_of :booking")
                    .condition_expression("attribute_not_exists(suppressed_at)")
                    .expression_attribute_values(":booking", AttributeValue::Ss(vec![booking.id().to_string()]))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().update(update).build());
            if let Some(previous) = &person.previous {
                guest_suppressed.push((items.len(), key.clone()));
                items.push(unsuppressed_check(table, org, previous)?);
            }
        }
        if let Some(notification) = &plan.notification {
            let mut item =
                to_item(notification, &[(PK, org_pk(org)), (SK, notification_sk(notification.id.as_str()))])?;
            if let Some(at) = notification.expires_at {
                item.insert(TTL.into(), ttl_of(at));
            }
            items.push(put_item(table, item, Some("attribute_not_exists(pk)"), None)?);
        }
        // The person index, guarded by the suppression list (an erased invitee stays erased).
        let mut suppression_indexes = Vec::new();
        if let Some(person) = plan.person.as_ref().filter(|_| plan.indexes_person()) {
            let mut adds = Vec::new();
            let mut values = HashMap::new();
            if plan.expected_revision.is_none() {
                adds.push("bookings :booking");
                values.insert(":booking".to_string(), AttributeValue::Ss(vec![booking.id().to_string()]));
            }
            if let Some(notification) = &plan.notification {
                adds.push("notifications :notification");
                values.insert(":notification".to_string(), AttributeValue::Ss(vec![notification.id.to_string()]));
            }
            suppression_indexes.push(items.len());
            let update = build(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(Self::key(org_pk(org), &person_sk(&person.current))))
                    .update_expression(format!("ADD {}", adds.join(", ")))
                    .condition_expression("attribute_not_exists(suppressed_at)")
                    .set_expression_attribute_values(Some(values))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().update(update).build());
            if let Some(previous) = &person.previous {
                suppression_indexes.push(items.len());
                items.push(unsuppressed_check(table, org, previous)?);
            }
        }
        // The booking's integration still the organization's active one: a sync or a delivery
        // in flight when the organization disconnects writes nothing after it.
        let integration_index = items.len();
        items.push(integration_active_check(table, org, &booking.integration_id)?);
        let link_index = items.len();
        if let Some(link) = &plan.submission_link {
            items.push(link_item(table, org, link)?);
        }
        // Unconditional, like the counts below: never the item that failed.
        if let Some(created_at) = plan.missed_delivery {
            items.push(super::ledger::missed_delivery(table, org, created_at, booking.updated_at)?);
        }
        // Last, and unconditional: it never is the item that failed.
        if let Some(job_id) = &plan.counted_for {
            let counts = plan.counts();
            let update = build(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(Self::key(org_pk(org), &committed_counts_sk(job_id, booking.id()))))
                    .update_expression(
                        "ADD bookings_new :new, bookings_changed :changed, prospects_created :created, notes_added :notes SET #ttl = :ttl",
                    )
                    .expression_attribute_names("#ttl", TTL)
                    .set_expression_attribute_values(Some(HashMap::from([
                        (":new".to_string(), n(counts.bookings_new)),
                        (":changed".to_string(), n(counts.bookings_changed)),
                        (":created".to_string(), n(counts.prospects_created)),
                        (":notes".to_string(), n(counts.notes_added)),
                        (":ttl".to_string(), ttl_of(booking.updated_at + COMMITTED_COUNTS_KEPT)),
                    ])))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(0) => Err(CommitConflict::BookingChanged.into()),
            Err(i) if Some(i) == claim_index => Err(CommitConflict::EmailClaimed.into()),
            Err(i) if Some(i) == append_index => Err(CommitConflict::ProspectMissing.into()),
            Err(i) if suppression_indexes.contains(&i) => Err(CommitConflict::Suppressed.into()),
            Err(i) if i == integration_index => Err(CommitConflict::IntegrationInactive.into()),
            Err(i) if guest_changed.contains(&i) => Err(CommitConflict::GuestChanged.into()),
            Err(i) if plan.submission_link.is_some() && i == link_index => {
                Err(CommitConflict::SubmissionChanged.into())
            }
            Err(i) if let Some((_, key)) = guest_suppressed.iter().find(|(at, _)| *at == i) => {
                Err(CommitConflict::GuestSuppressed(key.clone()).into())
            }
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
        let keys = event_uuids.iter().map(|uuid| Self::key(org_pk(org), &event_sk(uuid))).collect();
        let mut found = HashMap::new();
        for item in self.batch_get(keys).await? {
            if let (Some(sk), Some(fp)) = (get_s(&item, SK), get_s(&item, "fingerprint")) {
                found.insert(sk.trim_start_matches("EVENT#").to_string(), fp.to_string());
            }
        }
        Ok(found)
    }

    async fn put_event_fingerprint(
        &self,
        org: &OrganizationId,
        event_uuid: &str,
        fingerprint: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), StoreError> {
        let mut item = Self::key(org_pk(org), &event_sk(event_uuid));
        item.insert("fingerprint".into(), s(fingerprint));
        if let Some(at) = expires_at {
            item.insert(TTL.into(), ttl_of(at));
        }
        self.put(item, None).await?;
        Ok(())
    }
}
