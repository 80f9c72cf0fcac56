//! The organization's synced Calendly bookings.

use crate::app::{AppError, PageCursors, Retention};
use crate::domain::{Booking, OrganizationId};
use crate::store::{BookingStore, PageOf};
use std::sync::Arc;

/// Reading the synced bookings: the booking items and the cursors, nothing else.
#[derive(Clone)]
pub struct Bookings {
    store: Arc<dyn BookingStore>,
    cursors: PageCursors,
    retention: Retention,
}

impl Bookings {
    /// The bookings of `store`, paged by `cursors`, those past the `retention` left out.
    pub fn new(store: Arc<dyn BookingStore>, cursors: PageCursors, retention: Retention) -> Self {
        Self { store, cursors, retention }
    }

    /// One page of the organization's Calendly bookings.
    pub async fn list(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, AppError> {
        let cursor = self.cursors.position("bookings", org, cursor)?;
        let kept = self.retention.kept(org).await?;
        let mut page = self.store.list_bookings(org, limit, cursor).await?;
        page.items.retain(|b| kept.keeps(b.details.end_time, b.expires_at));
        Ok(self.cursors.signed("bookings", org, page))
    }
}
