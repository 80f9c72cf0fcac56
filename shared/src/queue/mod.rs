//! The job queue port: sync jobs go through a queue (SQS on AWS, an embedded one locally), so
//! long work never rides on an HTTP request or on one function invocation.

pub mod embedded;
pub mod sqs;

pub use embedded::{EmbeddedQueue, EmbeddedTicks};
pub use sqs::SqsQueue;

use crate::domain::SyncJobMessage;
use crate::domain::schedule::TickRest;
use async_trait::async_trait;
use std::time::Duration;

/// SQS delays a message by at most 15 minutes; longer waits are cut to this (the job's
/// checkpoint makes an early slice harmless: it finds the window spent and pauses again).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The queue refused or could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue refused or could not be reached; the cause is kept.
    #[error("the job queue did not take the message: {}", crate::errors::chain(.0.as_ref()))]
    Send(#[source] crate::errors::BoxError),
    /// The embedded queue was shut down.
    #[error("the job queue is gone")]
    Closed,
}

/// Where sync job messages wait for a worker.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Sends `messages` (any number: adapters batch them), each delivered no sooner than `delay`.
    async fn send(&self, messages: &[SyncJobMessage], delay: Duration) -> Result<(), QueueError>;
}

/// Where a scheduled tick that nears its deadline leaves what it has not handed out, for
/// another invocation of the scheduler (SQS on AWS; the local stack runs it in-process).
#[async_trait]
pub trait TickQueue: Send + Sync {
    /// Sends each rest as its own message, delivered at once.
    async fn hand_on(&self, rests: &[TickRest]) -> Result<(), QueueError>;
}

/// A message as a queue delivers it to a worker: its receipt id and its body.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The message's id (what a partial batch failure names).
    pub id: String,
    /// The message's body (a `SyncJobMessage` in JSON).
    pub body: String,
}

/// The queue of a function that queues no jobs (no `SYNC_QUEUE_URL`): refuses every message.
#[derive(Debug, Default)]
pub struct NoQueue;

#[async_trait]
impl JobQueue for NoQueue {
    async fn send(&self, _messages: &[SyncJobMessage], _delay: Duration) -> Result<(), QueueError> {
        Err(QueueError::Send("this function has no SYNC_QUEUE_URL".into()))
    }
}

#[async_trait]
impl TickQueue for NoQueue {
    async fn hand_on(&self, _rests: &[TickRest]) -> Result<(), QueueError> {
        Err(QueueError::Send("this function has no TICK_QUEUE_URL".into()))
    }
}
