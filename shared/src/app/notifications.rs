//! Notifications shown to every user of an organization.

use crate::app::{AppError, Services};
use crate::domain::{Notification, NotificationId, OrganizationId};
use crate::store::PageOf;

impl Services {
    /// One page of the organization's notifications, newest first.
    pub async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, AppError> {
        let cursor = self.cursor_position("notifications", org, cursor)?;
        let page = self.store.list_notifications(org, limit, cursor).await?;
        Ok(self.signed_page("notifications", org, page))
    }

    /// Marks a notification read; 404 when it is not this organization's.
    pub async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<(), AppError> {
        match self.store.mark_notification_read(org, id).await? {
            true => Ok(()),
            false => Err(AppError::NotFound("notification")),
        }
    }
}
