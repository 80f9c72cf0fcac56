//! Notifications shown to every user of an organization.

use crate::app::{AppError, PageCursors};
use crate::domain::{Notification, NotificationId, OrganizationId};
use crate::store::{NotificationStore, PageOf};
use std::sync::Arc;

/// Reading and marking notifications: the notification items and the cursors, nothing else.
#[derive(Clone)]
pub struct Notifications {
    store: Arc<dyn NotificationStore>,
    cursors: PageCursors,
}

impl Notifications {
    /// The notifications of `store`, paged by `cursors`.
    pub fn new(store: Arc<dyn NotificationStore>, cursors: PageCursors) -> Self {
        Self { store, cursors }
    }

    /// One page of the organization's notifications, newest first.
    pub async fn list(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, AppError> {
        let cursor = self.cursors.position("notifications", org, cursor)?;
        let page = self.store.list_notifications(org, limit, cursor).await?;
        Ok(self.cursors.signed("notifications", org, page))
    }

    /// Marks a notification read; 404 when it is not this organization's.
    pub async fn mark_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<(), AppError> {
        match self.store.mark_notification_read(org, id).await? {
            true => Ok(()),
            false => Err(AppError::NotFound("notification")),
        }
    }
}
