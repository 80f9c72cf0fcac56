//! The real-time port: one message to every browser connection of an organization.

use crate::domain::{Notification, OrganizationId, Prospect, ProspectId, SyncJob};
use crate::telemetry::metrics::{self, Metric};
use async_trait::async_trait;

/// What browsers are told, in the domain's terms; its wire form (`{"event": …, "data": …}`,
/// the document's `PushEnvelope`) is the encoder's business (`views::push_payload`).
#[derive(Clone, Debug)]
pub enum PushMessage {
    /// `prospect:created`: the prospect as created.
    ProspectCreated(Prospect),
    /// `prospect:updated`: the prospect as changed.
    ProspectUpdated(Prospect),
    /// `prospect:deleted`: the deleted prospect's id.
    ProspectDeleted(ProspectId),
    /// `notification`: a notification recorded.
    Notification(Notification),
    /// `calendly:sync`: a sync job's state and counters.
    Sync(SyncJob),
}

impl PushMessage {
    /// `prospect:created` with the prospect's fields.
    pub fn prospect_created(p: &Prospect) -> Self {
        Self::ProspectCreated(p.clone())
    }
    /// `prospect:updated` with the prospect's fields.
    pub fn prospect_updated(p: &Prospect) -> Self {
        Self::ProspectUpdated(p.clone())
    }
    /// `prospect:deleted` with the prospect's id.
    pub fn prospect_deleted(id: &ProspectId) -> Self {
        Self::ProspectDeleted(id.clone())
    }
    /// `notification` with the notification's fields.
    pub fn notification(n: &Notification) -> Self {
        Self::Notification(n.clone())
    }
    /// `calendly:sync` with the job's state and counters.
    pub fn sync(job: &SyncJob) -> Self {
        Self::Sync(job.clone())
    }

    /// The event name browsers listen for.
    pub fn event(&self) -> &'static str {
        match self {
            Self::ProspectCreated(_) => "prospect:created",
            Self::ProspectUpdated(_) => "prospect:updated",
            Self::ProspectDeleted(_) => "prospect:deleted",
            Self::Notification(_) => "notification",
            Self::Sync(_) => "calendly:sync",
        }
    }
}

/// A message's bytes on the wire (the wiring hands `views::push_payload` in).
pub type Encoder = fn(&PushMessage) -> Vec<u8>;

/// Sends messages to an organization's live connections. Never fails the write that
/// triggered it: data is durable before anything is pushed, and clients catch up by listing.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Sends `message` to every connection of `org`, and to no other organization's.
    async fn push(&self, org: &OrganizationId, message: PushMessage);

    /// The organization's connections, read by the caller along with its own items: the
    /// current piece of work pushes to these rather than reading them again (a pusher that
    /// reads no connections ignores them).
    fn reuse_connections(&self, _org: &OrganizationId, _connections: Vec<crate::store::Connection>) {}
}

/// The pusher of a deployment with no WebSocket API configured: messages are only traced.
#[derive(Debug, Default)]
pub struct NoPushEndpoint;

#[async_trait]
impl Pusher for NoPushEndpoint {
    async fn push(&self, org: &OrganizationId, message: PushMessage) {
        tracing::debug!(organization_id = %org, event = message.event(), "no WebSocket endpoint configured; push skipped");
    }
}

pub mod apigateway;

use crate::clock::Clock;
use crate::store::{Connection, ConnectionStore};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

/// How many `PostToConnection` calls are in flight at once: fan-out costs about one round
/// trip for an organization's usual handful of browsers, a few for thousands.
const FAN_OUT: usize = 256;

/// Why one post to one connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The browser is gone (API Gateway's 410 `GoneException`).
    #[error("connection is gone")]
    Gone,
    /// Any other failure (the connection is kept: it may work next time).
    #[error("post to connection failed: {}", crate::errors::chain(.0.as_ref()))]
    Failed(#[source] crate::errors::BoxError),
}

/// API Gateway's management API, as the pusher uses it.
#[async_trait]
pub trait ConnectionGateway: Send + Sync {
    /// Sends `payload` to one connection.
    async fn post_to_connection(&self, connection_id: &str, payload: &[u8]) -> Result<(), PostError>;
    /// Closes one connection (its token expired).
    async fn delete_connection(&self, connection_id: &str) -> Result<(), PostError>;
}

/// How long one piece of work (a request, a delivery, a job slice: its correlation id) reuses
/// an organization's connection list for its next pushes: a webhook delivery's two pushes
/// read it once, a job slice once per progress report; a browser that connects meanwhile
/// hears from the next one (and lists what it missed, as after any reconnect).
const CONNECTIONS_REUSED_FOR: std::time::Duration = std::time::Duration::from_secs(5);
/// At most this many lists are kept (a worker runs ten jobs at once; a container one request).
const REUSED_LISTS: usize = 64;

