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

    async fn add_notification_once(&self, notification: &Notification, once_key: &str) -> Result<bool, StoreError> {
        let org = &notification.organization_id;
        Ok(self.with(|s| {
            let key = (org.clone(), once_key.to_string());
            if s.once_keys.contains_key(&key) {
                return false;
            }
            s.once_keys.insert(key, notification.created_at + chrono::Duration::days(2));
            s.notifications.insert((org.clone(), notification.id.clone()), notification.clone());
            true
        }))
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
