//! The `sync-scheduled` Lambda function: invoked by an EventBridge schedule, queues a sync job
//! for every active integration whose `next_sync_at` has passed; invoked by its tick queue, it
//! carries on what a tick near its deadline handed on. It reads no secret.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

// One invocation at a time per container: one thread is enough, and starts faster and smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first tick builds the table's and the queue's clients.
    let scheduler = &tokio::sync::OnceCell::new();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let scheduler = scheduler.get_or_try_init(shared::startup::wiring::scheduler_from_env).await.map_err(|e| {
            lambda_runtime::Diagnostic { error_type: "StartupError".into(), error_message: e.to_string() }
        })?;
        let deadline = sync_scheduled::tick_deadline(event.context.deadline);
        let answer = sync_scheduled::handle(scheduler, event.payload, deadline).await;
        shared::telemetry::metrics::flush("sync-scheduled");
        answer
    }))
    .await
}
