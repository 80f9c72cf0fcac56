//! The webhook delivery ledger, by organization and hour.
use crate::domain::OrganizationId;
use crate::domain::ledger::{LedgerHour, hour_of};
use crate::store::memory::State;
use crate::store::{DeliveryLedgerStore, MemoryStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

impl State {
    /// The ledger's hour of `at`, created empty.
    pub(super) fn ledger_hour(&mut self, org: &OrganizationId, at: DateTime<Utc>) -> &mut LedgerHour {
        let hour = hour_of(at);
        self.ledger.entry((org.clone(), hour)).or_insert_with(|| LedgerHour { hour, ..LedgerHour::default() })
    }
}

impl LedgerHour {
    /// Counts a booking made at `created_at` that no delivery brought.
    pub(super) fn missed_at(&mut self, created_at: DateTime<Utc>) {
        self.missed += 1;
        self.first_missed_at.get_or_insert(created_at);
    }
}

#[async_trait]
impl DeliveryLedgerStore for MemoryStore {
    async fn record_delivery(&self, org: &OrganizationId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|s| {
            let hour = s.ledger_hour(org, at);
            hour.deliveries += 1;
            hour.last_delivery_at = Some(at);
        });
        Ok(())
    }

    async fn ledger_hours(&self, org: &OrganizationId) -> Result<Vec<LedgerHour>, StoreError> {
        Ok(self.with(|s| s.ledger.iter().filter(|((o, _), _)| o == org).map(|(_, h)| h.clone()).collect()))
    }
}
