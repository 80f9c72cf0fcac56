//! What the engine does besides syncing: the retention sweep and the webhook-gaps notice.

use super::*;

impl SyncEngine {
    pub(super) fn remember_gaps_notice(&self, seen: String) {
        let mut done = self.gaps_noticed.lock().unwrap_or_else(|e| e.into_inner());
        // Keys of past days are of no use: forgotten together now and then.
        if done.len() >= 10_000 {
            done.clear();
        }
        done.insert(seen);
    }

    /// Deletes what the organization's retention let expire and the table's TTL has not yet
    /// (items written before the retention was set carry no TTL), a few pages at a time; the
    /// next sync goes on. How many were deleted.
    pub async fn sweep_expired(&self, integration: &Integration) -> Result<u64, StoreError> {
        let Some(days) = integration.retention_days else { return Ok(0) };
        let cutoff = self.clock.now() - chrono::Duration::days(i64::from(days));
        let org = &integration.organization_id;
        let mut deleted = 0;
        for family in [CalendlyData::Bookings, CalendlyData::Notifications] {
            let mut cursor = None;
            for _ in 0..RETENTION_SWEEP_PAGES {
                let (n, next) =
                    self.store.delete_calendly_data(org, family, Some(cutoff), 100, cursor.as_deref()).await?;
                deleted += n;
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        if deleted > 0 {
            tracing::info!(organization_id = %org, deleted, "items past the retention deleted");
        }
        Ok(deleted)
    }

    /// Once a day, while the ledger counts bookings the webhook missed, the organization is
    /// told how many and since when (`calendly_webhook_gaps`). A failure only loses the notice.
    pub(super) async fn notice_webhook_gaps(&self, integration: &Integration, style: &NoteStyle) {
        let org = &integration.organization_id;
        let now = self.clock.now();
        let once_key = ledger::gaps_notice_key(now);
        let seen = format!("{org}|{once_key}");
        let noticed = |s: &Self| s.gaps_noticed.lock().unwrap_or_else(|e| e.into_inner()).contains(&seen);
        if noticed(self) {
            return;
        }
        let hours = match self.store.ledger_hours(org).await {
            Ok(hours) => hours,
            Err(e) => return tracing::warn!(organization_id = %org, error = %e, "could not read the delivery ledger"),
        };
        let health = ledger::WebhookHealth::from_hours(&hours, now);
        if health.missed_24h == 0 {
            return;
        }
        let mut notice = ledger::gaps_notification(org, &health, style, now);
        notice.expires_at = expiry(now, integration.retention_days);
        match self.store.add_notification_once(&notice, &once_key).await {
            Ok(added) => {
                self.remember_gaps_notice(seen);
                if added {
                    tracing::warn!(organization_id = %org, missed_24h = health.missed_24h, "bookings reached us by the sync only: the webhook missed them");
                    self.pusher.push(org, PushMessage::notification(&notice)).await;
                }
            }
            Err(e) => tracing::warn!(organization_id = %org, error = %e, "could not add the webhook gaps notice"),
        }
    }
}
