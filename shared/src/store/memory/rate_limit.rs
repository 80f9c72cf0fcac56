//! Calendly rate-limit windows.
use crate::calendly::RateWindow;
use crate::store::{MemoryStore, RateLimitStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn get_rate_window(&self, user_uri: &str) -> Result<Option<RateWindow>, StoreError> {
        Ok(self.with(|s| s.rate_windows.get(user_uri).copied()))
    }

    async fn record_rate_window(&self, user_uri: &str, window: &RateWindow) -> Result<(), StoreError> {
        self.with(|s| {
            let stored = s.rate_windows.entry(user_uri.to_string()).or_insert(*window);
            if window.supersedes(stored) {
                *stored = *window;
            }
        });
        Ok(())
    }
}
