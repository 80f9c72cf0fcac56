//! Quotas per organization and subject.
use crate::domain::OrganizationId;
use crate::domain::quota::{Quota, QuotaTake, QuotaWindow};
use crate::store::{MemoryStore, QuotaStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl QuotaStore for MemoryStore {
    async fn take_quota(
        &self,
        org: &OrganizationId,
        quota: &Quota,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<QuotaTake, StoreError> {
        Ok(self.with(|s| {
            // Closed windows are dropped as new ones open, as the table's TTL does.
            s.quotas.retain(|_, w| w.ends_at > now);
            let key = (org.clone(), format!("{}#{subject}", quota.name));
            match QuotaWindow::take(s.quotas.get(&key).copied(), quota, now) {
                Ok(window) => {
                    s.quotas.insert(key, window);
                    QuotaTake::Granted
                }
                Err(retry_at) => QuotaTake::Exhausted { retry_at },
            }
        }))
    }
}
