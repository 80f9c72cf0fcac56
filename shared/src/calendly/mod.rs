//! The Calendly port (OAuth + API v2), its reqwest adapter, and a per-run session that counts
//! requests and waits out rate limits.

pub mod client;
pub mod delivery;
pub mod scopes;
pub mod types;
pub mod webhook_signature;

pub use client::HttpCalendly;
pub use scopes::{CalendlyCall, GrantedScopes, Scope};
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What went wrong talking to Calendly. Branches on the HTTP status, not on titles.
#[derive(Debug, thiserror::Error)]
pub enum CalendlyError {
    /// The token endpoint refused the code or the refresh token.
    #[error("Calendly refused the grant ({error}): {description}")]
    OAuth {
        /// The OAuth error code (`invalid_grant`: the refresh token is dead).
        error: String,
        /// Calendly's explanation.
        description: String,
    },
    /// 401: the access token is expired or revoked.
    #[error("Calendly rejected the access token")]
    Unauthorized,
    /// 403: the plan, the role or the token's scopes don't allow it (Calendly's message).
    #[error("Calendly refused the request (missing permission or scope): {0}")]
    Forbidden(String),
    /// 429: the user's window is spent by Calendly's count.
    #[error("Calendly rate limit reached; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// Not sent: the user's window is spent by our own count (`RateWindow::spent_at`).
    #[error("Calendly's rate-limit window for this user is spent; retry in {retry_after_secs} s")]
    Paced {
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// 409 on a subscription: one with this URL already exists.
    #[error("a webhook subscription with this URL already exists")]
    AlreadyExists,
    /// 404.
    #[error("Calendly resource not found")]
    NotFound,
    /// Unreachable, timed out or 5xx (worth retrying); the cause is kept.
    #[error("Calendly is unavailable: {}", crate::errors::chain(.0.as_ref()))]
    Unavailable(#[source] crate::errors::BoxError),
    /// Any other refusal.
    #[error("Calendly answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Calendly's message.
        message: String,
    },
    /// A 2xx body that doesn't parse as documented.
    #[error("unexpected Calendly response: {0}")]
    Decode(#[source] serde_json::Error),
    /// A list whose `next_page_token` never ends (a token came back, or past the page bound).
    #[error("Calendly's pagination does not end: {0}")]
    EndlessPagination(String),
}

impl CalendlyError {
    /// The refresh token is dead: only this marks an integration as needing reconnection.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::OAuth { error, .. } if error == "invalid_grant")
    }

    /// Seconds until the rate-limit window resets, when this is a rate-limit error.
    pub fn rate_limit_reset(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } | Self::Paced { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// What Calendly's `X-RateLimit-*` headers last said of one user's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateWindow {
    /// Requests left in the window.
    pub remaining: u64,
    /// When the window resets.
    pub resets_at: DateTime<Utc>,
}

impl RateWindow {
    /// Requests kept in reserve: a sync has up to this many in flight when it reads `remaining`.
    pub const RESERVE: u64 = 8;
    /// A window is shared with other workers (one write) only once this little is left: with
    /// more, no worker is near the reserve, and each learns the window from its own first
    /// answer (Calendly's headers), so a small sync writes nothing for pacing.
    pub const SHARED_BELOW: u64 = 100;

    /// Whether other workers need to know of it.
    pub fn worth_sharing(&self) -> bool {
        self.remaining < Self::SHARED_BELOW
    }

    /// The window observed now from `X-RateLimit-Remaining` and `X-RateLimit-Reset`. The reset
    /// is whole seconds rounded down: one more keeps us from waking just before it.
    pub fn observed(remaining: u64, reset_secs: u64, now: DateTime<Utc>) -> Self {
        let reset = i64::try_from(reset_secs.saturating_add(1)).unwrap_or(i64::MAX / 2_000_000);
        Self { remaining, resets_at: now + chrono::Duration::seconds(reset) }
    }

    /// Whether no request should be sent before `resets_at`.
    pub fn spent_at(&self, now: DateTime<Utc>) -> bool {
        self.remaining <= Self::RESERVE && self.resets_at > now
    }

    /// Whole seconds until the reset (at least one).
    pub fn seconds_to_reset(&self, now: DateTime<Utc>) -> u64 {
        u64::try_from((self.resets_at - now).num_milliseconds().max(0)).unwrap_or(0).div_ceil(1000).max(1)
    }

    /// Whether this observation is newer than `stored`: a later window, or less left of the
    /// same one (two observations of one window differ by the header's rounding at most).
    pub fn supersedes(&self, stored: &RateWindow) -> bool {
        let same_window = (self.resets_at - stored.resets_at).num_seconds().abs() <= 1;
        if same_window { self.remaining < stored.remaining } else { self.resets_at > stored.resets_at }
    }
}

/// A page of scheduled events to list.
#[derive(Clone, Debug)]
pub struct EventQuery {
    /// The user whose events to list (user scope).
    pub user_uri: String,
    /// Set for organization scope: every member's events (`organization=`) instead of the user's.
    pub organization_uri: Option<String>,
    /// The earliest start time.
    pub min_start_time: DateTime<Utc>,
    /// The latest start time.
    pub max_start_time: DateTime<Utc>,
    /// The page to read (`None`: the first).
    pub page_token: Option<String>,
}

/// A webhook subscription to create.
#[derive(Clone, Debug)]
pub struct NewWebhookSubscription {
    /// Where Calendly delivers (our webhook route, with the integration's id).
    pub url: String,
    /// The user's Calendly organization (required by Calendly in both scopes).
    pub organization_uri: String,
    /// The user it delivers for (user scope).
    pub user_uri: String,
    /// `scope=organization`: every member's bookings (owners and admins only).
    pub organization_wide: bool,
    /// The events it delivers.
    pub events: Vec<&'static str>,
}

/// Calendly, as the product uses it. One call is exactly one HTTP request.
#[async_trait]
pub trait CalendlyApi: Send + Sync {
    /// The browser URL that starts the OAuth consent.
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String;
    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    async fn exchange_code(&self, code: &str, code_verifier: &str) -> Result<TokenResponse, CalendlyError>;
    /// Exchanges a (single-use) refresh token for a new pair.
    async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, CalendlyError>;
    /// Revokes a token.
    async fn revoke(&self, token: &str) -> Result<(), CalendlyError>;
    /// The user who owns the access token.
    async fn current_user(&self, access_token: &str) -> Result<CalendlyUser, CalendlyError>;
    /// One page (up to 100) of a user's scheduled events, by start time.
    async fn list_scheduled_events(
        &self,
        access_token: &str,
        query: &EventQuery,
    ) -> Result<Page<ScheduledEvent>, CalendlyError>;
    /// One page (up to 100) of an event's invitees.
    async fn list_invitees(
        &self,
        access_token: &str,
        event_uuid: &str,
        page_token: Option<&str>,
    ) -> Result<Page<Invitee>, CalendlyError>;
    /// One page (up to 100) of event types: the user's, or with `organization_uri` every
    /// member's (owners and admins).
    async fn list_event_types(
        &self,
        access_token: &str,
        owner: &EventTypeOwner,
        page_token: Option<&str>,
    ) -> Result<Page<EventType>, CalendlyError>;
    /// One scheduled event (what a delivery without its `scheduled_event` left out).
    async fn get_scheduled_event(&self, access_token: &str, event_uuid: &str) -> Result<ScheduledEvent, CalendlyError>;
    /// One invitee of an event (what a no-show delivery naming only its URI left out).
    async fn get_invitee(
        &self,
        access_token: &str,
        event_uuid: &str,
        invitee_uuid: &str,
    ) -> Result<Invitee, CalendlyError>;
    /// One page (up to 100) of webhook subscriptions: the user's (`scope=user`), or with no
    /// user the whole organization's (`scope=organization`, to find who holds a URL).
    async fn list_webhook_subscriptions(
        &self,
        access_token: &str,
        organization_uri: &str,
        user_uri: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Page<WebhookSubscription>, CalendlyError>;
    /// One page (up to 100) of a Calendly organization's memberships, of one user when given.
    async fn organization_memberships(
        &self,
        access_token: &str,
        organization_uri: &str,
        user_uri: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Page<OrganizationMembership>, CalendlyError>;
    /// Creates a subscription; `AlreadyExists` when the URL is subscribed.
    async fn create_webhook_subscription(
        &self,
        access_token: &str,
        request: &NewWebhookSubscription,
    ) -> Result<WebhookSubscription, CalendlyError>;
    /// Deletes a subscription (by its URI).
    async fn delete_webhook_subscription(
        &self,
        access_token: &str,
        subscription_uri: &str,
    ) -> Result<(), CalendlyError>;
    /// Asks Calendly to delete these invitees' data across the organization (Enterprise plans,
    /// `data_compliance:write`); Calendly completes it within 7 days.
    async fn delete_invitee_data(&self, access_token: &str, emails: &[String]) -> Result<(), CalendlyError>;
    /// Marks an invitee as a no-show (`scheduled_events:write`, once its event started).
    async fn create_invitee_no_show(
        &self,
        access_token: &str,
        invitee_uri: &str,
    ) -> Result<InviteeNoShow, CalendlyError>;
    /// Takes a no-show back (by the no-show's URI).
    async fn delete_invitee_no_show(&self, access_token: &str, no_show_uri: &str) -> Result<(), CalendlyError>;
    /// One page (up to 100) of the Calendly organization's routing forms.
    async fn list_routing_forms(
        &self,
        access_token: &str,
        organization_uri: &str,
        page_token: Option<&str>,
    ) -> Result<Page<RoutingForm>, CalendlyError>;
    /// One routing form (a delivery names its form by URI only).
    async fn get_routing_form(&self, access_token: &str, form_uri: &str) -> Result<RoutingForm, CalendlyError>;
    /// One page (up to 100) of a form's submissions, newest first.
    async fn list_routing_form_submissions(
        &self,
        access_token: &str,
        form_uri: &str,
        page_token: Option<&str>,
    ) -> Result<Page<RoutingFormSubmission>, CalendlyError>;
    /// The rate-limit window last observed for this token's user (none when not tracked).
    fn rate_window(&self, _access_token: &str) -> Option<RateWindow> {
        None
    }
    /// Seeds this token's window with what another worker observed (the shared pacing state).
    fn restore_rate_window(&self, _access_token: &str, _window: RateWindow) {}
}

/// Whose event types to list.
#[derive(Clone, Debug)]
pub enum EventTypeOwner {
    /// One user's (`user=`).
    User(String),
    /// Every member's of a Calendly organization (`organization=`).
    Organization(String),
}

/// Pages of one list read at the most (20,000 items at 100 a page: far past any real team's
/// members, event types or subscriptions); past it the list is treated as never ending.
pub const MAX_LIST_PAGES: usize = 200;

/// One run's view of Calendly: counts requests and waits out rate limits within a budget (a
/// zero budget never waits: sync jobs pause and come back through the queue instead).
pub struct CalendlySession {
    api: Arc<dyn CalendlyApi>,
    requests: AtomicU64,
    rate_limit_budget: Duration,
}

impl CalendlySession {
    /// A session that may spend up to `rate_limit_budget` waiting for rate limits to reset.
    pub fn new(api: Arc<dyn CalendlyApi>, rate_limit_budget: Duration) -> Self {
        Self { api, requests: AtomicU64::new(0), rate_limit_budget }
    }

    /// The API behind the session.
    pub fn api(&self) -> &dyn CalendlyApi {
        self.api.as_ref()
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every item of a paginated list: follows `next_page_token` to its end, refusing a token
    /// that comes back and more than `MAX_LIST_PAGES` pages. `what` names the list in errors.
    pub async fn all_pages<T, F, Fut>(&self, what: &str, mut page: F) -> Result<Vec<T>, CalendlyError>
    where
        F: FnMut(Arc<dyn CalendlyApi>, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, CalendlyError>>,
    {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let current = token.clone();
            let next = self.call(|api| page(api, current.clone())).await?;
            items.extend(next.collection);
            match next.pagination.next_page_token {
                None => return Ok(items),
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(CalendlyError::EndlessPagination(format!("the {what} page token came back")));
                }
                Some(t) => token = Some(t),
            }
        }
        Err(CalendlyError::EndlessPagination(format!("more than {MAX_LIST_PAGES} pages of {what}")))
    }

    /// Runs one Calendly call, retrying after a 429 once the limit resets (never hammering).
    pub async fn call<T, F, Fut>(&self, mut request: F) -> Result<T, CalendlyError>
    where
        F: FnMut(Arc<dyn CalendlyApi>) -> Fut,
        Fut: std::future::Future<Output = Result<T, CalendlyError>>,
    {
        let mut waited = Duration::ZERO;
        loop {
            let result = request(self.api.clone()).await;
            if !matches!(result, Err(CalendlyError::Paced { .. })) {
                self.requests.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::CalendlyRequests, None, 1);
                if matches!(result, Err(CalendlyError::RateLimited { .. })) {
                    crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::CalendlyRateLimited, None, 1);
                }
            }
            match result {
                Err(e) if e.rate_limit_reset().is_some() => {
                    let retry_after_secs = e.rate_limit_reset().unwrap_or(1);
                    let wait = Duration::from_secs(retry_after_secs.max(1));
                    if waited + wait > self.rate_limit_budget {
                        return Err(e);
                    }
                    tracing::warn!(retry_after_secs, "Calendly rate limit reached; waiting for the reset");
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                other => return other,
            }
        }
    }
}
