//! The embedded queue of the local stack: messages in memory, delays as timers, a pool of
//! workers running the same job handler the SQS worker runs.

use super::{Delivery, JobQueue, MAX_DELAY, QueueError};
use crate::domain::SyncJobMessage;
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// A failed delivery comes back after this long, as SQS brings it back after its visibility
/// timeout.
const REDELIVERY_AFTER: Duration = Duration::from_secs(2);

/// The sending half.
#[derive(Clone, Debug)]
pub struct EmbeddedQueue {
    sender: mpsc::UnboundedSender<Delivery>,
}

/// The receiving half, consumed by `run_workers`.
pub struct EmbeddedReceiver {
    receiver: mpsc::UnboundedReceiver<Delivery>,
    sender: mpsc::UnboundedSender<Delivery>,
}

impl EmbeddedQueue {
    /// A queue and its receiving half.
    pub fn new() -> (Self, EmbeddedReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender: sender.clone() }, EmbeddedReceiver { receiver, sender })
    }
}

fn deliver_later(sender: &mpsc::UnboundedSender<Delivery>, delivery: Delivery, delay: Duration) {
    if delay.is_zero() {
        let _ = sender.send(delivery);
        return;
    }
    let sender = sender.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = sender.send(delivery);
    });
}

#[async_trait]
impl JobQueue for EmbeddedQueue {
    async fn send(&self, messages: &[SyncJobMessage], delay: Duration) -> Result<(), QueueError> {
        if self.sender.is_closed() {
            return Err(QueueError::Closed);
        }
        for message in messages {
            let body = serde_json::to_string(message).map_err(|e| QueueError::Send(Box::new(e)))?;
            deliver_later(&self.sender, Delivery { id: crate::domain::ids::random_id(), body }, delay.min(MAX_DELAY));
        }
        Ok(())
    }
}

impl EmbeddedReceiver {
    /// Runs deliveries through `handle`, `concurrency` at a time, until the process ends. A
    /// delivery `handle` reports as failed comes back later, like an SQS message whose
    /// visibility timeout ran out.
    pub async fn run_workers<H, Fut>(mut self, concurrency: usize, handle: H)
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let handle = Arc::new(handle);
        while let Some(delivery) = self.receiver.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (handle, sender) = (handle.clone(), self.sender.clone());
            tokio::spawn(async move {
                if !handle(delivery.clone()).await {
                    deliver_later(&sender, delivery, REDELIVERY_AFTER);
                }
                drop(permit);
            });
        }
    }
}

/// The local stack's tick queue: rests wait in a channel the local stack's scheduler loop
/// reads and resumes, as `sync-scheduled` resumes SQS messages.
#[derive(Clone, Debug)]
pub struct EmbeddedTicks {
    sender: mpsc::UnboundedSender<crate::domain::schedule::TickRest>,
}

impl EmbeddedTicks {
    /// A tick queue and its receiving half.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<crate::domain::schedule::TickRest>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }
}

#[async_trait]
impl super::TickQueue for EmbeddedTicks {
    async fn hand_on(&self, rests: &[crate::domain::schedule::TickRest]) -> Result<(), QueueError> {
        for rest in rests {
            self.sender.send(rest.clone()).map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}
