//! What a use case's failure is, by kind; `http::error` maps each kind to one status.

use crate::calendly::CalendlyError;
use crate::store::StoreError;
use crate::sync::SyncError;
use crate::tokens::TokenError;

/// A use case's failure, in terms a caller can act on (mapped to HTTP statuses in one place).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials (401): why.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed or out of bounds (400).
    #[error("{message}")]
    BadRequest {
        /// The error code (one of `http::error::ERROR_CODES`).
        code: &'static str,
        /// What is wrong, for a developer.
        message: String,
    },
    /// What was not found (404): the resource's name.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The body is over its limit (413): which limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// The error code (one of `http::error::ERROR_CODES`).
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// Authenticated but not allowed (403).
    #[error("{message}")]
    Forbidden {
        /// The error code (one of `http::error::ERROR_CODES`).
        code: &'static str,
        /// Why not.
        message: String,
    },
    /// Calendly refused what the caller asked (400): Calendly's reason.
    #[error("Calendly refused: {0}")]
    CalendlyRejected(String),
    /// Calendly is down or timing out (502); the cause is kept (and its chain is the message).
    #[error("Calendly is unreachable: {}", crate::errors::chain(.0.as_ref()))]
    CalendlyUnavailable(#[source] crate::errors::BoxError),
    /// Calendly's rate limit for this user (503 with `Retry-After`: the caller may retry then).
    #[error("Calendly's rate limit is reached; retry in {retry_after_secs} s")]
    CalendlyRateLimited {
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// One of the organization's quotas is used up (429 with `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// The error code (one of `http::error::ERROR_CODES`).
        code: &'static str,
        /// Which quota, and its value.
        message: String,
        /// Seconds until it allows the request again.
        retry_after_secs: u64,
    },
    /// The store throttles or lost a race it can't resolve now (503 with `Retry-After`).
    #[error("the store is busy; retry shortly")]
    StoreBusy,
    /// The sync queue refused the message (503).
    #[error("the sync queue is unavailable: {0}")]
    QueueUnavailable(#[source] crate::queue::QueueError),
    /// A fault of ours (500); the cause is logged, not answered.
    #[error("internal error: {}", crate::errors::chain(.0.as_ref()))]
    Internal(#[source] crate::errors::BoxError),
}

impl AppError {
    /// The failure's kind, by name (what a Lambda function reports as its `errorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "Unauthorized",
            Self::BadRequest { .. } => "BadRequest",
            Self::NotFound(_) => "NotFound",
            Self::PayloadTooLarge(_) => "PayloadTooLarge",
            Self::Conflict { .. } => "Conflict",
            Self::Forbidden { .. } => "Forbidden",
            Self::CalendlyRejected(_) => "CalendlyRejected",
            Self::CalendlyUnavailable(_) => "CalendlyUnavailable",
            Self::CalendlyRateLimited { .. } => "CalendlyRateLimited",
            Self::TooManyRequests { .. } => "TooManyRequests",
            Self::StoreBusy => "StoreBusy",
            Self::QueueUnavailable(_) => "QueueUnavailable",
            Self::Internal(_) => "Internal",
        }
    }

    /// A quota used up until `retry_at` (429, `Retry-After` counted from `now`).
    pub(crate) fn too_many_requests(
        code: &'static str,
        message: String,
        retry_at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self::TooManyRequests {
            code,
            message,
            retry_after_secs: crate::domain::quota::retry_after_seconds(retry_at, now),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub(crate) fn not_connected() -> Self {
        Self::Conflict {
            code: "calendly_not_connected",
            message: "Calendly is not connected for this organization".into(),
        }
    }
    /// Calendly did not grant a scope the feature needs (403 `calendly_scope_missing`).
    pub(crate) fn scope_missing(scope: crate::calendly::Scope) -> Self {
        Self::Forbidden {
            code: "calendly_scope_missing",
            message: format!(
                "Calendly did not grant the `{}` scope, needed for {}: tick it in the Calendly app's settings, then connect again",
                scope.as_str(),
                scope.feature()
            ),
        }
    }
    /// One Calendly organization feeds at most one organization in organization scope.
    pub(crate) fn organization_in_use() -> Self {
        Self::Conflict {
            code: "calendly_organization_in_use",
            message: "this Calendly organization is connected in organization scope to another organization".into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict(message) => Self::Conflict { code: "conflict", message },
            StoreError::InvalidCursor => Self::bad_request("invalid_cursor", "the cursor is not valid"),
            StoreError::Throttled => Self::StoreBusy,
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %crate::errors::chain(cause.as_ref()), "the store is unavailable");
                Self::StoreBusy
            }
            // Retrying won't help: a 500, logged with the store's error code.
            e @ (StoreError::Rejected(_) | StoreError::Misconfigured(_) | StoreError::Corrupt(_)) => {
                Self::Internal(Box::new(e))
            }
        }
    }
}

impl From<CalendlyError> for AppError {
    fn from(e: CalendlyError) -> Self {
        match e {
            CalendlyError::RateLimited { retry_after_secs } | CalendlyError::Paced { retry_after_secs } => {
                Self::CalendlyRateLimited { retry_after_secs }
            }
            // Their own causes: the client's error, the JSON error.
            CalendlyError::Unavailable(cause) => Self::CalendlyUnavailable(cause),
            e @ CalendlyError::Decode(_) => Self::CalendlyUnavailable(Box::new(e)),
            CalendlyError::Unauthorized => Self::Conflict {
                code: "calendly_needs_reconnect",
                message: "Calendly no longer accepts this integration's token; reconnect Calendly".into(),
            },
            CalendlyError::Forbidden(message) => Self::Forbidden {
                code: "calendly_forbidden",
                message: format!("Calendly refused the request (missing permission or scope): {message}"),
            },
            other => Self::CalendlyRejected(other.to_string()),
        }
    }
}

impl From<TokenError> for AppError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::NotConnected => Self::not_connected(),
            TokenError::NeedsReconnect => Self::Conflict {
                code: "calendly_needs_reconnect",
                message: "Calendly refused the stored refresh token; reconnect Calendly".into(),
            },
            e @ TokenError::RefreshTimedOut => Self::CalendlyUnavailable(Box::new(e)),
            TokenError::Calendly(c) => c.into(),
            TokenError::Store(s) => s.into(),
            TokenError::Seal(s) => Self::Internal(Box::new(s)),
        }
    }
}

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Token(t) => t.into(),
            SyncError::Calendly(c) => c.into(),
            SyncError::Store(s) => s.into(),
            SyncError::Contended => Self::StoreBusy,
            SyncError::Pagination(m) | SyncError::EventPagination(m) => {
                Self::CalendlyRejected(format!("its pagination does not end ({m})"))
            }
        }
    }
}
