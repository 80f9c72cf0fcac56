//! What browsers receive over the WebSocket: the envelope and its events.

use super::*;

/// A prospect's id (the data of `prospect:deleted`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProspectIdView {
    /// The deleted prospect's id.
    pub id: String,
}

/// A message pushed to every WebSocket connection of an organization:
/// `{"event": "…", "data": {…}, "correlation_id": "…"}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PushEnvelope {
    /// What happened, and its data.
    #[serde(flatten)]
    pub message: PushedEvent,
    /// The correlation id of the work that made this push (the HTTP request's, e.g. a webhook
    /// delivery's, or the sync job's id): the `correlation_id` of that work's log lines and
    /// the `x-correlation-id` of its answer. Absent when no such work is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// What a push says happened: `event` names it, `data` carries it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "event", content = "data")]
pub enum PushedEvent {
    /// A prospect was created (by a booking or by a user).
    #[serde(rename = "prospect:created")]
    ProspectCreated(ProspectView),
    /// A prospect changed (a note appended, a field edited).
    #[serde(rename = "prospect:updated")]
    ProspectUpdated(ProspectView),
    /// A prospect was deleted.
    #[serde(rename = "prospect:deleted")]
    ProspectDeleted(ProspectIdView),
    /// A notification was created.
    #[serde(rename = "notification")]
    Notification(NotificationView),
    /// A sync job progressed (queued, slice started, every 5 s or 100 events, paused, ended).
    #[serde(rename = "calendly:sync")]
    Sync(SyncJobView),
}

impl From<&crate::push::PushMessage> for PushedEvent {
    fn from(message: &crate::push::PushMessage) -> Self {
        use crate::push::PushMessage;
        match message {
            PushMessage::ProspectCreated(p) => Self::ProspectCreated(p.into()),
            PushMessage::ProspectUpdated(p) => Self::ProspectUpdated(p.into()),
            PushMessage::ProspectDeleted(id) => Self::ProspectDeleted(ProspectIdView { id: id.to_string() }),
            PushMessage::Notification(n) => Self::Notification(n.into()),
            PushMessage::Sync(job) => Self::Sync(job.into()),
        }
    }
}

/// A pushed message's bytes on the wire: its `PushEnvelope` as JSON, with the correlation id
/// of the work in progress (the pushers' encoder).
pub fn push_payload(message: &crate::push::PushMessage) -> Vec<u8> {
    let envelope =
        PushEnvelope { message: PushedEvent::from(message), correlation_id: crate::telemetry::correlation::current() };
    serde_json::to_vec(&envelope).unwrap_or_default()
}
