//! Bookings, applied with their prospect change all or nothing.

use crate::domain::booking::{BookingPlan, ProspectChange};
use crate::domain::bounds::MAX_INLINE_NOTES;
use crate::domain::{Booking, OrganizationId};
use crate::store::memory::{State, paginate};
use crate::store::{BookingStore, CommitConflict, CommitError, MemoryStore, PageOf, StoreError};
use async_trait::async_trait;
use std::collections::HashMap;

#[async_trait]
impl BookingStore for MemoryStore {
    async fn get_booking(&self, org: &OrganizationId, invitee_uuid: &str) -> Result<Option<Booking>, StoreError> {
        Ok(self.with(|s| s.bookings.get(&(org.clone(), invitee_uuid.to_string())).cloned()))
    }

    async fn commit_booking(&self, plan: &BookingPlan) -> Result<(), CommitError> {
        let org = &plan.booking.organization_id;
        let booking_key = (org.clone(), plan.booking.id().to_string());
        self.with(|s| {
            // The table's TTL, here: what the organization's retention let expire goes at the
            // next write (reads skip it before).
            s.drop_expired(plan.booking.updated_at);
            // Check every guard before touching anything: all or nothing.
            let active = s.integrations.get(org).is_some_and(|i| i.is_active && i.id == plan.booking.integration_id);
            if !active {
                return Err(CommitConflict::IntegrationInactive.into());
            }
            let stored_revision = s.bookings.get(&booking_key).map(|b| b.revision);
            if stored_revision != plan.expected_revision {
                return Err(CommitConflict::BookingChanged.into());
            }
            let person = plan.person.as_ref().filter(|_| plan.indexes_person());
            if s.person_suppressed(org, person) {
                return Err(CommitConflict::Suppressed.into());
            }
            match s.prospect_change_holds(org, &plan.prospect) {
                Ok(()) => {}
                Err(Guard::Claim) => return Err(CommitConflict::EmailClaimed.into()),
                Err(Guard::Notes) => return Err(CommitConflict::ProspectMissing.into()),
            }
            if plan.submission_link.as_ref().is_some_and(|link| !s.link_holds(org, link)) {
                return Err(CommitConflict::SubmissionChanged.into());
            }
            for (key, person) in &plan.guest_people {
                if s.person_suppressed(org, Some(person)) {
                    return Err(CommitConflict::GuestSuppressed(key.clone()).into());
                }
            }
            for guest in &plan.guests {
                if s.prospect_change_holds(org, &guest.prospect).is_err() {
                    return Err(CommitConflict::GuestChanged.into());
                }
            }
            let at = plan.booking.updated_at;
            for change in std::iter::once(&plan.prospect).chain(plan.guests.iter().map(|g| &g.prospect)) {
                s.write_prospect_change(org, change, at);
            }
            if let Some(n) = &plan.notification {
                s.notifications.insert((org.clone(), n.id.clone()), n.clone());
            }
            if let Some(person) = person {
                let index = &mut s.people.entry((org.clone(), person.current.clone())).or_default().index;
                let mut added = crate::domain::PersonIndex::default();
                if plan.expected_revision.is_none() {
                    added.bookings.push(plan.booking.id().to_string());
                }
                added.notifications.extend(plan.notification.as_ref().map(|n| n.id.clone()));
                index.merge(added);
            }
            if let Some(link) = &plan.submission_link {
                s.write_link(org, link);
            }
            for (_, person) in &plan.guest_people {
                let guest_of = &mut s.people.entry((org.clone(), person.current.clone())).or_default().index.guest_of;
                if !guest_of.iter().any(|id| id == plan.booking.id()) {
                    guest_of.push(plan.booking.id().to_string());
                }
            }
            if let Some(created_at) = plan.missed_delivery {
                s.ledger_hour(org, plan.booking.updated_at).missed_at(created_at);
            }
            if let Some(job_id) = &plan.counted_for {
                s.committed_counts.entry((org.clone(), job_id.clone())).or_default().add(&plan.counts());
            }
            s.bookings.insert(booking_key, plan.booking.clone());
            Ok(())
        })
    }

    async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, StoreError> {
        let mut bookings: Vec<Booking> =
            self.with(|s| s.bookings.values().filter(|b| &b.organization_id == org).cloned().collect());
        let position = |b: &Booking| format!("{}#{}", b.details.start_time.timestamp_micros(), b.id());
        bookings.sort_by_key(|b| std::cmp::Reverse(position(b)));
        paginate(bookings, position, limit, cursor)
    }

