//! `POST /calendly/webhook[/{integration id}]`: signature checked over the raw body, then the
//! invitee is recorded from the payload alone (no Calendly call on the hot path).

use super::ApiError;
use crate::calendly::{Invitee, last_segment};
use crate::domain::{Integration, IntegrationId};
use crate::service::{AppError, Services};
use crate::tokens::seal_context;
use crate::webhook_signature::{SignatureError, verify_signature};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

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

pub(super) async fn receive_for_integration(
    State(services): State<Services>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let integration =
        services.store.get_integration_by_id(&IntegrationId::new(integration_id)).await.map_err(AppError::from)?;
    let own_key = integration.as_ref().and_then(|i| {
        i.webhook_signing_key.as_ref().and_then(|k| services.sealer.open(k, &seal_context(i, "webhook")).ok())
    });
    let keys: Vec<&str> =
        [Some(services.webhook_signing_key.expose()), own_key.as_deref()].into_iter().flatten().collect();
    verify_signature(signature_header(&headers), &body, &keys, services.clock.now()).map_err(unauthorized)?;
    let envelope = parse_envelope(&body)?;
    process(&services, integration, envelope).await
}

pub(super) async fn receive_unrouted(
    State(services): State<Services>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    verify_signature(signature_header(&headers), &body, &[services.webhook_signing_key.expose()], services.clock.now())
        .map_err(unauthorized)?;
    let envelope = parse_envelope(&body)?;
    let host = envelope.created_by.clone().or_else(|| {
        envelope.payload.pointer("/scheduled_event/event_memberships/0/user").and_then(Value::as_str).map(String::from)
    });
    let integration = match host {
        Some(uri) => services.store.find_integration_by_calendly_user(&uri).await.map_err(AppError::from)?,
        None => None,
    };
    process(&services, integration, envelope).await
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_payload", format!("not a Calendly webhook envelope: {e}")))
}

async fn process(
    services: &Services,
    integration: Option<Integration>,
    envelope: Envelope,
) -> Result<Json<Value>, ApiError> {
    let Some(integration) = integration.filter(|i| i.is_active) else {
        return Ok(Json(json!({ "status": "ignored", "reason": "no active integration for this delivery" })));
    };
    match envelope.event.as_str() {
        "invitee.created" | "invitee.canceled" | "invitee_no_show.created" | "invitee_no_show.deleted" => {}
        other => {
            return Ok(Json(json!({ "status": "ignored", "reason": format!("event {other} is not used") })));
        }
    }
    let invitee = delivered_invitee(&envelope)?;
    let event = invitee
        .scheduled_event
        .clone()
        .ok_or_else(|| ApiError::bad_request("invalid_payload", "the invitee payload has no scheduled_event"))?;
    let applied =
        services.engine.apply_delivered_invitee(&integration, &invitee, &event).await.map_err(AppError::from)?;
    tracing::info!(organization_id = %integration.organization_id, event = %envelope.event, invitee = last_segment(&invitee.uri), ?applied.kind, "Calendly delivery processed");
    Ok(Json(json!({ "status": "processed", "changed": applied.kind.is_some(), "notes_added": applied.notes_added })))
}

/// The invitee of a delivery. No-show events carry the no-show with its invitee embedded
/// (shape UNVERIFIED upstream): accept a full invitee, or `{invitee: {...}}` inside it.
fn delivered_invitee(envelope: &Envelope) -> Result<Invitee, ApiError> {
    let payload = &envelope.payload;
    let candidate = if payload.get("email").is_some() {
        payload.clone()
    } else {
        payload.get("invitee").cloned().unwrap_or(Value::Null)
    };
    let mut invitee: Invitee = serde_json::from_value(candidate)
        .map_err(|e| ApiError::bad_request("invalid_payload", format!("the payload is not a Calendly invitee: {e}")))?;
    // The no-show events say what the flag is now, whatever the embedded copy lags behind.
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
    Ok(invitee)
}

fn envelope_time(payload: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    payload.get("created_at").and_then(Value::as_str).and_then(|s| s.parse().ok())
}
