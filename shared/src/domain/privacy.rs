//! Privacy: the keyed hash a person is known by (never their e-mail), what an erasure removed,
//! and the retention of what came from Calendly.

use super::{NotificationId, OrganizationId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who a person is to the suppression list and the person index: keyed hashes (HMAC-SHA256)
/// of their normalized e-mail, under the current privacy key and, while a key roll is under
/// way, the previous one. Holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonKeys {
    /// The hash under the current key: what is written.
    pub current: String,
    /// The hash under the previous key: still checked, never written.
    pub previous: Option<String>,
}

impl PersonKeys {
    /// Every hash to check, current first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.current.as_str()).chain(self.previous.as_deref())
    }
}

/// What the store has recorded about one person of an organization: the bookings and
/// notifications that commits wrote about them (indexed in the same all-or-nothing write).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonIndex {
    /// The bookings' ids (invitee UUIDs).
    pub bookings: Vec<String>,
    /// The notifications' ids.
    pub notifications: Vec<NotificationId>,
    /// The bookings (invitee UUIDs) that name them as a guest: an erasure takes them out of
    /// those, the invitee's booking stays.
    pub guest_of: Vec<String>,
}

impl PersonIndex {
    /// Adds another index's ids (the previous key's), without duplicates.
    pub fn merge(&mut self, other: PersonIndex) {
        for id in other.bookings {
            if !self.bookings.contains(&id) {
                self.bookings.push(id);
            }
        }
        for id in other.notifications {
            if !self.notifications.contains(&id) {
                self.notifications.push(id);
            }
        }
        for id in other.guest_of {
            if !self.guest_of.contains(&id) {
                self.guest_of.push(id);
            }
        }
    }
}

/// What Calendly said to a deletion request for the invitee's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalendlyErasure {
    /// Not asked for.
    NotRequested,
    /// Calendly accepted the request (it completes within 7 days, on Calendly's side).
    Requested,
    /// Calendly can't (not an Enterprise plan, the scope not granted, not connected...).
    Unavailable,
}

/// What one erasure removed (its answer and its audit entry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureCounts {
    /// Prospects deleted.
    pub prospects: u64,
    /// Bookings deleted.
    pub bookings: u64,
    /// Notifications deleted.
    pub notifications: u64,
}

/// One erasure, as the audit keeps it: no personal data, only the keyed hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// Its id (time-ordered: the audit lists newest first).
    pub id: String,
    /// The organization it erased from.
    pub organization_id: OrganizationId,
    /// The CRM user who asked (the token's `sub`).
    pub requested_by: UserId,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// The keyed hash of the e-mail erased.
    pub person: String,
    /// What was removed.
    pub counts: ErasureCounts,
    /// What Calendly said.
    pub calendly: CalendlyErasure,
    /// Why Calendly couldn't, when it couldn't.
    pub calendly_reason: Option<String>,
}

/// Bookings (by their event's end) and notifications are kept at most this many days when the
/// organization sets a retention (`PATCH /calendly/settings {"retention_days"}`).
pub const RETENTION_DAYS_RANGE: std::ops::RangeInclusive<u32> = 30..=3650;

/// Whether an item dated `at` is past the retention of `days` at `now` (what reads skip before
/// the table's TTL deletes it).
pub fn expired(at: DateTime<Utc>, days: Option<u32>, now: DateTime<Utc>) -> bool {
    expiry(at, days).is_some_and(|end| end <= now)
}

/// When an item dated `at` (a booking's end, a notification's creation) expires under a
/// retention of `days`; `None` keeps it.
pub fn expiry(at: DateTime<Utc>, days: Option<u32>) -> Option<DateTime<Utc>> {
    days.map(|d| at + chrono::Duration::days(i64::from(d)))
}
