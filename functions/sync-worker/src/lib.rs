//! The `sync-worker` handler at the level of SQS's event: each record is one slice of one sync
//! job, run concurrently; records that must come back are reported as batch item failures
//! (`ReportBatchItemFailures`), so the others are deleted.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use shared::app::Worker;
use std::time::Duration;
use tokio::time::Instant;

/// A slice stops this long before the invocation's deadline: time to save and re-queue.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(15);

/// Runs every record's slice until `deadline`; the ids of records the queue must bring back.
pub async fn handle(worker: &Worker, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let failures = futures::stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.unwrap_or_default();
            let body = record.body.unwrap_or_default();
            match worker.handle_job_delivery(&body, deadline).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "sync job message failed; SQS will redeliver it");
                    Some(id)
                }
            }
        })
        .buffer_unordered(10)
        .filter_map(|failed| async move { failed })
        .collect::<Vec<String>>()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The slice deadline for an invocation that must end by `invocation_deadline_ms` (epoch ms),
/// capped by the configured job budget.
pub fn slice_deadline(invocation_deadline_ms: u64, budget: Duration) -> Instant {
    shared::clock::before_invocation_deadline(invocation_deadline_ms, DEADLINE_MARGIN).min(Instant::now() + budget)
}