    async fn event_fingerprints(
        &self,
        org: &OrganizationId,
        event_uuids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        Ok(self.with(|s| {
            event_uuids
                .iter()
                .filter_map(|uuid| {
                    s.fingerprints.get(&(org.clone(), uuid.clone())).map(|f| (uuid.clone(), f.0.clone()))
                })
                .collect()
        }))
    }

    async fn put_event_fingerprint(
        &self,
        org: &OrganizationId,
        event_uuid: &str,
        fingerprint: &str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            s.fingerprints.insert((org.clone(), event_uuid.to_string()), (fingerprint.to_string(), expires_at))
        });
        Ok(())
    }
}

/// Which guard of a prospect change failed.
pub(super) enum Guard {
    /// A new prospect's e-mail is claimed.
    Claim,
    /// The prospect appended to is gone or full, or the one rewritten changed since read.
    Notes,
}

impl State {
    /// Whether `person` is on the organization's suppression list (by any of their hashes).
    pub(super) fn person_suppressed(&self, org: &OrganizationId, person: Option<&crate::domain::PersonKeys>) -> bool {
        person.is_some_and(|p| {
            p.all().any(|hash| self.people.get(&(org.clone(), hash.to_string())).is_some_and(|p| p.suppressed()))
        })
    }

    /// Whether `change` can be written as planned.
    pub(super) fn prospect_change_holds(&self, org: &OrganizationId, change: &ProspectChange) -> Result<(), Guard> {
        match change {
            ProspectChange::Create(p) => {
                let claim = p.email.as_ref().map(|e| (org.clone(), e.key()));
                if claim.as_ref().is_some_and(|c| self.email_claims.contains_key(c)) {
                    return Err(Guard::Claim);
                }
            }
            ProspectChange::Append { prospect_id, notes } => {
                let room = self
                    .prospects
                    .get(&(org.clone(), prospect_id.clone()))
                    .is_some_and(|p| p.notes.len() + notes.len() <= MAX_INLINE_NOTES);
                if !room {
                    return Err(Guard::Notes);
                }
            }
            ProspectChange::Rewrite { prospect_id, expected_len, expected_updated_at, .. } => {
                let unchanged = self
                    .prospects
                    .get(&(org.clone(), prospect_id.clone()))
                    .is_some_and(|p| p.notes.len() == *expected_len && p.updated_at == *expected_updated_at);
                if !unchanged {
                    return Err(Guard::Notes);
                }
            }
            ProspectChange::None => {}
        }
        Ok(())
    }

    /// Writes `change` (its guards checked).
    pub(super) fn write_prospect_change(
        &mut self,
        org: &OrganizationId,
        change: &ProspectChange,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        match change {
            ProspectChange::Create(p) => {
                if let Some(email) = &p.email {
                    self.email_claims.insert((org.clone(), email.key()), p.id.clone());
                }
                self.prospects.insert((org.clone(), p.id.clone()), p.clone());
            }
            ProspectChange::Append { prospect_id, notes } => {
                if let Some(p) = self.prospects.get_mut(&(org.clone(), prospect_id.clone())) {
                    p.notes.extend(notes.iter().cloned());
                    p.updated_at = at;
                }
            }
            ProspectChange::Rewrite { prospect_id, notes, fields, .. } => {
                if let Some(p) = self.prospects.get_mut(&(org.clone(), prospect_id.clone())) {
                    if let Some(fields) = fields {
                        fields.apply_to(p);
                    }
                    p.notes = notes.clone();
                    p.updated_at = at;
                }
            }
            ProspectChange::None => {}
        }
    }
}

#[async_trait]
impl crate::store::BookingContextStore for MemoryStore {
    async fn booking_context(
        &self,
        org: &OrganizationId,
        invitee_uuid: &str,
        email_key: Option<&str>,
    ) -> Result<crate::store::BookingContext, StoreError> {
        use crate::store::{ConnectionStore, OrganizationStore, ProspectStore};
        let prospect_with_email = match email_key {
            Some(key) => self.find_prospect_by_email(org, key).await?,
            None => None,
        };
        Ok(crate::store::BookingContext {
            organization: self.get_organization(org).await?,
            stored: self.get_booking(org, invitee_uuid).await?,
            prospect_with_email,
            connections: Some(self.connections(org).await?),
        })
    }
}
