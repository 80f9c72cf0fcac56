//! Quotas per organization and subject: one item per window, its `ttl` the window's end.
use crate::domain::OrganizationId;
use crate::domain::quota::{Quota, QuotaTake, QuotaWindow};
use crate::store::dynamodb::keys::{org_pk, quota_sk};
use crate::store::{DynamoStore, QuotaStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A quota window as stored, with the table's expiry.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredQuota {
    #[serde(flatten)]
    window: QuotaWindow,
    ttl: i64,
}

#[async_trait]
impl QuotaStore for DynamoStore {
    async fn take_quota(
        &self,
        org: &OrganizationId,
        quota: &Quota,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<QuotaTake, StoreError> {
        // A used-up window writes nothing: the refusal comes out beside the read-modify-write.
        let refused = std::sync::Mutex::new(None);
        let granted = self
            .update_versioned(
                org_pk(org),
                &quota_sk(quota.name, subject),
                |_| Vec::new(),
                |stored: Option<StoredQuota>| match QuotaWindow::take(stored.map(|s| s.window), quota, now) {
                    Ok(window) => Ok(Some((StoredQuota { window, ttl: window.ends_at.timestamp() }, ()))),
                    Err(retry_at) => {
                        *refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(retry_at);
                        Ok(None)
                    }
                },
            )
            .await?;
        let refused = *refused.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match (granted, refused) {
            (Some(()), _) | (None, None) => QuotaTake::Granted,
            (None, Some(retry_at)) => QuotaTake::Exhausted { retry_at },
        })
    }
}
