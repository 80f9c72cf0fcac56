//! `POST /calendly/webhook[/{integration id}]`: signature checked over the raw body, then the
//! invitee is recorded from the payload alone (no Calendly call on the hot path).

use super::ApiError;
use super::contract::ErrorBody;
use crate::calendly::{Invitee, last_segment};
use crate::domain::{Integration, IntegrationId};
use crate::service::{AppError, Services};
use crate::views::WebhookOutcome;
use crate::webhook_signature::{SignatureError, verify_signature};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

/// Calendly's signature over the raw body: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header `signature_header` reads
struct WebhookSignature {
    #[param(rename = "Calendly-Webhook-Signature")]
    signature: String,
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    created_by: Option<String>,
    payload: Value,
}

fn signature_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("calendly-webhook-signature").and_then(|v| v.to_str().ok())
}

fn unauthorized(e: SignatureError) -> ApiError {
    tracing::warn!(error = %e, "refused a Calendly webhook delivery");
    ApiError::Unauthorized(e.to_string())
}

/// Deliveries larger than this are refused before any HMAC is computed (a real one is a few KB).
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;

/// Size, then signature (the app's key only): nothing is read from the store for a delivery
/// that is not Calendly's.
/// Once signed, a body we can't use is still answered 2xx (see `ignored`).
fn authenticate(services: &Services, headers: &HeaderMap, body: &[u8]) -> Result<Result<Envelope, String>, ApiError> {
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(ApiError::TooLarge(format!("a webhook delivery is at most {} KB", MAX_WEBHOOK_BODY / 1024)));
    }
    verify_signature(signature_header(headers), body, &[services.webhook_signing_key.expose()], services.clock.now())
        .map_err(unauthorized)?;
    Ok(parse_envelope(body))
}

/// A signed delivery we don't act on. Always 2xx: Calendly retries 4xx answers for a day and
/// then disables the whole subscription, which would stop every later delivery.
fn ignored(reason: impl Into<String>) -> Json<WebhookOutcome> {
    let reason = reason.into();
    tracing::warn!(%reason, "signed Calendly delivery ignored");
    Json(WebhookOutcome::Ignored { reason })
}

/// A Calendly delivery for one integration (the URL each subscription is created with).
#[utoipa::path(post, path = "/calendly/webhook/{integration_id}", tag = "webhook",
    summary = "Calendly webhook delivery for one integration (signed)",
    params(("integration_id" = String, Path, description = "The integration the subscription was made for"), WebhookSignature),
    request_body(content = serde_json::Value,
        description = "Calendly's envelope `{event, created_at, created_by, payload}`; any other signed body is answered 200 `ignored`"),
    responses(
        (status = 200, description = "Success", body = WebhookOutcome),
        (status = 401, body = ErrorBody, description = "`unauthorized`: missing, stale or forged signature"),
        (status = 413, body = ErrorBody, description = "`payload_too_large` (over 256 KB)"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable` (Calendly retries)"),
    ))]
pub(super) async fn receive_for_integration(
    State(services): State<Services>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookOutcome>, ApiError> {
    let envelope = match authenticate(&services, &headers, &body)? {
        Ok(envelope) => envelope,
        Err(reason) => return Ok(ignored(reason)),
    };
    let integration = match IntegrationId::parse(&integration_id) {
        Ok(id) => services.store.get_integration_by_id(&id).await.map_err(AppError::from)?,
        Err(_) => None,
    };
    process(&services, integration, envelope).await
}

/// A Calendly delivery routed by its hosts (subscriptions made before per-integration URLs).
#[utoipa::path(post, path = "/calendly/webhook", tag = "webhook", summary = "Calendly webhook delivery, routed by its hosts (signed)",
    params(WebhookSignature),
    request_body(content = serde_json::Value,
        description = "Calendly's envelope `{event, created_at, created_by, payload}`; any other signed body is answered 200 `ignored`"),
    responses(
        (status = 200, description = "Success", body = WebhookOutcome),
        (status = 401, body = ErrorBody, description = "`unauthorized`: missing, stale or forged signature"),
        (status = 413, body = ErrorBody, description = "`payload_too_large` (over 256 KB)"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable` (Calendly retries)"),
    ))]
pub(super) async fn receive_unrouted(
    State(services): State<Services>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookOutcome>, ApiError> {
    let envelope = match authenticate(&services, &headers, &body)? {
        Ok(envelope) => envelope,
        Err(reason) => return Ok(ignored(reason)),
    };
    let integration = match delivery_hosts(&envelope).first() {
        Some(uri) => services.store.find_integration_by_calendly_user(uri).await.map_err(AppError::from)?,
        None => None,
    };
    process(&services, integration, envelope).await
}

/// The Calendly users a delivery is about: who created the subscription, then the event's hosts.
fn delivery_hosts(envelope: &Envelope) -> Vec<String> {
    let event = envelope
        .payload
        .get("scheduled_event")
        .or_else(|| envelope.payload.pointer("/invitee/scheduled_event"))
        .cloned()
        .unwrap_or(Value::Null);
    let members = event.get("event_memberships").and_then(Value::as_array).cloned().unwrap_or_default();
    envelope
        .created_by
        .iter()
        .cloned()
        .chain(members.iter().filter_map(|m| m.get("user").and_then(Value::as_str).map(String::from)))
        .collect()
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a Calendly webhook envelope: {e}"))
}

async fn process(
    services: &Services,
    integration: Option<Integration>,
    envelope: Envelope,
) -> Result<Json<WebhookOutcome>, ApiError> {
    let Some(integration) = integration.filter(|i| i.is_active) else {
        return Ok(ignored("no active integration for this delivery"));
    };
    // Signed by Calendly is not enough: the delivery must be about this integration's user, or
    // a correctly signed delivery for one account could be recorded in another's CRM.
    if !delivery_hosts(&envelope).contains(&integration.calendly_user_uri) {
        tracing::warn!(organization_id = %integration.organization_id, "signed delivery for another Calendly user ignored");
        return Ok(ignored("the delivery is not about this integration's Calendly user"));
    }
    match envelope.event.as_str() {
        "invitee.created" | "invitee.canceled" | "invitee_no_show.created" | "invitee_no_show.deleted" => {}
        other => {
            return Ok(ignored(format!("event {other} is not used")));
        }
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
            services.engine.fetch_delivered(&integration, &uri, Some(*invitee)).await.map_err(AppError::from)?
        }
        Delivered::Uri(uri) => {
            services.engine.fetch_delivered(&integration, &uri, None).await.map_err(AppError::from)?
        }
        Delivered::Unusable(reason) => return Ok(ignored(reason)),
    };
    let invitee = with_no_show_of(&envelope, invitee);
    let applied =
        services.engine.apply_delivered_invitee(&integration, &invitee, &event).await.map_err(AppError::from)?;
    tracing::info!(organization_id = %integration.organization_id, event = %envelope.event, invitee = last_segment(&invitee.uri), ?applied.kind, "Calendly delivery processed");
    Ok(Json(WebhookOutcome::Processed { changed: applied.kind.is_some(), notes_added: applied.notes_added }))
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
