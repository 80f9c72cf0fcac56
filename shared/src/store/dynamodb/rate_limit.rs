//! Calendly rate-limit windows per Calendly user, shared by workers.
use crate::calendly::RateWindow;
use crate::store::dynamodb::item::from_item;
use crate::store::dynamodb::keys::{RATE_WINDOW_SK, calendly_user_pk};
use crate::store::{DynamoStore, RateLimitStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn get_rate_window(&self, user_uri: &str) -> Result<Option<RateWindow>, StoreError> {
        self.get(calendly_user_pk(user_uri), RATE_WINDOW_SK).await?.map(|i| from_item(&i)).transpose()
    }

    async fn record_rate_window(&self, user_uri: &str, window: &RateWindow) -> Result<(), StoreError> {
        self.update_versioned(
            calendly_user_pk(user_uri),
            RATE_WINDOW_SK,
            |_| Vec::new(),
            |stored: Option<RateWindow>| {
                Ok(stored.is_none_or(|stored| window.supersedes(&stored)).then_some((*window, ())))
            },
        )
        .await?;
        Ok(())
    }
}
