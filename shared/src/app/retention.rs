//! What reads leave out under the organization's retention, before the table's TTL (or the
//! sweep of older items) deletes it.

use crate::app::AppError;
use crate::clock::Clock;
use crate::domain::OrganizationId;
use crate::store::IntegrationStore;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The organization's retention as reads apply it.
#[derive(Clone)]
pub struct Retention {
    integrations: Arc<dyn IntegrationStore>,
    clock: Arc<dyn Clock>,
}

/// Whether an item is kept: not past its own expiry, nor dated before the current cut-off.
#[derive(Clone, Copy, Debug)]
pub struct Kept {
    now: DateTime<Utc>,
    cutoff: Option<DateTime<Utc>>,
}

impl Kept {
    /// Whether an item dated `at` (a booking's end, a notification's creation) that expires at
    /// `expires_at` is still shown.
    pub fn keeps(&self, at: DateTime<Utc>, expires_at: Option<DateTime<Utc>>) -> bool {
        expires_at.is_none_or(|end| end > self.now) && self.cutoff.is_none_or(|cutoff| at >= cutoff)
    }
}

impl Retention {
    /// The retention of the integrations in `integrations`, at the time of `clock`.
    pub fn new(integrations: Arc<dyn IntegrationStore>, clock: Arc<dyn Clock>) -> Self {
        Self { integrations, clock }
    }

    /// What the organization's reads keep now (its retention may have changed since items were
    /// written: the current one applies at once).
    pub async fn kept(&self, org: &OrganizationId) -> Result<Kept, AppError> {
        let now = self.clock.now();
        let days = self.integrations.get_integration(org).await?.and_then(|i| i.retention_days);
        Ok(Kept { now, cutoff: days.map(|d| now - chrono::Duration::days(i64::from(d))) })
    }
}
