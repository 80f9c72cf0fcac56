//! The SQS adapter of the job queue (`SendMessageBatch`, ten messages a request).

use super::{JobQueue, MAX_DELAY, QueueError, TickQueue};
use crate::domain::SyncJobMessage;
use crate::domain::schedule::TickRest;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// SQS takes at most ten messages per batch request.
const BATCH: usize = 10;

/// A queue on SQS, by URL.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    /// `SendMessageBatch` requests so far (the benchmarks' cost figures).
    requests: Arc<AtomicU64>,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into(), requests: Arc::default() }
    }

    /// Send requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, messages: &[SyncJobMessage], delay: Duration) -> Result<(), QueueError> {
        self.send_all(messages, delay).await
    }
}

#[async_trait]
impl TickQueue for SqsQueue {
    async fn hand_on(&self, rests: &[TickRest]) -> Result<(), QueueError> {
        self.send_all(rests, Duration::ZERO).await
    }
}

impl SqsQueue {
    /// Sends each of `messages` as JSON, ten a request.
    async fn send_all(&self, messages: &[impl serde::Serialize + Sync], delay: Duration) -> Result<(), QueueError> {
        let delay_seconds = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(900);
        for chunk in messages.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (index, message) in chunk.iter().enumerate() {
                let body = serde_json::to_string(message).map_err(|e| QueueError::Send(Box::new(e)))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(body)
                        .delay_seconds(delay_seconds)
                        .build()
                        .map_err(|e| QueueError::Send(Box::new(e)))?,
                );
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Send(Box::new(e)))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError::Send(
                    format!(
                        "{} of {} messages refused: {} {}",
                        out.failed().len(),
                        chunk.len(),
                        failed.code(),
                        failed.message().unwrap_or_default()
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }
}
