//! What a use case's failure is, by kind; `http::error` maps each kind to one status.

use crate::calendly::CalendlyError;
use crate::engine::SyncError;
use crate::engine::tokens::TokenError;
use crate::store::StoreError;

/// Every `code` an error body can carry, with what it means: the one list the API document's
/// enum and descriptions are generated from (`http::contract`).
macro_rules! error_codes {
    ($($variant:ident = $code:literal: $meaning:literal,)*) => {
        /// The machine-readable reason of a failure, as error bodies carry it (`code`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the document's order.
            pub const ALL: &[ErrorCode] = &[$(Self::$variant),*];

            /// The code as the wire carries it.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// What the code means, with its HTTP status.
            pub fn meaning(self) -> &'static str {
                match self { $(Self::$variant => $meaning,)* }
            }
        }
    };
}

error_codes! {
    Unauthorized = "unauthorized": "401: no JWT, or one that is invalid, expired or not yet valid; or a forged webhook signature",
    InvalidBody = "invalid_body": "400: the body is missing, not JSON, or not the expected shape",
    InvalidField = "invalid_field": "400: a field has the wrong type or is out of bounds (the message names it)",
    InvalidFieldMap = "invalid_field_map": "400: a `field_map` entry has an unknown source or target, a target is mapped twice, or there are more than 50 entries (the message names it)",
    UnknownField = "unknown_field": "400: a field the route does not take",
    InvalidLimit = "invalid_limit": "400: `limit` is not a number between 1 and 100",
    InvalidCursor = "invalid_cursor": "400: `cursor` is not one this API handed out",
    InvalidEmail = "invalid_email": "400: not an e-mail address",
    InvalidSource = "invalid_source": "400: a `source` with `#` or control characters, or too long",
    InvalidInterval = "invalid_interval": "400: `sync_interval_minutes` outside 5..1440",
    InvalidTimezone = "invalid_timezone": "400: `settings.timezone` is not an IANA timezone name",
    InvalidSettings = "invalid_settings": "400: settings nest too deep or hold values DynamoDB can't store",
    ReadOnlySetting = "read_only_setting": "400: `settings.calendly` mirrors the connection and can't be written",
    SettingsTooLarge = "settings_too_large": "400: the organization's settings would exceed 64 KB",
    InvalidState = "invalid_state": "400: the OAuth state is unknown, expired, used, or another user's",
    InvalidOrganizationId = "invalid_organization_id": "400: the JWT names an organization id the store can't hold",
    InvalidConnection = "invalid_connection": "400: a WebSocket connect without a connection id",
    CalendlyRejected = "calendly_rejected": "400: Calendly refused the authorization code (expired or already used)",
    NotFound = "not_found": "404: no such route, or no such item in the caller's organization",
    MethodNotAllowed = "method_not_allowed": "405: the route does not take this method",
    CalendlyScopeForbidden = "calendly_scope_forbidden": "403: organization scope is for owners and admins of the Calendly organization",
    CalendlyScopeMissing = "calendly_scope_missing": "403: Calendly did not grant a scope the feature needs (the message names it)",
    CalendlyForbidden = "calendly_forbidden": "403: Calendly refused the request (plan, role or permission)",
    CalendlyNotConnected = "calendly_not_connected": "409: the organization has no active Calendly connection",
    CalendlyNeedsReconnect = "calendly_needs_reconnect": "409: Calendly refused the stored tokens; connect again",
    CalendlyAccountInUse = "calendly_account_in_use": "409: this Calendly account is connected to another organization",
    CalendlyOrganizationInUse = "calendly_organization_in_use": "409: this Calendly organization is connected in organization scope to another organization",
    EventNotStarted = "event_not_started": "409: a no-show can only be marked once the event has started",
    BookingCanceled = "booking_canceled": "409: a canceled booking can't be marked as a no-show",
    EmailTaken = "email_taken": "409: another prospect of the organization has this e-mail address",
    Conflict = "conflict": "409: a concurrent change won; retry",
    ScopeChangeInProgress = "scope_change_in_progress": "409: another scope change of this organization is in progress; retry shortly",
    PayloadTooLarge = "payload_too_large": "413: the body is larger than the route accepts",
    UnsupportedMediaType = "unsupported_media_type": "415: the body is not `application/json`",
    BadRequest = "bad_request": "4xx: a request the server could not read (e.g. a malformed path)",
    SyncCooldown = "sync_cooldown": "429: a manual sync of this organization was asked for moments ago (`Retry-After`)",
    TooManyConnectStarts = "too_many_connect_starts": "429: this user started too many connects lately (`Retry-After`)",
    TooManyScopeChanges = "too_many_scope_changes": "429: the organization changed its scope too often lately (`Retry-After`)",
    EventTypesRateLimited = "event_types_rate_limited": "429: the organization's event types were read from Calendly too often (`Retry-After`)",
    TooManyConnections = "too_many_connections": "429: the organization has as many live WebSocket connections as allowed",
    Internal = "internal": "500: an unexpected failure (logged with its cause)",
    CalendlyUnavailable = "calendly_unavailable": "502: Calendly did not answer or answered an error",
    CalendlyRateLimited = "calendly_rate_limited": "503: Calendly's rate limit is reached (`Retry-After`)",
    StoreBusy = "store_busy": "503: the database is throttling; retry (`Retry-After`)",
    QueueUnavailable = "queue_unavailable": "503: the sync queue is unavailable; retry (`Retry-After`)",
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A use case's failure, in terms a caller can act on (mapped to HTTP statuses in one place).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid credentials (401): why.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is malformed or out of bounds (400).
    #[error("{message}")]
    BadRequest {
        /// The error code .
        code: ErrorCode,
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
        /// The error code .
        code: ErrorCode,
        /// What conflicts.
        message: String,
    },
    /// Authenticated but not allowed (403).
    #[error("{message}")]
    Forbidden {
        /// The error code .
        code: ErrorCode,
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
        /// The error code .
        code: ErrorCode,
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
        code: ErrorCode,
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

    pub(crate) fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub(crate) fn not_connected() -> Self {
        Self::Conflict {
            code: ErrorCode::CalendlyNotConnected,
            message: "Calendly is not connected for this organization".into(),
        }
    }
    /// Calendly did not grant a scope the feature needs (403 `calendly_scope_missing`).
    pub(crate) fn scope_missing(scope: crate::calendly::Scope) -> Self {
        Self::Forbidden {
            code: ErrorCode::CalendlyScopeMissing,
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
            code: ErrorCode::CalendlyOrganizationInUse,
            message: "this Calendly organization is connected in organization scope to another organization".into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict(message) => Self::Conflict { code: ErrorCode::Conflict, message },
            StoreError::InvalidCursor => Self::bad_request(ErrorCode::InvalidCursor, "the cursor is not valid"),
            StoreError::Throttled => Self::StoreBusy,
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %crate::errors::chain(cause.as_ref()), "the store is unavailable");
                Self::StoreBusy
            }
            // Retrying won't help: a 500, logged with the store's error code.
            e @ (StoreError::Rejected(_)
            | StoreError::Misconfigured(_)
            | StoreError::Corrupt(_)
            | StoreError::Unconvertible(_)
            | StoreError::RequestBuild(_)) => Self::Internal(Box::new(e)),
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
                code: ErrorCode::CalendlyNeedsReconnect,
                message: "Calendly no longer accepts this integration's token; reconnect Calendly".into(),
            },
            CalendlyError::Forbidden(message) => Self::Forbidden {
                code: ErrorCode::CalendlyForbidden,
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
                code: ErrorCode::CalendlyNeedsReconnect,
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
