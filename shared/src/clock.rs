//! Time as a port, so tests and the local stack can move it forward (token expiry, schedules).

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, optionally shifted forward (tests and benchmarks move the local stack's
/// clock past a sync interval or a state's expiry).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_ms: AtomicI64,
}

impl SystemClock {
    /// Moves this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// The instant `margin` before a Lambda invocation's deadline (`deadline_ms`, epoch ms, as the
/// runtime hands it): when a handler stops starting work, to answer in time.
pub fn before_invocation_deadline(deadline_ms: u64, margin: std::time::Duration) -> tokio::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(margin);
    tokio::time::Instant::now() + left
}
