//! The organization's synced Calendly bookings.

use crate::app::{AppError, PageCursors};
use crate::domain::{Booking, OrganizationId};
use crate::store::{BookingStore, PageOf};
use std::sync::Arc;

/// Reading the synced bookings: the booking items and the cursors, nothing else.
#[derive(Clone)]
pub struct Bookings {
    store: Arc<dyn BookingStore>,
    cursors: PageCursors,
}

impl Bookings {
    /// The bookings of `store`, paged by `cursors`.
    pub fn new(store: Arc<dyn BookingStore>, cursors: PageCursors) -> Self {
        Self { store, cursors }
    }

    /// One page of the organization's Calendly bookings.
    pub async fn list(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, AppError> {
        let cursor = self.cursors.position("bookings", org, cursor)?;
        let page = self.store.list_bookings(org, limit, cursor).await?;
        Ok(self.cursors.signed("bookings", org, page))
    }
}
