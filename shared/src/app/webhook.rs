//! Webhook intake: a Calendly delivery is authenticated (size, then the app's signature, before
//! any store read), routed to its integration (by the URL's integration id, or by its hosts),
//! checked to be about that integration's Calendly user, then recorded from the payload (no
//! Calendly call on the hot path, except to complete a payload that names its invitee only).

use crate::app::{AppError, Services};
use crate::calendly::{Invitee, last_segment};
use crate::domain::{Integration, IntegrationId};
use crate::webhook_signature::verify_signature;
use serde::Deserialize;
use serde_json::{Value, json};

/// Deliveries larger than this are refused before any HMAC is computed (a real one is a few KB).
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;

/// The events the product acts on; others are acknowledged and ignored.
const HANDLED_EVENTS: [&str; 4] =
    ["invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted"];

/// How a delivery names its integration.
#[derive(Clone, Copy, Debug)]
pub enum DeliveryRoute<'a> {
    /// The integration id of the subscription's URL (`/calendly/webhook/{id}`).
    Integration(&'a str),
    /// No id (subscriptions made before per-integration URLs): found by the delivery's hosts.
    Hosts,
}

/// What became of a signed delivery. Always a success once signed: Calendly retries failed
/// deliveries for a day and then disables the whole subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Recorded.
    Processed {
        /// Whether the booking was new or different.
        changed: bool,
        /// Note lines appended to prospects.
        notes_added: usize,
    },
    /// Signed but not acted on.
    Ignored {
        /// Why (not ours, not about this user, an event we don't use).
        reason: String,
    },
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    created_by: Option<String>,
    payload: Value,
}

impl Services {
    /// Receives one delivery: `signature` is the `Calendly-Webhook-Signature` header, `body`
    /// the raw bytes it signs.
    pub async fn receive_delivery(
        &self,
        route: DeliveryRoute<'_>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<DeliveryOutcome, AppError> {
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(AppError::PayloadTooLarge(format!(
                "a webhook delivery is at most {} KB",
                MAX_WEBHOOK_BODY / 1024
            )));
        }
        verify_signature(signature, body, &[self.webhook_signing_key.expose()], self.clock.now()).map_err(|e| {
            tracing::warn!(error = %e, "refused a Calendly webhook delivery");
            AppError::Unauthorized(e.to_string())
        })?;
        let envelope = match parse_envelope(body) {
            Ok(envelope) => envelope,
            Err(reason) => return Ok(ignored(reason)),
        };
        let integration = match route {
            DeliveryRoute::Integration(id) => match IntegrationId::parse(id) {
                Ok(id) => self.store.get_integration_by_id(&id).await?,
                Err(_) => None,
            },
            DeliveryRoute::Hosts => match delivery_hosts(&envelope).first() {
                Some(uri) => self.store.find_integration_by_calendly_user(uri).await?,
                None => None,
            },
        };
        self.record_delivery(integration, envelope).await
    }

    async fn record_delivery(
        &self,
        integration: Option<Integration>,
        envelope: Envelope,
    ) -> Result<DeliveryOutcome, AppError> {
        let Some(integration) = integration.filter(|i| i.is_active) else {
            return Ok(ignored("no active integration for this delivery"));
        };
        // Signed by Calendly is not enough: the delivery must be about this integration's user, or
        // a correctly signed delivery for one account could be recorded in another's CRM.
        if !delivery_hosts(&envelope).contains(&integration.calendly_user_uri) {
            tracing::warn!(organization_id = %integration.organization_id, "signed delivery for another Calendly user ignored");
            return Ok(ignored("the delivery is not about this integration's Calendly user"));
        }
        // User scope: another member's booking (an organization subscription outliving the
        // organization scope) is not this integration's.
        let hosts = event_hosts(&envelope);
        if integration.coverage == crate::domain::CalendlyScope::User
            && !hosts.is_empty()
            && !hosts.contains(&integration.calendly_user_uri)
        {
            return Ok(ignored("the booking is another member's and the integration is in user scope"));
        }
        if !HANDLED_EVENTS.contains(&envelope.event.as_str()) {
            return Ok(ignored(format!("event {} is not used", envelope.event)));
        }
        // What the payload leaves out (a no-show naming only its invitee, a cancel without its
        // event) is read from Calendly; Calendly unreachable is a 502, which it retries.
        let (invitee, event) = match delivered_invitee(&envelope) {
            Delivered::Full(invitee) if invitee.scheduled_event.is_some() => {
                let event = invitee.scheduled_event.clone().expect("checked just above");
                (*invitee, event)
            }
            Delivered::Full(invitee) => {
                let uri = invitee.uri.clone();
                self.engine.fetch_delivered(&integration, &uri, Some(*invitee)).await?
            }
            Delivered::Uri(uri) => self.engine.fetch_delivered(&integration, &uri, None).await?,
            Delivered::Unusable(reason) => return Ok(ignored(reason)),
        };
        let invitee = with_no_show_of(&envelope, invitee);
        let applied = self.engine.apply_delivered_invitee(&integration, &invitee, &event).await?;
        tracing::info!(organization_id = %integration.organization_id, event = %envelope.event, invitee = last_segment(&invitee.uri), ?applied.kind, "Calendly delivery processed");
        Ok(DeliveryOutcome::Processed { changed: applied.kind.is_some(), notes_added: applied.notes_added })
    }
}