/// Connection lists read for a piece of work, by its correlation id and organization.
type ReusedLists = std::sync::Mutex<HashMap<(String, OrganizationId), (std::time::Instant, Vec<Connection>)>>;

/// Pushes to every live connection of an organization through a `ConnectionGateway`,
/// concurrently; a gone connection's records are deleted, other failures are logged.
pub struct ConnectionPusher {
    connections: Arc<dyn ConnectionStore>,
    gateway: Arc<dyn ConnectionGateway>,
    clock: Arc<dyn Clock>,
    encode: Encoder,
    reused: ReusedLists,
}

impl ConnectionPusher {
    /// A pusher over the connection store and the management API, sending what `encode` makes
    /// of each message.
    pub fn new(
        connections: Arc<dyn ConnectionStore>,
        gateway: Arc<dyn ConnectionGateway>,
        clock: Arc<dyn Clock>,
        encode: Encoder,
    ) -> Self {
        Self { connections, gateway, clock, encode, reused: ReusedLists::default() }
    }

    /// The organization's connections: read once per piece of work and `CONNECTIONS_REUSED_FOR`.
    async fn connections_of(&self, org: &OrganizationId) -> Result<Vec<Connection>, crate::store::StoreError> {
        let Some(work) = crate::telemetry::correlation::current() else {
            return self.connections.connections(org).await;
        };
        let key = (work, org.clone());
        let lists = || self.reused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, list)) = lists().get(&key).filter(|(at, _)| at.elapsed() < CONNECTIONS_REUSED_FOR) {
            return Ok(list.clone());
        }
        let list = self.connections.connections(org).await?;
        self.keep(key, list.clone());
        Ok(list)
    }

    /// Keeps a piece of work's connection list for its next pushes.
    fn keep(&self, key: (String, OrganizationId), list: Vec<Connection>) {
        let mut kept = self.reused.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= REUSED_LISTS {
            kept.retain(|_, (at, _)| at.elapsed() < CONNECTIONS_REUSED_FOR);
            if kept.len() >= REUSED_LISTS {
                kept.clear();
            }
        }
        kept.insert(key, (std::time::Instant::now(), list));
    }

    /// Forgets connections that are gone or closed from every reused list.
    fn forget(&self, gone: &[String]) {
        if gone.is_empty() {
            return;
        }
        let mut kept = self.reused.lock().unwrap_or_else(|e| e.into_inner());
        for (_, list) in kept.values_mut() {
            list.retain(|c| !gone.contains(&c.connection_id));
        }
    }
}

#[async_trait]
impl Pusher for ConnectionPusher {
    fn reuse_connections(&self, org: &OrganizationId, connections: Vec<Connection>) {
        if let Some(work) = crate::telemetry::correlation::current() {
            self.keep((work, org.clone()), connections);
        }
    }

    async fn push(&self, org: &OrganizationId, message: PushMessage) {
        let all = match self.connections_of(org).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(organization_id = %org, error = %e, "could not list connections; push skipped");
                return;
            }
        };
        // A connection past its token's expiry (or API Gateway's 2 hours) gets nothing more:
        // it is closed and forgotten, so a browser whose session ended stops receiving.
        let now = self.clock.now();
        let (connections, expired): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.expires_at > now);
        let mut forgotten: Vec<String> = expired.iter().map(|c| c.connection_id.clone()).collect();
        for c in expired {
            match self.gateway.delete_connection(&c.connection_id).await {
                Ok(()) | Err(PostError::Gone) => {}
                Err(e) => {
                    tracing::warn!(connection_id = %c.connection_id, error = %e, "could not close an expired connection")
                }
            }
            if let Err(e) = self.connections.remove_connection(&c.connection_id).await {
                tracing::warn!(connection_id = %c.connection_id, error = %e, "could not remove an expired connection");
            }
        }
        if connections.is_empty() {
            self.forget(&forgotten);
            return;
        }
        let payload = (self.encode)(&message);
        let payload = &payload;
        let results: Vec<(String, Result<(), PostError>)> = futures::stream::iter(connections)
            .map(|c| async move {
                let result = self.gateway.post_to_connection(&c.connection_id, payload).await;
                (c.connection_id, result)
            })
            .buffer_unordered(FAN_OUT)
            .collect()
            .await;
        for (connection_id, result) in results {
            match result {
                Ok(()) => metrics::count(Metric::Pushes, Some("sent"), 1),
                Err(PostError::Gone) => {
                    metrics::count(Metric::Pushes, Some("gone"), 1);
                    forgotten.push(connection_id.clone());
                    if let Err(e) = self.connections.remove_connection(&connection_id).await {
                        tracing::warn!(%connection_id, error = %e, "could not remove a gone connection");
                    }
                }
                Err(e) => {
                    metrics::count(Metric::Pushes, Some("failed"), 1);
                    tracing::warn!(organization_id = %org, %connection_id, error = %e, "push to a connection failed")
                }
            }
        }
        self.forget(&forgotten);
    }
}
