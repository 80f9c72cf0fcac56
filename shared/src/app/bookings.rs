//! The organization's synced Calendly bookings.

use crate::app::{AppError, Services};
use crate::domain::{Booking, OrganizationId};
use crate::store::PageOf;

impl Services {
    /// One page of the organization's Calendly bookings.
    pub async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, AppError> {
        let cursor = self.cursor_position("bookings", org, cursor)?;
        let page = self.store.list_bookings(org, limit, cursor).await?;
        Ok(self.signed_page("bookings", org, page))
    }
}
