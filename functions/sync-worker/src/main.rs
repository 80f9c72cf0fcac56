//! The `sync-worker` Lambda function: consumes the sync job queue (SQS event source mapping).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

// One invocation at a time per container: one thread is enough, and starts faster and smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first batch reads the secret and builds the worker.
    let worker = &shared::startup::wiring::Lazy::<shared::app::Worker>::for_function("sync-worker");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (worker, _) = worker.get().await.map_err(Box::new)?;
        let deadline = sync_worker::slice_deadline(event.context.deadline, worker.job_budget());
        let answer = sync_worker::handle(&worker, event.payload, deadline).await;
        shared::telemetry::metrics::flush("sync-worker");
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
