//! The `sync-scheduled` Lambda function: invoked by an EventBridge schedule, queues a sync job
//! for every active integration whose `next_sync_at` has passed.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    let services = shared::wiring::services_from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        sync_scheduled::handle(services, event.payload).await
    }))
    .await
}
