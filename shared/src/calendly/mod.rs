//! The Calendly port (OAuth + API v2), its reqwest adapter, and a per-run session that counts
//! requests and waits out rate limits.

pub mod client;
pub mod types;

pub use client::HttpCalendly;
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What went wrong talking to Calendly. Branches on the HTTP status, not on titles.
#[derive(Debug, thiserror::Error)]
pub enum CalendlyError {
    #[error("Calendly refused the grant ({error}): {description}")]
    OAuth { error: String, description: String },
    #[error("Calendly rejected the access token")]
    Unauthorized,
    #[error("Calendly refused the request (missing permission or scope): {0}")]
    Forbidden(String),
    #[error("Calendly rate limit reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("a webhook subscription with this URL already exists")]
    AlreadyExists,
    #[error("Calendly resource not found")]
    NotFound,
    #[error("Calendly is unavailable: {0}")]
    Unavailable(String),
    #[error("Calendly answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("unexpected Calendly response: {0}")]
    Decode(String),
}

impl CalendlyError {
    /// The refresh token is dead: only this marks an integration as needing reconnection.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::OAuth { error, .. } if error == "invalid_grant")
    }
}

/// A page of scheduled events to list.
#[derive(Clone, Debug)]
pub struct EventQuery {
    pub user_uri: String,
    pub min_start_time: DateTime<Utc>,
    pub max_start_time: DateTime<Utc>,
    pub page_token: Option<String>,
}

/// A webhook subscription to create.
#[derive(Clone, Debug)]
pub struct NewWebhookSubscription {
    pub url: String,
    pub organization_uri: String,
    pub user_uri: String,
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
    /// The user's webhook subscriptions (first page of 100: we create one per integration).
    async fn list_webhook_subscriptions(
        &self,
        access_token: &str,
        organization_uri: &str,
        user_uri: &str,
    ) -> Result<Vec<WebhookSubscription>, CalendlyError>;
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
}

/// One run's view of Calendly: counts requests and waits out 429s within a budget.
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

    /// Runs one Calendly call, retrying after a 429 once the limit resets (never hammering).
    pub async fn call<T, F, Fut>(&self, mut request: F) -> Result<T, CalendlyError>
    where
        F: FnMut(Arc<dyn CalendlyApi>) -> Fut,
        Fut: std::future::Future<Output = Result<T, CalendlyError>>,
    {
        let mut waited = Duration::ZERO;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match request(self.api.clone()).await {
                Err(CalendlyError::RateLimited { retry_after_secs }) => {
                    let wait = Duration::from_secs(retry_after_secs.max(1));
                    if waited + wait > self.rate_limit_budget {
                        return Err(CalendlyError::RateLimited { retry_after_secs });
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
