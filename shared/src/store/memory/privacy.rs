//! The person index, the suppression list and the erasure audit.
use crate::domain::{Booking, ErasureRecord, Notification, NotificationId, OrganizationId, PersonIndex, PersonKeys};
use crate::store::memory::{Person, paginate};
use crate::store::{CalendlyData, MemoryStore, PageOf, PersonHashKeyStore, PrivacyStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl PrivacyStore for MemoryStore {
    async fn suppress_person(
        &self,
        org: &OrganizationId,
        person: &PersonKeys,
        now: DateTime<Utc>,
    ) -> Result<PersonIndex, StoreError> {
        Ok(self.with(|s| {
            let mut index = PersonIndex::default();
            for hash in person.all() {
                let key = (org.clone(), hash.to_string());
                // The previous key's entry is only read: suppression is written under the current one.
                let entry = match hash == person.current {
                    true => Some(s.people.entry(key).or_default()),
                    false => s.people.get_mut(&key),
                };
                if let Some(entry) = entry {
                    if hash == person.current {
                        entry.suppressed_at.get_or_insert(now);
                    }
                    index.merge(entry.index.clone());
                }
            }
            index
        }))
    }

    async fn remove_guest(&self, org: &OrganizationId, ids: &[String], key: &str) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            let mut removed = 0;
            for id in ids {
                if let Some(b) = s.bookings.get_mut(&(org.clone(), id.clone()))
                    && b.drop_guest(key)
                {
                    b.revision += 1;
                    removed += 1;
                }
            }
            removed
        }))
    }

    async fn forget_person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<(), StoreError> {
        self.with(|s| {
            for hash in person.all() {
                if let Some(entry) = s.people.get_mut(&(org.clone(), hash.to_string())) {
                    entry.index = PersonIndex::default();
                }
            }
        });
        Ok(())
    }

    async fn person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<PersonIndex, StoreError> {
        Ok(self.with(|s| {
            let mut index = PersonIndex::default();
            for hash in person.all() {
                if let Some(entry) = s.people.get(&(org.clone(), hash.to_string())) {
                    index.merge(entry.index.clone());
                }
            }
            index
        }))
    }

    async fn lift_suppression(&self, org: &OrganizationId, person: &PersonKeys) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let mut lifted = false;
            for hash in person.all() {
                let key = (org.clone(), hash.to_string());
                if s.people.get(&key).is_some_and(|p| p.suppressed_at.is_some()) {
                    s.people.remove(&key);
                    lifted = true;
                }
            }
            lifted
        }))
    }

    async fn get_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<Vec<Booking>, StoreError> {
        Ok(self.with(|s| ids.iter().filter_map(|id| s.bookings.get(&(org.clone(), id.clone())).cloned()).collect()))
    }

    async fn get_notifications(
        &self,
        org: &OrganizationId,
        ids: &[NotificationId],
    ) -> Result<Vec<Notification>, StoreError> {
        Ok(self
            .with(|s| ids.iter().filter_map(|id| s.notifications.get(&(org.clone(), id.clone())).cloned()).collect()))
    }

    async fn delete_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<(), StoreError> {
        self.with(|s| {
            for id in ids {
                s.bookings.remove(&(org.clone(), id.clone()));
            }
        });
        Ok(())
    }

    async fn delete_notifications(&self, org: &OrganizationId, ids: &[NotificationId]) -> Result<(), StoreError> {
        self.with(|s| {
            for id in ids {
                s.notifications.remove(&(org.clone(), id.clone()));
            }
        });
        Ok(())
    }

    async fn delete_calendly_data(
        &self,
        org: &OrganizationId,
        family: CalendlyData,
        ended_before: Option<DateTime<Utc>>,
        _limit: usize,
        _cursor: Option<&str>,
    ) -> Result<(u64, Option<String>), StoreError> {
        // One lock, so one page: everything eligible at once.
        let due = |at: DateTime<Utc>| ended_before.is_none_or(|before| at < before);
        Ok(self.with(|s| {
            let before = s.bookings.len() + s.fingerprints.len() + s.notifications.len();
            match family {
                CalendlyData::Bookings => s.bookings.retain(|(o, _), b| o != org || !due(b.details.end_time)),
                CalendlyData::Fingerprints => s.fingerprints.retain(|(o, _), _| o != org || ended_before.is_some()),
                CalendlyData::Notifications => s.notifications.retain(|(o, _), n| o != org || !due(n.created_at)),
            }
            let after = s.bookings.len() + s.fingerprints.len() + s.notifications.len();
            ((before - after) as u64, None)
        }))
    }

    async fn record_erasure(&self, erasure: &ErasureRecord) -> Result<(), StoreError> {
        self.with(|s| s.erasures.insert((erasure.organization_id.clone(), erasure.id.clone()), erasure.clone()));
        Ok(())
    }

    async fn list_erasures(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<ErasureRecord>, StoreError> {
        let erasures: Vec<ErasureRecord> =
            self.with(|s| s.erasures.iter().rev().filter(|((o, _), _)| o == org).map(|(_, e)| e.clone()).collect());
        paginate(erasures, |e| e.id.clone(), limit, cursor)
    }
}

#[async_trait]
impl PersonHashKeyStore for MemoryStore {
    async fn person_hash_key(&self) -> Result<Option<crate::crypto::Sealed>, StoreError> {
        Ok(self.with(|s| s.person_hash_key.clone()))
    }

    async fn swap_person_hash_key(
        &self,
        expected: Option<&crate::crypto::Sealed>,
        sealed: &crate::crypto::Sealed,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let swapped = s.person_hash_key.as_ref() == expected;
            if swapped {
                s.person_hash_key = Some(sealed.clone());
            }
            swapped
        }))
    }
}

impl Person {
    /// Whether a commit about this person is refused.
    pub(super) fn suppressed(&self) -> bool {
        self.suppressed_at.is_some()
    }
}
