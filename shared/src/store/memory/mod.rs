//! The embedded store: every port in one process, behind one lock. It enforces the same
//! guards as the DynamoDB adapter (revision, email claim, lease, token version), so the
//! exactly-once tests mean the same thing on both.

mod booking;
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
mod sync_job;

use crate::calendly::RateWindow;
use crate::domain::quota::QuotaWindow;
use crate::domain::{
    Booking, CommittedCounts, ErasureRecord, Integration, Notification, NotificationId, OAuthState, OrganizationId,
    PersonIndex, Prospect, ProspectId, SyncJob,
};
use crate::store::{Connection, PageOf, StoreError, cursor};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

type Key<T> = (OrganizationId, T);

#[derive(Default)]
struct State {
    organizations: HashMap<OrganizationId, Map<String, Value>>,
    oauth_states: HashMap<String, OAuthState>,
    integrations: HashMap<OrganizationId, Integration>,
    bookings: HashMap<Key<String>, Booking>,
    fingerprints: HashMap<Key<String>, (String, Option<DateTime<Utc>>)>,
    prospects: HashMap<Key<ProspectId>, Prospect>,
    email_claims: HashMap<Key<String>, ProspectId>,
    notifications: BTreeMap<Key<NotificationId>, Notification>,
    connections: BTreeMap<Key<String>, Connection>,
    connection_owners: HashMap<String, OrganizationId>,
    sync_jobs: HashMap<OrganizationId, SyncJob>,
    calendly_user_claims: HashMap<String, (OrganizationId, DateTime<Utc>)>,
    rate_windows: HashMap<String, RateWindow>,
    quotas: HashMap<Key<String>, QuotaWindow>,
    committed_counts: HashMap<Key<String>, CommittedCounts>,
    /// By the current key's hash of the person (and the previous key's, left from a roll).
    people: HashMap<Key<String>, Person>,
    erasures: BTreeMap<Key<String>, ErasureRecord>,
    /// The deployment's person-hash key, sealed.
    person_hash_key: Option<crate::crypto::Sealed>,
    /// The webhook delivery ledger, by organization and hour.
    ledger: BTreeMap<Key<DateTime<Utc>>, crate::domain::ledger::LedgerHour>,
    /// Routing form submissions' joins, by submission UUID.
    submission_links: HashMap<Key<String>, crate::domain::routing::SubmissionLink>,
    /// Once-keys of notices, and when they are forgotten.
    once_keys: HashMap<Key<String>, DateTime<Utc>>,
}

/// What is known of one person of an organization: the index of what commits wrote about them
/// and, once erased, since when they are suppressed.
#[derive(Clone, Debug, Default)]
struct Person {
    index: PersonIndex,
    suppressed_at: Option<DateTime<Utc>>,
}

/// The in-memory store used by the local stack and fast tests.
pub struct MemoryStore {
    state: Mutex<State>,
    /// How many parts the schedule is kept in (as the DynamoDB store's due index).
    due_shards: u16,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { state: Mutex::default(), due_shards: super::DEFAULT_DUE_SHARDS }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same store with its schedule kept in `shards` parts.
    pub fn with_due_shards(mut self, shards: u16) -> Self {
        self.due_shards = shards.max(1);
        self
    }

    /// Applies a transition to the organization's integration; false when there is none or
    /// the transition refused.
    fn change_integration(&self, org: &OrganizationId, change: impl FnOnce(&mut Integration) -> bool) -> bool {
        self.with(|s| s.integrations.get_mut(org).is_some_and(change))
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock means a panic mid-write in a test; the data is still consistent
        // because every write below validates before it mutates.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

impl State {
    /// Drops what is past its retention at `now`, as DynamoDB's TTL does (some time after).
    fn drop_expired(&mut self, now: DateTime<Utc>) {
        let live = |expires_at: Option<DateTime<Utc>>| expires_at.is_none_or(|at| at > now);
        self.bookings.retain(|_, b| live(b.expires_at));
        self.notifications.retain(|_, n| live(n.expires_at));
        self.fingerprints.retain(|_, (_, expires_at)| live(*expires_at));
        self.ledger.retain(|_, h| h.hour + crate::domain::ledger::LEDGER_KEPT > now);
        self.once_keys.retain(|_, until| *until > now);
    }
}

/// Pages `items` (already sorted) after the position in `cursor`, by `position`.
fn paginate<T: Clone>(
    items: Vec<T>,
    position: impl Fn(&T) -> String,
    limit: usize,
    cursor: Option<&str>,
) -> Result<PageOf<T>, StoreError> {
    let after = cursor::decode(cursor)?;
    let start = match &after {
        None => 0,
        Some(after) => {
            items.iter().position(|i| &position(i) == after).map(|i| i + 1).ok_or(StoreError::InvalidCursor)?
        }
    };
    let limit = limit.max(1);
    let page: Vec<T> = items.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + page.len() < items.len())
        .then(|| cursor::encode(&position(page.last().expect("a non-final page is not empty"))));
    Ok(PageOf { items: page, next_cursor })
}
