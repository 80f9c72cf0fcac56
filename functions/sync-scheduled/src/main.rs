//! The `sync-scheduled` Lambda function: invoked by an EventBridge schedule, syncs every
//! active integration whose `next_sync_at` has passed.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    let services = shared::wiring::services_from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let services = services.clone();
        async move {
            tracing::info!(source = ?event.payload.get("source"), "scheduled sync");
            // The invocation fails with the failure's kind as its `errorType` (EventBridge retries).
            services.run_scheduled_syncs().await.map_err(|e| lambda_runtime::Diagnostic {
                error_type: format!("AppError::{}", e.kind()),
                error_message: e.to_string(),
            })
        }
    }))
    .await
}
