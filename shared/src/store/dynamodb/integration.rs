//! Integrations: connect, tokens and their refresh lease, the Calendly-user claim, the schedule index.
use crate::domain::{BookingFilter, CalendlyScope, HandedOutJob, Integration, IntegrationId, OrganizationId};
use crate::store::dynamodb::item::{Item, from_item, get_n, get_s, n, s};
use crate::store::dynamodb::keys::{
    CALENDLY_USER_OWNER_SK, GSI1, GSI2, GSI3, INTEGRATION_SK, PK, SCHEDULE_SK, SK, calendly_user_gsi2pk,
    calendly_user_pk, integration_gsi1pk, org_pk, time_sort_key,
};
use crate::store::dynamodb::schedule::at;
use crate::store::dynamodb::shapes::{Query, integration_index_keys};
use crate::store::dynamodb::{error, is_condition_failure, item};
use crate::store::{
    CLAIM_SETTLES, DuePartition, DynamoStore, IntegrationStore, PageOf, ScheduleSeen, Scheduled, StoreError,
    TokenUpdate,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl DynamoStore {
    /// Moves the next due time (and records the last sync), if the integration is there and,
    /// given `seen`, its schedule settings are still those; its schedule item follows.
    async fn move_schedule(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
        seen: Option<ScheduleSeen>,
    ) -> Result<bool, StoreError> {
        // A plain update: concurrent syncs of one integration must not contend on it. An entry
        // of the due index the item carried from the layout before leaves with it.
        let mut values = HashMap::from([(":next".to_string(), at(next_sync_at)), (":one".to_string(), n(1))]);
        let mut set = "SET next_sync_at = :next".to_string();
        if let Some(synced_at) = synced_at {
            set.push_str(", last_synced_at = :last");
            values.insert(":last".to_string(), at(synced_at));
        }
        let mut condition = "attribute_exists(pk)".to_string();
        if let Some(seen) = seen {
            condition.push_str(" AND auto_sync_enabled = :auto AND sync_interval_minutes = :interval");
            values.insert(":auto".to_string(), aws_sdk_dynamodb::types::AttributeValue::Bool(seen.auto_sync_enabled));
            values.insert(":interval".to_string(), n(u64::from(seen.sync_interval_minutes)));
        }
        let key = Self::key(org_pk(org), INTEGRATION_SK);
        let update = format!("{set} REMOVE #part, #due ADD item_version :one");
        let names = [("#due", GSI3.sk), ("#part", GSI3.pk)];
        let Some(written) = self.update_returning(key, update, &condition, &names, values).await? else {
            return Ok(false);
        };
        self.keep_schedule(&from_item(&written)?, true).await?;
        Ok(true)
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
            .await?
            .ok_or(StoreError::NotFound)?;
        // A connect starts the schedule over: due at once. (A job handed out for the integration
        // it replaced is dropped by its worker: it names another integration.)
        self.keep_schedule(&saved, true).await?;
        Ok(saved)
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
        self.may("dynamodb:DeleteItem")?;
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
        let values = HashMap::from([
            (":until".to_string(), item::to_attribute(&serde_json::to_value(until).unwrap_or_default())),
            (":until_ms".to_string(), n(until.timestamp_millis())),
            (":now_ms".to_string(), n(now.timestamp_millis())),
            (":v".to_string(), n(token_version)),
            (":null".to_string(), s("NULL")),
            (":one".to_string(), n(1)),
        ]);
        self.update_if(
            Self::key(org_pk(org), INTEGRATION_SK),
            "SET refresh_lease_until = :until, lease_until_ms = :until_ms ADD item_version :one",
            "token_version = :v AND (attribute_not_exists(lease_until_ms) OR attribute_type(refresh_lease_until, :null) OR lease_until_ms <= :now_ms)",
            &[],
            values,
        )
        .await
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

    async fn set_scope_lease(
        &self,
        org: &OrganizationId,
        now: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.update_integration(org, |i| i.set_scope_lease(now, until)).await
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
        // A missing integration (disconnected meanwhile) is left alone.
        self.move_schedule(org, synced_at, next_sync_at, None).await?;
        Ok(())
    }

    async fn record_finished_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
        seen: ScheduleSeen,
    ) -> Result<bool, StoreError> {
        self.move_schedule(org, synced_at, next_sync_at, Some(seen)).await
    }

    async fn hand_out(
        &self,
        org: &OrganizationId,
        due: DateTime<Utc>,
        next_sync_at: DateTime<Utc>,
        job: &HandedOutJob,
    ) -> Result<bool, StoreError> {
        // On the schedule item, only while it is on the index at the due time the tick read:
        // of two ticks, or a tick and a settings change, one moves it.
        let values = HashMap::from([
            (":next".to_string(), at(next_sync_at)),
            (":due".to_string(), s(time_sort_key(next_sync_at, org.as_str()))),
            (":seen".to_string(), s(time_sort_key(due, org.as_str()))),
            (":job".to_string(), item::to_attribute(&serde_json::to_value(job).unwrap_or_default())),
        ]);
        self.update_if(
            Self::key(org_pk(org), SCHEDULE_SK),
            "SET next_sync_at = :next, #due = :due, handed_out = :job",
            "attribute_exists(#part) AND #due = :seen",
            &[("#due", GSI3.sk), ("#part", GSI3.pk)],
            values,
        )
        .await
    }

    async fn withdraw_hand_out(
        &self,
        org: &OrganizationId,
        job_id: &str,
        due_again: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut values = HashMap::from([(":id".to_string(), s(job_id))]);
        let mut update = "REMOVE handed_out".to_string();
        let mut names = vec![];
        if let Some(again) = due_again {
            values.insert(":next".to_string(), at(again));
            values.insert(":due".to_string(), s(time_sort_key(again, org.as_str())));
            update = format!("SET next_sync_at = :next, #due = :due {update}");
            names.push(("#due", GSI3.sk));
        }
        self.update_if(Self::key(org_pk(org), SCHEDULE_SK), update, "handed_out.id = :id", &names, values).await
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

    async fn fall_back_to_user_scope(&self, org: &OrganizationId) -> Result<(), StoreError> {
        self.update_integration(org, Integration::fall_back_to_user_scope).await?;
        Ok(())
    }

    async fn set_coverage(
        &self,
        org: &OrganizationId,
        coverage: CalendlyScope,
        member_emails: Vec<String>,
        read_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_coverage(coverage, member_emails.clone(), read_at)).await?;
        Ok(())
    }

    async fn set_retention(&self, org: &OrganizationId, days: Option<u32>) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_retention(days)).await?;
        Ok(())
    }

    async fn set_crm_rules(&self, org: &OrganizationId, rules: &crate::domain::CrmRules) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_crm_rules(rules.clone())).await?;
        Ok(())
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
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_integration(org, |i| i.set_webhook(subscription_uri.clone(), active, error.clone(), since)).await?;
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

    fn due_partitions(&self) -> Vec<DuePartition> {
        // The unsharded layout's part stays on the list: an integration written before the
        // schedule was sharded is found there until its next write moves it.
        let mut partitions = DuePartition::all(self.due_shards);
        partitions.push(DuePartition::unsharded());
        partitions
    }

    async fn list_due_integrations(
        &self,
        now: DateTime<Utc>,
        partition: &DuePartition,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Scheduled>, StoreError> {
        if !self.due_partitions().contains(partition) {
            return Err(StoreError::InvalidCursor);
        }
        let query = Query {
            sk_at_most: Some(format!("{:020}#~", now.timestamp_micros())),
            ..Query::index(GSI3, partition.as_str().to_string())
        };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        let mut due = Vec::with_capacity(items.len());
        for entry in &items {
            due.push(self.scheduled_entry(entry).await?);
        }
        Ok(PageOf { items: due, next_cursor })
    }
}
