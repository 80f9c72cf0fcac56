//! One mapping from failures to HTTP answers: `{"error": {"code", "message"}}`.

use crate::app::AppError;
use crate::auth::AuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every `code` an error body can carry, and what it means (the document's enum; a test
/// checks that the sources use no other).
pub const ERROR_CODES: &[(&str, &str)] = &[
    ("unauthorized", "401: no JWT, or one that is invalid, expired or not yet valid; or a forged webhook signature"),
    ("invalid_body", "400: the body is missing, not JSON, or not the expected shape"),
    ("invalid_field", "400: a field has the wrong type or is out of bounds (the message names it)"),
    ("unknown_field", "400: a field the route does not take"),
    ("invalid_limit", "400: `limit` is not a number between 1 and 100"),
    ("invalid_cursor", "400: `cursor` is not one this API handed out"),
    ("invalid_email", "400: not an e-mail address"),
    ("invalid_source", "400: a `source` with `#` or control characters, or too long"),
    ("invalid_interval", "400: `sync_interval_minutes` outside 5..1440"),
    ("invalid_timezone", "400: `settings.timezone` is not an IANA timezone name"),
    ("invalid_settings", "400: settings nest too deep or hold values DynamoDB can't store"),
    ("read_only_setting", "400: `settings.calendly` mirrors the connection and can't be written"),
    ("settings_too_large", "400: the organization's settings would exceed 64 KB"),
    ("invalid_state", "400: the OAuth state is unknown, expired, used, or another user's"),
    ("invalid_organization_id", "400: the JWT names an organization id the store can't hold"),
    ("invalid_connection", "400: a WebSocket connect without a connection id"),
    ("calendly_rejected", "400: Calendly refused the authorization code (expired or already used)"),
    ("not_found", "404: no such route, or no such item in the caller's organization"),
    ("method_not_allowed", "405: the route does not take this method"),
    ("calendly_scope_forbidden", "403: organization scope is for owners and admins of the Calendly organization"),
    ("calendly_scope_missing", "403: Calendly did not grant a scope the feature needs (the message names it)"),
    ("calendly_forbidden", "403: Calendly refused the request (plan, role or permission)"),
    ("calendly_not_connected", "409: the organization has no active Calendly connection"),
    ("calendly_needs_reconnect", "409: Calendly refused the stored tokens; connect again"),
    ("calendly_account_in_use", "409: this Calendly account is connected to another organization"),
    (
        "calendly_organization_in_use",
        "409: this Calendly organization is connected in organization scope to another organization",
    ),
    ("email_taken", "409: another prospect of the organization has this e-mail address"),
    ("conflict", "409: a concurrent change won; retry"),
    ("scope_change_in_progress", "409: another scope change of this organization is in progress; retry shortly"),
    ("payload_too_large", "413: the body is larger than the route accepts"),
    ("unsupported_media_type", "415: the body is not `application/json`"),
    ("bad_request", "4xx: a request the server could not read (e.g. a malformed path)"),
    ("sync_cooldown", "429: a manual sync of this organization was asked for moments ago (`Retry-After`)"),
    ("too_many_connect_starts", "429: this user started too many connects lately (`Retry-After`)"),
    (
        "event_types_rate_limited",
        "429: the organization's event types were read from Calendly too often (`Retry-After`)",
    ),
    ("too_many_connections", "429: the organization has as many live WebSocket connections as allowed"),
    ("internal", "500: an unexpected failure (logged with its cause)"),
    ("calendly_unavailable", "502: Calendly did not answer or answered an error"),
    ("calendly_rate_limited", "503: Calendly's rate limit is reached (`Retry-After`)"),
    ("store_busy", "503: the database is throttling; retry (`Retry-After`)"),
    ("queue_unavailable", "503: the sync queue is unavailable; retry (`Retry-After`)"),
];

/// An HTTP-level failure: a use case's, or the request's own (a refused token, an unreadable
/// body), told in the same kinds so that `answer_of` alone decides the status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What failed, by kind.
    #[error(transparent)]
    App(#[from] AppError),
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::App(AppError::bad_request(code, message))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // A genuine token naming an id the table can't hold: a client error, not a login one.
            AuthError::InvalidOrganization(_) => Self::bad_request("invalid_organization_id", e.to_string()),
            other => Self::App(AppError::Unauthorized(other.to_string())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Self::App(error) = &self;
        let (status, code, message, retry_after) = answer_of(error);
        if status.is_server_error() && status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(%status, code, %message, "request failed on a dependency");
        }
        let mut response =
            (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response();
        if let Some(v) = retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// The one mapping of a use case's failure to an HTTP answer: status, `code`, message, and
/// `Retry-After` seconds. The WebSocket `$connect` handler answers with the same statuses.
pub fn answer_of(e: &AppError) -> (StatusCode, &'static str, String, Option<u64>) {
    match e {
        AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None),
        AppError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone(), None),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", e.to_string(), None),
        AppError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m.clone(), None),
        AppError::Conflict { code, message } => (StatusCode::CONFLICT, *code, message.clone(), None),
        AppError::Forbidden { code, message } => (StatusCode::FORBIDDEN, *code, message.clone(), None),
        AppError::CalendlyRejected(_) => (StatusCode::BAD_REQUEST, "calendly_rejected", e.to_string(), None),
        AppError::CalendlyUnavailable(_) => (StatusCode::BAD_GATEWAY, "calendly_unavailable", e.to_string(), None),
        AppError::CalendlyRateLimited { retry_after_secs } => {
            (StatusCode::SERVICE_UNAVAILABLE, "calendly_rate_limited", e.to_string(), Some(*retry_after_secs))
        }
        AppError::TooManyRequests { code, message, retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, *code, message.clone(), Some(*retry_after_secs))
        }
        AppError::StoreBusy => (StatusCode::SERVICE_UNAVAILABLE, "store_busy", e.to_string(), Some(1)),
        AppError::QueueUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the sync queue is unavailable; retry shortly".into(),
            Some(5),
        ),
        AppError::Internal(cause) => {
            // Logged once here, inside the request span; the caller gets no internals.
            tracing::error!(error = %crate::errors::chain(cause.as_ref()), "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_string(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendly::CalendlyError;
    use crate::store::StoreError;

    fn answer(e: impl Into<ApiError>) -> (u16, Option<String>) {
        let response = e.into().into_response();
        let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), retry_after)
    }

    #[test]
    fn a_dynamodb_throttle_that_outlasts_the_retries_is_a_503_with_retry_after() {
        assert_eq!(answer(AppError::from(StoreError::Throttled)), (503, Some("1".into())));
        assert_eq!(answer(AppError::from(StoreError::Unavailable("down".into()))).0, 503);
    }

    #[test]
    fn calendly_failures_map_to_gateway_statuses_never_to_401() {
        assert_eq!(answer(AppError::from(CalendlyError::Unavailable("timeout".into()))).0, 502);
        assert_eq!(
            answer(AppError::from(CalendlyError::RateLimited { retry_after_secs: 30 })),
            (503, Some("30".into()))
        );
        assert_eq!(answer(AppError::from(CalendlyError::Unauthorized)).0, 409);
        let refused = CalendlyError::OAuth { error: "invalid_grant".into(), description: "bad code".into() };
        assert_eq!(answer(AppError::from(refused)).0, 400);
    }

    /// Every code literal handed to an error in the sources, found by reading them.
    fn codes_in_sources() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // A code literal after `bad_request(` / `too_many_requests(`, after `code: `, or
                // after `StatusCode::NAME,` / `=>`.
                for marker in ["bad_request(", "too_many_requests(", "code: ", "StatusCode::"] {
                    for (at, _) in text.match_indices(marker) {
                        let mut rest = text[at + marker.len()..].trim_start();
                        if marker == "StatusCode::" {
                            let name_end = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(0);
                            let after = rest[name_end..].trim_start();
                            rest = match after.strip_prefix(',').or_else(|| after.strip_prefix("=>")) {
                                Some(r) => r.trim_start(),
                                None => continue,
                            };
                        }
                        let literal = rest.strip_prefix('"').and_then(|r| r.split_once('"')).map(|(l, _)| l);
                        if let Some(literal) = literal
                            && !literal.is_empty()
                            && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        {
                            found.push((literal.to_string(), path.display().to_string()));
                        }
                    }
                }
                for (at, _) in text.match_indices("let code = match") {
                    let block = &text[at..at + text[at..].find("};").unwrap_or(0)];
                    for part in block.split("=> \"").skip(1) {
                        if let Some((literal, _)) = part.split_once('"') {
                            found.push((literal.to_string(), path.display().to_string()));
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_error_code_in_the_sources_is_documented() {
        let found = codes_in_sources();
        assert!(found.len() > 30, "the scan finds the codes: {found:?}");
        for (code, file) in &found {
            assert!(ERROR_CODES.iter().any(|(c, _)| c == code), "{code} (in {file}) is missing from ERROR_CODES");
        }
        for (code, _) in ERROR_CODES {
            assert!(found.iter().any(|(c, _)| c == code), "{code} is documented but never used");
        }
    }

    #[tokio::test]
    async fn internal_errors_hide_their_details() {
        let response = ApiError::from(AppError::Internal("secret detail".into())).into_response();
        assert_eq!(response.status().as_u16(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"internal\"") && !text.contains("secret detail"), "{text}");
    }
}
