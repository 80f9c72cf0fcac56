//! `POST /calendly/webhook[/{integration id}]`: the raw body and its signature go to the intake
//! use case (`app::webhook`); the answer says what became of the delivery.

use super::ApiError;
use super::contract::ErrorBody;
use crate::app::webhook::{DeliveryOutcome, DeliveryRoute};
use crate::app::{AppError, WebhookIntake};
use crate::telemetry::metrics::{self, Metric};
use crate::views::WebhookOutcome;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

/// Calendly's signature over the raw body (`t=<unix seconds>,v1=<hex HMAC-SHA256>`).
fn signature_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("calendly-webhook-signature").and_then(|v| v.to_str().ok())
}

/// A Calendly delivery for one integration (the URL each subscription is created with).
#[utoipa::path(post, path = "/calendly/webhook/{integration_id}", tag = "webhook",
    summary = "Calendly webhook delivery for one integration (signed)",
    params(("integration_id" = String, Path, description = "The integration the subscription was made for"), ("Calendly-Webhook-Signature" = String, Header, description = "Calendly's signature over the raw body: `t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    request_body(content = serde_json::Value,
        description = "Calendly's envelope `{event, created_at, created_by, payload}`; any other signed body is answered 200 `ignored`"),
    responses(
        (status = 200, description = "Processed, ignored or deferred to the next sync", body = WebhookOutcome),
        (status = 401, body = ErrorBody, description = "`unauthorized`: missing, stale or forged signature"),
        (status = 410, body = WebhookOutcome, description = "`gone`: no active integration has this subscription (Calendly deletes it)"),
        (status = 413, body = ErrorBody, description = "`payload_too_large` (over 256 KB)"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable` (Calendly retries)"),
        (status = 503, body = ErrorBody, description = "`store_busy`: a transient failure of ours (Calendly retries)"),
    ))]
pub(super) async fn receive_for_integration(
    State(intake): State<WebhookIntake>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    let route = DeliveryRoute::Integration(&integration_id);
    let outcome = counted(intake.receive_delivery(route, signature_header(&headers), &body).await)?;
    Ok(answer(&outcome))
}

/// Counts a delivery by its answer (the `WebhookDeliveries` metric), passing it on.
fn counted(outcome: Result<DeliveryOutcome, AppError>) -> Result<DeliveryOutcome, AppError> {
    let answer = match &outcome {
        Ok(DeliveryOutcome::Processed { .. }) => "processed",
        Ok(DeliveryOutcome::Ignored { .. }) => "ignored",
        Ok(DeliveryOutcome::Deferred { .. }) => "deferred",
        Ok(DeliveryOutcome::Gone { .. }) => "gone",
        Err(AppError::Unauthorized(_) | AppError::PayloadTooLarge(_)) => "rejected",
        Err(_) => "failed",
    };
    metrics::count(Metric::WebhookDeliveries, Some(answer), 1);
    outcome
}

/// 410 for a subscription that is not ours (Calendly deletes it at once); 200 for the rest.
fn answer(outcome: &DeliveryOutcome) -> (StatusCode, Json<WebhookOutcome>) {
    let status = match outcome {
        DeliveryOutcome::Gone { .. } => StatusCode::GONE,
        _ => StatusCode::OK,
    };
    (status, Json(outcome.into()))
}

/// A Calendly delivery routed by its hosts (subscriptions made before per-integration URLs).
#[utoipa::path(post, path = "/calendly/webhook", tag = "webhook", summary = "Calendly webhook delivery, routed by its hosts (signed)",
    params(("Calendly-Webhook-Signature" = String, Header, description = "Calendly's signature over the raw body: `t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    request_body(content = serde_json::Value,
        description = "Calendly's envelope `{event, created_at, created_by, payload}`; any other signed body is answered 200 `ignored`"),
    responses(
        (status = 200, description = "Processed, ignored or deferred to the next sync", body = WebhookOutcome),
        (status = 401, body = ErrorBody, description = "`unauthorized`: missing, stale or forged signature"),
        (status = 410, body = WebhookOutcome, description = "`gone`: no active integration has this subscription (Calendly deletes it)"),
        (status = 413, body = ErrorBody, description = "`payload_too_large` (over 256 KB)"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable` (Calendly retries)"),
        (status = 503, body = ErrorBody, description = "`store_busy`: a transient failure of ours (Calendly retries)"),
    ))]
pub(super) async fn receive_unrouted(
    State(intake): State<WebhookIntake>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    let outcome = counted(intake.receive_delivery(DeliveryRoute::Hosts, signature_header(&headers), &body).await)?;
    Ok(answer(&outcome))
}
