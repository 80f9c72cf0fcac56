//! Notifications.
use crate::domain::{Notification, NotificationId, OrganizationId};
use crate::store::memory::paginate;
use crate::store::{MemoryStore, NotificationStore, PageOf, StoreError};
use async_trait::async_trait;

#[async_trait]
impl NotificationStore for MemoryStore {
    async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, StoreError> {
        let notifications: Vec<Notification> =
            self.with(|s| s.notifications.values().rev().filter(|n| &n.organization_id == org).cloned().collect());
        paginate(notifications, |n| n.id.to_string(), limit, cursor)
    }

    async fn add_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        self.with(|s| {
            s.notifications
                .insert((notification.organization_id.clone(), notification.id.clone()), notification.clone())
        });
        Ok(())
    }

    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.notifications.get_mut(&(org.clone(), id.clone())) {
            Some(n) => {
                n.read = true;
                true
            }
            None => false,
        }))
    }
}
