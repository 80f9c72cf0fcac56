//! The `sync-scheduled` Lambda function: invoked by an EventBridge schedule, queues a sync job
//! for every active integration whose `next_sync_at` has passed.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first tick builds the use cases.
    let services = &shared::wiring::LazyServices::for_function("sync-scheduled");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (services, _) = services.get().await.map_err(|e| lambda_runtime::Diagnostic {
            error_type: "StartupError".into(),
            error_message: e.to_string(),
        })?;
        sync_scheduled::handle(&services, event.payload).await
    }))
    .await
}