/// A signed delivery we don't act on.
fn ignored(reason: impl Into<String>) -> DeliveryOutcome {
    let reason = reason.into();
    tracing::warn!(%reason, "signed Calendly delivery ignored");
    DeliveryOutcome::Ignored { reason }
}

/// The Calendly users a delivery is about: who created the subscription, then the event's hosts.
fn delivery_hosts(envelope: &Envelope) -> Vec<String> {
    envelope.created_by.iter().cloned().chain(event_hosts(envelope)).collect()
}

/// The hosts the delivery's event names (none when the payload leaves its event out).
fn event_hosts(envelope: &Envelope) -> Vec<String> {
    let event = envelope
        .payload
        .get("scheduled_event")
        .or_else(|| envelope.payload.pointer("/invitee/scheduled_event"))
        .cloned()
        .unwrap_or(Value::Null);
    let members = event.get("event_memberships").and_then(Value::as_array).cloned().unwrap_or_default();
    members.iter().filter_map(|m| m.get("user").and_then(Value::as_str).map(String::from)).collect()
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a Calendly webhook envelope: {e}"))
}

/// What a delivery says of its invitee.
enum Delivered {
    /// The whole invitee (maybe without its `scheduled_event`).
    Full(Box<Invitee>),
    /// Only its URI (a no-show shaped `{uri, invitee: "<invitee uri>", created_at}`).
    Uri(String),
    Unusable(String),
}

/// The invitee of a delivery: `invitee.*` payloads are the invitee; no-show payloads carry it
/// embedded (`{invitee: {...}}`) or name it (`{invitee: "<uri>"}`).
fn delivered_invitee(envelope: &Envelope) -> Delivered {
    let payload = &envelope.payload;
    let candidate = match payload.get("invitee") {
        _ if payload.get("email").is_some() => payload.clone(),
        Some(Value::String(uri)) if uri.contains("/invitees/") => return Delivered::Uri(uri.clone()),
        Some(embedded) => embedded.clone(),
        None => Value::Null,
    };
    match serde_json::from_value::<Invitee>(candidate) {
        Ok(invitee) => Delivered::Full(Box::new(invitee)),
        Err(e) => Delivered::Unusable(format!("the payload is not a Calendly invitee: {e}")),
    }
}

/// The no-show events say what the flag is now, whatever the invitee copy lags behind.
fn with_no_show_of(envelope: &Envelope, mut invitee: Invitee) -> Invitee {
    let payload = &envelope.payload;
    match envelope.event.as_str() {
        "invitee_no_show.created" if invitee.no_show.as_ref().is_none_or(Value::is_null) => {
            invitee.no_show = Some(json!({ "created_at": payload.get("created_at") }));
            invitee.updated_at = invitee.updated_at.max(envelope_time(payload).unwrap_or(invitee.updated_at));
        }
        "invitee_no_show.deleted" => {
            invitee.no_show = None;
            invitee.updated_at = invitee.updated_at.max(envelope_time(payload).unwrap_or(invitee.updated_at));
        }
        _ => {}
    }
    invitee
}

fn envelope_time(payload: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    payload.get("created_at").and_then(Value::as_str).and_then(|s| s.parse().ok())
}
