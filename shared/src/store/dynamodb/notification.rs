//! Notifications, newest first.
use crate::domain::{Notification, NotificationId, OrganizationId};
use crate::store::dynamodb::item::{from_item, to_item};
use crate::store::dynamodb::keys::{NOTIFICATION_PREFIX, PK, SK, TTL, notification_sk, once_sk, org_pk};
use crate::store::dynamodb::shapes::{Query, put_item, ttl_of};
use crate::store::{DynamoStore, NotificationStore, PageOf, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// How long a once-key is remembered (a daily notice's day, and some).
const ONCE_KEPT: chrono::Duration = chrono::Duration::days(2);

#[async_trait]
impl NotificationStore for DynamoStore {
    async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, StoreError> {
        let query = Query { sk_prefix: Some(NOTIFICATION_PREFIX), newest_first: true, ..Query::partition(org_pk(org)) };
        let (items, next_cursor) = self.query(query, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn add_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        let org = &notification.organization_id;
        let item = to_item(notification, &[(PK, org_pk(org)), (SK, notification_sk(notification.id.as_str()))])?;
        self.put(item, None).await?;
        Ok(())
    }

    async fn add_notification_once(&self, notification: &Notification, once_key: &str) -> Result<bool, StoreError> {
        let org = &notification.organization_id;
        let table = self.table.as_str();
        let item = to_item(notification, &[(PK, org_pk(org)), (SK, notification_sk(notification.id.as_str()))])?;
        let mut once = Self::key(org_pk(org), &once_sk(once_key));
        once.insert(TTL.into(), ttl_of(notification.created_at + ONCE_KEPT));
        let items = vec![
            put_item(table, once, Some("attribute_not_exists(pk)"), None)?,
            put_item(table, item, Some("attribute_not_exists(pk)"), None)?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError> {
        let key = Self::key(org_pk(org), &notification_sk(id.as_str()));
        let values = HashMap::from([(":true".to_string(), AttributeValue::Bool(true))]);
        self.update_if(key, "SET #read = :true", "attribute_exists(pk)", &[("#read", "read")], values).await
    }
}
