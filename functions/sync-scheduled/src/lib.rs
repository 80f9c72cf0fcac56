//! The `sync-scheduled` handler at the level of EventBridge's event: one scheduled tick, which
//! queues a sync job for every integration that is due and returns at once (`app::sync`).

use serde_json::Value;
use shared::app::Scheduler;

/// Runs one tick; the counts of queued, already running and failed organizations. A failure
/// fails the invocation with its kind as the `errorType` (EventBridge retries it).
pub async fn handle(scheduler: &Scheduler, event: Value) -> Result<Value, lambda_runtime::Diagnostic> {
    tracing::info!(source = ?event.get("source"), detail_type = ?event.get("detail-type"), "scheduled sync");
    scheduler.run().await.map_err(|e| lambda_runtime::Diagnostic {
        error_type: format!("AppError::{}", e.kind()),
        error_message: e.to_string(),
    })
}
