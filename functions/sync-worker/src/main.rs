//! The `sync-worker` Lambda function: consumes the sync job queue (SQS event source mapping).

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    let services = shared::wiring::services_from_env().await?;
    let services = &services;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = sync_worker::slice_deadline(event.context.deadline, services.job_budget());
        Ok::<_, lambda_runtime::Error>(sync_worker::handle(services, event.payload, deadline).await)
    }))
    .await
}
