//! The `sync-scheduled` handler at the level of its two events: EventBridge's schedule (one
//! tick: every due integration handed out as a queued sync job) and the tick queue's SQS
//! batch (what a tick near its deadline handed on). Both return at once (`app::schedule`).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shared::app::Scheduler;
use shared::domain::schedule::TickRest;
use std::time::Duration;
use tokio::time::Instant;

/// The tick stops this long before the invocation's deadline, on top of the scheduler's own
/// margin: the answer and the log lines are written in time.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Runs one tick (an EventBridge event) or resumes the rests of one (an SQS batch of the
/// tick queue, whose records that must come back are reported as batch item failures).
pub async fn handle(
    scheduler: &Scheduler,
    event: Value,
    deadline: Instant,
) -> Result<Value, lambda_runtime::Diagnostic> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|e| lambda_runtime::Diagnostic {
            error_type: "MalformedEvent".into(),
            error_message: format!("not an SQS batch: {e}"),
        })?;
        let answer = resume(scheduler, batch, deadline).await;
        return serde_json::to_value(answer)
            .map_err(|e| lambda_runtime::Diagnostic { error_type: "Encoding".into(), error_message: e.to_string() });
    }
    tracing::info!(source = ?event.get("source"), detail_type = ?event.get("detail-type"), "scheduled sync");
    let report = scheduler.tick(deadline).await.map_err(|e| lambda_runtime::Diagnostic {
        error_type: format!("AppError::{}", e.kind()),
        error_message: e.to_string(),
    })?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}

/// Each record is one rest of a tick, resumed in turn (a rest already takes the invocation's
/// time); a malformed or failed one comes back, and after `maxReceiveCount` tries waits in the
/// tick queue's dead-letter queue.
async fn resume(scheduler: &Scheduler, batch: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let id = record.message_id.unwrap_or_default();
        let resumed = match serde_json::from_str::<TickRest>(record.body.as_deref().unwrap_or_default()) {
            Ok(rest) => scheduler.resume(rest, deadline).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(format!("malformed tick message: {e}")),
        };
        if let Err(error) = resumed {
            tracing::error!(message_id = %id, %error, "a handed-on tick failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The tick's deadline for an invocation that must end by `invocation_deadline_ms` (epoch ms).
pub fn tick_deadline(invocation_deadline_ms: u64) -> Instant {
    shared::clock::before_invocation_deadline(invocation_deadline_ms, DEADLINE_MARGIN)
}
