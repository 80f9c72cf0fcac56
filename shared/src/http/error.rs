//! One mapping from failures to HTTP answers: `{"error": {"code", "message"}}`.

use crate::auth::AuthError;
use crate::service::AppError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP-level failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            // A genuine token naming an id the table can't hold: a client error, not a login one.
            AuthError::InvalidOrganization(_) => Self::bad_request("invalid_organization_id", e.to_string()),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, retry_after) = match &self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None),
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone(), None),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m.clone(), None),
            Self::App(e) => match e {
                AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None),
                AppError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone(), None),
                AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", e.to_string(), None),
                AppError::Conflict { code, message } => (StatusCode::CONFLICT, *code, message.clone(), None),
                AppError::CalendlyRejected(_) => (StatusCode::BAD_REQUEST, "calendly_rejected", e.to_string(), None),
                AppError::CalendlyUnavailable(_) => {
                    (StatusCode::BAD_GATEWAY, "calendly_unavailable", e.to_string(), None)
                }
                AppError::CalendlyRateLimited { retry_after_secs } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "calendly_rate_limited", e.to_string(), Some(*retry_after_secs))
                }
                AppError::StoreBusy => (StatusCode::SERVICE_UNAVAILABLE, "store_busy", e.to_string(), Some(1)),
                AppError::QueueUnavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "the sync queue is unavailable; retry shortly".into(),
                    Some(5),
                ),
                AppError::Internal(detail) => {
                    // Logged once here, inside the request span; the caller gets no internals.
                    tracing::error!(error = %detail, "internal error");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_string(), None)
                }
            },
        };
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

    #[tokio::test]
    async fn internal_errors_hide_their_details() {
        let response = ApiError::from(AppError::Internal("secret detail".into())).into_response();
        assert_eq!(response.status().as_u16(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"internal\"") && !text.contains("secret detail"), "{text}");
    }
}
