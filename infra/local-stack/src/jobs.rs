//! The local stack's job queue and workers. Either queue feeds the `sync-worker` function's own
//! handler (an SQS event of the delivered messages), so locally jobs take production's path:
//! - embedded (default): messages in memory, delays as timers, `SYNC_WORKERS` at once;
//! - `QUEUE=sqs`: any SQS-compatible endpoint (`AWS_ENDPOINT_URL_SQS`, moto in tests), polled
//!   like Lambda's event source mapping: up to 10 messages a receive, deleted unless reported
//!   as batch item failures (those come back after the visibility timeout).

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use shared::app::Services;
use shared::queue::{Delivery, EmbeddedQueue, JobQueue, SqsQueue, embedded::EmbeddedReceiver};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Seconds a received message stays invisible (the template's queue says the same).
pub const VISIBILITY_TIMEOUT_SECS: i32 = 720;
/// Between empty receives. Short polling only: the tests' moto serializes every request, so a
/// long poll would hold DynamoDB up.
const EMPTY_POLL_PAUSE: Duration = Duration::from_millis(100);

/// A queue and what runs its workers once the services exist.
pub enum LocalQueue {
    /// In-process timers and a worker pool (the default).
    Embedded {
        /// The sending side.
        queue: EmbeddedQueue,
        /// What the workers take deliveries from.
        receiver: EmbeddedReceiver,
    },
    /// A real SQS queue (`QUEUE=sqs`), polled like Lambda's event source mapping would.
    Sqs {
        /// The sending side.
        queue: SqsQueue,
        /// The client the poller receives and deletes with.
        client: aws_sdk_sqs::Client,
        /// The queue's URL.
        url: String,
    },
}

impl LocalQueue {
    /// The sending side, for the services.
    pub fn sender(&self) -> Arc<dyn JobQueue> {
        match self {
            Self::Embedded { queue, .. } => Arc::new(queue.clone()),
            Self::Sqs { queue, .. } => Arc::new(queue.clone()),
        }
    }

    /// Starts `workers` concurrent consumers running `sync-worker`'s handler.
    pub fn start_workers(self, services: Services, workers: usize) {
        match self {
            Self::Embedded { receiver, .. } => {
                tokio::spawn(receiver.run_workers(workers, move |delivery: Delivery| {
                    let services = services.clone();
                    async move {
                        let event = sqs_event(vec![(delivery.id, delivery.body)]);
                        let deadline = Instant::now() + services.worker().job_budget();
                        sync_worker::handle(services.worker(), event, deadline).await.batch_item_failures.is_empty()
                    }
                }));
            }
            Self::Sqs { client, url, .. } => {
                for _ in 0..workers.max(1) {
                    tokio::spawn(poll(services.clone(), client.clone(), url.clone()));
                }
            }
        }
    }
}

/// Creates (or finds) the queue `name` on the SQS endpoint; returns its URL.
pub async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, String> {
    let out = client
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, VISIBILITY_TIMEOUT_SECS.to_string())
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    out.queue_url.ok_or_else(|| "CreateQueue returned no URL".to_string())
}

/// An SQS client for `endpoint` with local credentials unless real ones are given.
pub fn sqs_client(
    endpoint: Option<&str>,
    region: Option<&str>,
    credentials: Option<(String, String)>,
) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let (key, secret) = credentials.unwrap_or_else(|| ("local".into(), "local".into()));
    let mut builder = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.unwrap_or("eu-west-3").to_string()))
        .credentials_provider(Credentials::new(key, secret, None, None, "local-stack"))
        .http_client(shared::https::sdk_http_client());
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::from_conf(builder.build())
}

fn sqs_event(messages: Vec<(String, String)>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|(id, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(id);
            message.body = Some(body);
            message
        })
        .collect();
    event
}

/// One consumer, like one concurrent invocation of the event source mapping.
async fn poll(services: Services, client: aws_sdk_sqs::Client, url: String) {
    loop {
        let received = client.receive_message().queue_url(&url).max_number_of_messages(10).send().await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "SQS receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(EMPTY_POLL_PAUSE).await;
            continue;
        }
        let receipts: Vec<(String, String)> = messages
            .iter()
            .map(|m| (m.message_id.clone().unwrap_or_default(), m.receipt_handle.clone().unwrap_or_default()))
            .collect();
        let event = sqs_event(
            messages.into_iter().map(|m| (m.message_id.unwrap_or_default(), m.body.unwrap_or_default())).collect(),
        );
        let deadline = Instant::now() + services.worker().job_budget();
        let failed = sync_worker::handle(services.worker(), event, deadline).await.batch_item_failures;
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
            .into_iter()
            .enumerate()
            .filter(|(_, (id, _))| !failed.iter().any(|f| &f.item_identifier == id))
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        if let Err(e) = client.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "SQS delete failed; the messages will come back");
        }
    }
}
