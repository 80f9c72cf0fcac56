//! Notifications, newest first.

use super::*;

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

    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), &notification_sk(id.as_str()))))
            .update_expression("SET #read = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#read", "read")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }
}
