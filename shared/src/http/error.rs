//! One mapping from failures to HTTP answers: `{"error": {"code", "message"}}`.

use crate::app::{AppError, ErrorCode};
use crate::auth::AuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::App(AppError::bad_request(code, message))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // A genuine token naming an id the table can't hold: a client error, not a login one.
            AuthError::InvalidOrganization(_) => Self::bad_request(ErrorCode::InvalidOrganizationId, e.to_string()),
            other => Self::App(AppError::Unauthorized(other.to_string())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Self::App(error) = &self;
        let (status, code, message, retry_after) = answer_of(error);
        if status.is_server_error() && status != StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(%status, code = code.as_str(), %message, "request failed on a dependency");
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
pub fn answer_of(e: &AppError) -> (StatusCode, ErrorCode, String, Option<u64>) {
    match e {
        AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m.clone(), None),
        AppError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone(), None),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string(), None),
        AppError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, m.clone(), None),
        AppError::Conflict { code, message } => (StatusCode::CONFLICT, *code, message.clone(), None),
        AppError::Forbidden { code, message } => (StatusCode::FORBIDDEN, *code, message.clone(), None),
        AppError::CalendlyRejected(_) => (StatusCode::BAD_REQUEST, ErrorCode::CalendlyRejected, e.to_string(), None),
        AppError::CalendlyUnavailable(_) => {
            (StatusCode::BAD_GATEWAY, ErrorCode::CalendlyUnavailable, e.to_string(), None)
        }
        AppError::CalendlyRateLimited { retry_after_secs } => {
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::CalendlyRateLimited, e.to_string(), Some(*retry_after_secs))
        }
        AppError::TooManyRequests { code, message, retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, *code, message.clone(), Some(*retry_after_secs))
        }
        AppError::StoreBusy => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::StoreBusy, e.to_string(), Some(1)),
        AppError::QueueUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::QueueUnavailable,
            "the sync queue is unavailable; retry shortly".into(),
            Some(5),
        ),
        AppError::Internal(cause) => {
            // Logged once here, inside the request span; the caller gets no internals.
            tracing::error!(error = %crate::errors::chain(cause.as_ref()), "internal error");
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error".to_string(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ErrorCode;
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

    /// The product's sources (no tests), without the list of codes itself.
    fn codes_named_in_sources() -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut text = String::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let source = std::fs::read_to_string(&path).unwrap();
                    // Tests name codes too: only what the product itself answers counts.
                    let product = source.split("#[cfg(test)]").next().unwrap_or_default();
                    // The list itself is no use of a code.
                    let list =
                        product.find("error_codes! {").map(|at| (at, at + product[at..].find("\n}\n").unwrap_or(0)));
                    match list {
                        Some((start, end)) => text.push_str(&[&product[..start], &product[end..]].concat()),
                        None => text.push_str(product),
                    }
                }
            }
        }
        text
    }

    #[test]
    fn every_documented_error_code_is_answered_somewhere_and_each_is_one_snake_case_word() {
        let sources = codes_named_in_sources();
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(sources.contains(&format!("ErrorCode::{code:?}")), "{code} is documented but never answered");
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            assert!(code.meaning().contains(": "), "{code}'s meaning starts with its status");
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
