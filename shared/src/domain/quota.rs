//! Quotas: how often one organization (or one of its users) may ask for something that costs
//! the organization's Calendly budget or the table's items. A fixed window opened by the first
//! use: simple to store in one item, and its end is the honest `Retry-After`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// At most `limit` uses per `window`, per subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// What is counted (part of the stored key: stable).
    pub name: &'static str,
    /// Uses per window.
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

/// Connect starts per user: a person needs one or two tries; ten in ten minutes bounds the
/// pending OAuth states (and their table items) one user can leave behind.
pub const CONNECT_STARTS: Quota = Quota { name: "connect-starts", limit: 10, window: Duration::minutes(10) };

/// Event-type listings read from Calendly per organization (each costs one request per page,
/// per member's page in organization scope); answers in between come from the cache.
pub const EVENT_TYPE_LISTINGS: Quota = Quota { name: "event-type-listings", limit: 6, window: Duration::minutes(5) };

/// Scope changes per organization: each one lists, deletes and creates webhook subscriptions
/// at Calendly, spending the connected user's per-minute budget (its syncs and deliveries wait).
/// A person switching back and forth needs a few; ten a minute bounds what a script can spend.
pub const SCOPE_CHANGES: Quota = Quota { name: "scope-changes", limit: 10, window: Duration::minutes(1) };

/// A subject's current window of a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaWindow {
    /// When the window closes (and the count starts again).
    pub ends_at: DateTime<Utc>,
    /// Uses so far in the window.
    pub used: u32,
}

/// What taking one use of a quota found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaTake {
    /// Counted: go ahead.
    Granted,
    /// Used up until `retry_at`.
    Exhausted {
        /// When the window closes.
        retry_at: DateTime<Utc>,
    },
}

impl QuotaWindow {
    /// The window after one more use at `now` (a new window when the stored one is over), or
    /// when the next use will be allowed.
    pub fn take(current: Option<Self>, quota: &Quota, now: DateTime<Utc>) -> Result<Self, DateTime<Utc>> {
        match current.filter(|w| w.ends_at > now) {
            None => Ok(Self { ends_at: now + quota.window, used: 1 }),
            Some(w) if w.used < quota.limit => Ok(Self { used: w.used + 1, ..w }),
            Some(w) => Err(w.ends_at),
        }
    }
}

/// Seconds until `at` for a `Retry-After`, at least one.
pub fn retry_after_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((at - now).num_milliseconds()).map_or(0, |ms| ms.div_ceil(1000)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_up_to_its_limit_then_says_when_it_reopens() {
        let quota = Quota { name: "q", limit: 2, window: Duration::seconds(60) };
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let first = QuotaWindow::take(None, &quota, t0).unwrap();
        let second = QuotaWindow::take(Some(first), &quota, t0 + Duration::seconds(10)).unwrap();
        assert_eq!(second, QuotaWindow { ends_at: t0 + Duration::seconds(60), used: 2 });
        assert_eq!(
            QuotaWindow::take(Some(second), &quota, t0 + Duration::seconds(59)),
            Err(t0 + Duration::seconds(60))
        );
        let reopened = QuotaWindow::take(Some(second), &quota, t0 + Duration::seconds(60)).unwrap();
        assert_eq!(reopened.used, 1);
        assert_eq!(retry_after_seconds(t0 + Duration::milliseconds(1500), t0), 2);
        assert_eq!(retry_after_seconds(t0, t0 + Duration::seconds(5)), 1);
    }
}
