//! Notifications shown to every user of an organization.

use crate::app::{AppError, PageCursors, Retention};
use crate::domain::{Notification, NotificationId, OrganizationId};
use crate::store::{NotificationStore, PageOf};
use std::sync::Arc;

/// Reading and marking notifications: the notification items and the cursors, nothing else.
#[derive(Clone)]
pub struct Notifications {
    store: Arc<dyn NotificationStore>,
    cursors: PageCursors,
    retention: Retention,
}

impl Notifications {
    /// The notifications of `store`, paged by `cursors`, those past the `retention` left out.
    pub fn new(store: Arc<dyn NotificationStore>, cursors: PageCursors, retention: Retention) -> Self {
        Self { store, cursors, retention }
    }

    /// One page of the organization's notifications, newest first.
    pub async fn list(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, AppError> {
        let cursor = self.cursors.position("notifications", org, cursor)?;
        let kept = self.retention.kept(org).await?;
        let mut page = self.store.list_notifications(org, limit, cursor).await?;
        page.items.retain(|n| kept.keeps(n.created_at, n.expires_at));
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
