//! Integrations, tokens, refresh leases, Calendly-user claims, the schedule.
use crate::domain::{BookingFilter, CalendlyScope, HandedOutJob, Integration, IntegrationId, OrganizationId};
use crate::store::ScheduleSeen;
use crate::store::{
    CLAIM_SETTLES, DuePartition, IntegrationStore, MemoryStore, PageOf, Scheduled, StoreError, TokenUpdate, cursor,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

impl MemoryStore {
    /// Moves the next due time (and records the last sync), if the integration is there and,
    /// given `seen`, its schedule settings are still those.
    fn move_schedule(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
        seen: Option<ScheduleSeen>,
    ) -> bool {
        self.with(|s| match s.integrations.get_mut(org) {
            Some(i) if seen.is_none_or(|seen| ScheduleSeen::of(i) == seen) => {
                if synced_at.is_some() {
                    i.last_synced_at = synced_at;
                }
                i.next_sync_at = Some(next_sync_at);
                true
            }
            _ => false,
        })
    }
}

#[async_trait]
impl IntegrationStore for MemoryStore {
    async fn get_integration(&self, org: &OrganizationId) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.get(org).cloned()))
    }

    async fn get_integration_by_id(&self, id: &IntegrationId) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.values().find(|i| &i.id == id).cloned()))
    }

    async fn find_integration_by_calendly_user(&self, user_uri: &str) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.values().find(|i| i.is_active && i.calendly_user_uri == user_uri).cloned()))
    }

    async fn save_connected_integration(&self, mut integration: Integration) -> Result<Integration, StoreError> {
        Ok(self.with(|s| {
            if let Some(previous) = s.integrations.get(&integration.organization_id) {
                integration.token_version = integration.token_version.max(previous.token_version + 1);
                integration.created_at = previous.created_at;
            }
            s.integrations.insert(integration.organization_id.clone(), integration.clone());
            integration
        }))
    }

    async fn claim_calendly_user(
        &self,
        user_uri: &str,
        org: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let held_by_other = s.calendly_user_claims.get(user_uri).filter(|(owner, _)| owner != org).is_some_and(
                |(owner, claimed_at)| {
                    now - *claimed_at < CLAIM_SETTLES
                        || s.integrations.get(owner).is_some_and(|i| i.is_active && i.calendly_user_uri == user_uri)
                },
            );
            if !held_by_other {
                s.calendly_user_claims.insert(user_uri.to_string(), (org.clone(), now));
            }
            !held_by_other
        }))
    }

    async fn release_calendly_user(&self, user_uri: &str, org: &OrganizationId) -> Result<(), StoreError> {
        self.with(|s| {
            if s.calendly_user_claims.get(user_uri).is_some_and(|(owner, _)| owner == org) {
                s.calendly_user_claims.remove(user_uri);
            }
        });
        Ok(())
    }

    async fn try_acquire_refresh_lease(
        &self,
        org: &OrganizationId,
        token_version: u64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.take_refresh_lease(token_version, now, until)))
    }

    async fn store_refreshed_tokens(
        &self,
        org: &OrganizationId,
        expected_version: u64,
        tokens: TokenUpdate,
    ) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.store_refreshed_tokens(expected_version, &tokens)))
    }

    async fn release_refresh_lease(&self, org: &OrganizationId, token_version: u64) -> Result<(), StoreError> {
        self.change_integration(org, |i| i.release_refresh_lease(token_version));
        Ok(())
    }

    async fn set_scope_lease(
        &self,
        org: &OrganizationId,
        now: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.set_scope_lease(now, until)))
    }

    async fn mark_needs_reconnect(&self, org: &OrganizationId, token_version: u64) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.mark_needs_reconnect(token_version)))
    }

    async fn record_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.move_schedule(org, synced_at, next_sync_at, None);
        Ok(())
    }

    async fn record_finished_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
        seen: ScheduleSeen,
    ) -> Result<bool, StoreError> {
        Ok(self.move_schedule(org, synced_at, next_sync_at, Some(seen)))
    }

    async fn hand_out(
        &self,
        org: &OrganizationId,
        due: DateTime<Utc>,
        next_sync_at: DateTime<Utc>,
        job: &HandedOutJob,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.integrations.get_mut(org) {
            Some(i) if Scheduled::applies_to(i) && i.next_sync_at.unwrap_or(DateTime::UNIX_EPOCH) == due => {
                i.next_sync_at = Some(next_sync_at);
                i.handed_out = Some(job.clone());
                true
            }
            _ => false,
        }))
    }

    async fn withdraw_hand_out(
        &self,
        org: &OrganizationId,
        job_id: &str,
        due_again: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.integrations.get_mut(org) {
            Some(i) if i.handed_out.as_ref().is_some_and(|h| h.id == job_id) => {
                i.handed_out = None;
                if due_again.is_some() {
                    i.next_sync_at = due_again;
                }
                true
            }
            _ => false,
        }))
    }

    async fn update_sync_settings(
        &self,
        org: &OrganizationId,
        auto_sync_enabled: bool,
        interval_minutes: u32,
        next_sync_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let found = self.change_integration(org, |i| {
            i.apply_sync_settings(auto_sync_enabled, interval_minutes, next_sync_at);
            true
        });
        if found { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn fall_back_to_user_scope(&self, org: &OrganizationId) -> Result<(), StoreError> {
        self.change_integration(org, Integration::fall_back_to_user_scope);
        Ok(())
    }

    async fn set_coverage(
        &self,
        org: &OrganizationId,
        coverage: CalendlyScope,
        member_emails: Vec<String>,
        read_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.change_integration(org, |i| i.set_coverage(coverage, member_emails.clone(), read_at));
        Ok(())
    }

    async fn set_retention(&self, org: &OrganizationId, days: Option<u32>) -> Result<(), StoreError> {
        match self.with(|s| s.integrations.get_mut(org).map(|i| i.set_retention(days))) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn set_crm_rules(&self, org: &OrganizationId, rules: &crate::domain::CrmRules) -> Result<(), StoreError> {
        if self.with(|s| s.integrations.contains_key(org)) {
            self.change_integration(org, |i| i.set_crm_rules(rules.clone()));
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn set_booking_filter(&self, org: &OrganizationId, filter: &BookingFilter) -> Result<(), StoreError> {
        if self.with(|s| s.integrations.contains_key(org)) {
            self.change_integration(org, |i| i.set_filter(filter.clone()));
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn set_webhook(
        &self,
        org: &OrganizationId,
        subscription_uri: Option<String>,
        active: bool,
        error: Option<String>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.change_integration(org, |i| i.set_webhook(subscription_uri, active, error, since));
        Ok(())
    }

    async fn deactivate_integration(&self, org: &OrganizationId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.change_integration(org, |i| {
            i.deactivate(now);
            true
        });
        Ok(())
    }

    fn due_partitions(&self) -> Vec<DuePartition> {
        DuePartition::all(self.due_shards)
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
        let (shards, wanted) = (self.due_shards, partition.shard_number());
        let position = |i: &Integration| {
            format!("{:020}#{}", i.next_sync_at.map_or(0, |n| n.timestamp_micros().max(0)), i.organization_id)
        };
        let mut due: Vec<Integration> = self.with(|s| {
            s.integrations
                .values()
                .filter(|i| Scheduled::applies_to(i) && i.next_sync_at.is_none_or(|n| n <= now))
                .filter(|i| Some(crate::domain::schedule::due_shard(&i.organization_id, shards)) == wanted)
                .cloned()
                .collect()
        });
        due.sort_by_key(position);
        // Like the DynamoDB index, a cursor is a position: items that left the range since
        // the last page do not make it invalid.
        let after = cursor::decode(cursor)?;
        due.retain(|i| after.as_ref().is_none_or(|a| &position(i) > a));
        let limit = limit.max(1);
        let next_cursor = (due.len() > limit).then(|| cursor::encode(&position(&due[limit - 1])));
        due.truncate(limit);
        Ok(PageOf { items: due.iter().map(Scheduled::of).collect(), next_cursor })
    }
}
