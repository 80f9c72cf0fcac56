//! The real-time port: one message to every browser connection of an organization.

use crate::domain::{Notification, OrganizationId, Prospect, ProspectId};
use async_trait::async_trait;
use serde_json::{Value, json};

/// A message pushed to browsers: `{"event": …, "data": …}`.
#[derive(Clone, Debug, PartialEq)]
pub enum PushMessage {
    ProspectCreated(Value),
    ProspectUpdated(Value),
    ProspectDeleted(ProspectId),
    Notification(Value),
}

impl PushMessage {
    /// `prospect:created` with the prospect's fields.
    pub fn prospect_created(p: &Prospect) -> Self {
        Self::ProspectCreated(p.to_json())
    }
    /// `prospect:updated` with the prospect's fields.
    pub fn prospect_updated(p: &Prospect) -> Self {
        Self::ProspectUpdated(p.to_json())
    }
    /// `notification` with the notification's fields.
    pub fn notification(n: &Notification) -> Self {
        Self::Notification(n.to_json())
    }

    /// The event name browsers listen for.
    pub fn event(&self) -> &'static str {
        match self {
            Self::ProspectCreated(_) => "prospect:created",
            Self::ProspectUpdated(_) => "prospect:updated",
            Self::ProspectDeleted(_) => "prospect:deleted",
            Self::Notification(_) => "notification",
        }
    }

    /// The wire form.
    pub fn to_json(&self) -> Value {
        let data = match self {
            Self::ProspectCreated(v) | Self::ProspectUpdated(v) | Self::Notification(v) => {
                v.clone()
            }
            Self::ProspectDeleted(id) => json!({ "id": id }),
        };
        json!({ "event": self.event(), "data": data })
    }
}

/// Sends messages to an organization's live connections. Never fails the write that
/// triggered it: data is durable before anything is pushed, and clients catch up by listing.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Sends `message` to every connection of `org`, and to no other organization's.
    async fn push(&self, org: &OrganizationId, message: PushMessage);
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
