//! The product's use cases, over the ports: connect, status, sync, disconnect, prospects.
//! HTTP, Lambda and the local stack all call these; none of them holds business rules.

use crate::auth::{Caller, JwtVerifier};
use crate::calendly::{CalendlyApi, CalendlyError, NewWebhookSubscription, WEBHOOK_EVENTS};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{Pkce, Sealer, random_token};
use crate::domain::{
    Booking, ConnectedAccount, DEFAULT_SYNC_INTERVAL_MINUTES, Integration, IntegrationId, Notification, NotificationId,
    OAuthState, Organization, OrganizationId, Prospect, ProspectId, SYNC_INTERVAL_RANGE, SyncJob, SyncTrigger,
};
use crate::push::{PushMessage, Pusher};
use crate::queue::JobQueue;
use crate::store::{Connection, ConnectionStore, PageOf, ProspectPatch, StateTake, Store, StoreError};
use crate::sync::{SyncEngine, SyncError};
use crate::tokens::{TokenError, TokenKeeper, seal_context};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How long a started connect may take (Calendly codes live 10 minutes too).
const OAUTH_STATE_TTL: Duration = Duration::minutes(10);
/// The few Calendly calls made inside a request (connect, webhook check, disconnect) may wait
/// this long for a rate-limit reset; syncs never wait (they run as jobs).
const MANUAL_RATE_LIMIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a disconnect waits for Calendly (subscription deletion, revocations).
const CALENDLY_CLEANUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(4);
/// API Gateway closes WebSocket connections after 2 hours at the most.
const CONNECTION_LIFETIME: Duration = Duration::hours(2);

/// A use case's failure, in terms a caller can act on (mapped to HTTP statuses in one place).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("Calendly refused: {0}")]
    CalendlyRejected(String),
    #[error("Calendly is unreachable: {0}")]
    CalendlyUnavailable(String),
    #[error("Calendly's rate limit is reached; retry in {retry_after_secs} s")]
    CalendlyRateLimited { retry_after_secs: u64 },
    #[error("the store is busy; retry shortly")]
    StoreBusy,
    #[error("the sync queue is unavailable: {0}")]
    QueueUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    fn not_connected() -> Self {
        Self::Conflict {
            code: "calendly_not_connected",
            message: "Calendly is not connected for this organization".into(),
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
                tracing::warn!(%cause, "the store is unavailable");
                Self::StoreBusy
            }
            // Retrying won't help: a 500, logged with the store's error code.
            StoreError::Rejected(m) | StoreError::Misconfigured(m) | StoreError::Corrupt(m) => Self::Internal(m),
        }
    }
}

impl From<CalendlyError> for AppError {
    fn from(e: CalendlyError) -> Self {
        match e {
            CalendlyError::RateLimited { retry_after_secs } | CalendlyError::Paced { retry_after_secs } => {
                Self::CalendlyRateLimited { retry_after_secs }
            }
            CalendlyError::Unavailable(m) => Self::CalendlyUnavailable(m),
            CalendlyError::Decode(m) => Self::CalendlyUnavailable(format!("unexpected answer: {m}")),
            CalendlyError::Unauthorized => Self::Conflict {
                code: "calendly_needs_reconnect",
                message: "Calendly no longer accepts this integration's token; reconnect Calendly".into(),
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
            TokenError::RefreshTimedOut => Self::CalendlyUnavailable("token refresh did not finish in time".into()),
            TokenError::Calendly(c) => c.into(),
            TokenError::Store(s) => s.into(),
            TokenError::Seal(s) => Self::Internal(s.to_string()),
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

/// What checking an integration's webhook subscription did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookCheck {
    /// An active subscription to our URL was there and kept.
    Kept,
    /// None was delivering (missing or disabled): one was created.
    Created,
}

/// The answer to `POST /calendly/connect`.
#[derive(Debug, Serialize)]
pub struct ConnectStart {
    pub authorize_url: String,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// The answer to a completed connect.
#[derive(Debug, Serialize)]
pub struct ConnectOutcome {
    pub connected: bool,
    pub organization_id: OrganizationId,
    pub email: String,
    pub name: String,
    pub user_uri: String,
    /// The initial sync job (failed, with why, when it could not be queued: the schedule then
    /// runs one).
    pub sync: Option<SyncJob>,
}

/// The connection as the settings page shows it: the active integration, if any, and the
/// latest sync job.
#[derive(Clone, Debug)]
pub struct ConnectionStatus {
    pub integration: Option<Integration>,
    pub sync: Option<SyncJob>,
}

/// One of the connected user's event types, and whether the booking filter takes it.
#[derive(Clone, Debug)]
pub struct EventTypeChoice {
    pub event_type: crate::calendly::EventType,
    pub selected: bool,
}

/// The product's use cases and the ports they drive.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub calendly: Arc<dyn CalendlyApi>,
    pub pusher: Arc<dyn Pusher>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
    pub jwt: JwtVerifier,
    pub engine: SyncEngine,
    pub webhook_base_url: String,
    pub webhook_signing_key: crate::config::Secret,
    pub frontend_url: Option<String>,
    /// The longest slice a worker runs a sync job for before it checkpoints and re-queues.
    pub job_budget: std::time::Duration,
    /// The first retry delay of a job after a transient failure.
    pub job_retry_delay: std::time::Duration,
}

/// The adapters the use cases drive.
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub calendly: Arc<dyn CalendlyApi>,
    pub pusher: Arc<dyn Pusher>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Wires the use cases from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        let Adapters { store, calendly, pusher, queue, clock } = adapters;
        let sealer =
            Sealer::from_hex_key(config.encryption_key.expose()).expect("ENCRYPTION_KEY was validated at start-up");
        let sealer = match &config.encryption_key_previous {
            Some(previous) => {
                sealer.with_previous_key(previous.expose()).expect("ENCRYPTION_KEY_PREVIOUS was validated at start-up")
            }
            None => sealer,
        };
        let tokens = TokenKeeper::new(store.clone(), sealer.clone(), clock.clone());
        let engine = SyncEngine::new(
            store.clone(),
            calendly.clone(),
            pusher.clone(),
            clock.clone(),
            tokens,
            config.sync_days_past,
            config.sync_days_ahead,
        );
        Self {
            store,
            calendly,
            pusher,
            queue,
            clock,
            sealer,
            jwt: JwtVerifier::with_claims(
                config.jwt_secret.expose(),
                config.jwt_issuer.as_deref(),
                config.jwt_audience.as_deref(),
            ),
            engine,
            webhook_base_url: config.webhook_base_url.clone(),
            webhook_signing_key: config.calendly_webhook_signing_key.clone(),
            frontend_url: config.frontend_url.clone(),
            job_budget: config.sync_job_budget,
            job_retry_delay: config.sync_retry_delay,
        }
    }

    // ---- OAuth connect -------------------------------------------------------------------

    /// Starts a connect: a single-use state bound to the caller, and the PKCE verifier sealed.
    pub async fn start_connect(&self, caller: &Caller) -> Result<ConnectStart, AppError> {
        let state = random_token(32);
        let pkce = Pkce::generate();
        let expires_at = self.clock.now() + OAUTH_STATE_TTL;
        let pending = OAuthState {
            state: state.clone(),
            organization_id: caller.organization_id.clone(),
            user_id: caller.user_id.clone(),
            pkce_verifier: self.sealer.seal(&pkce.verifier, &state_context(&state)),
            expires_at,
        };
        self.store.put_oauth_state(&pending).await?;
        Ok(ConnectStart { authorize_url: self.calendly.authorize_url(&state, &pkce.challenge), state, expires_at })
    }

    /// Completes a connect: exchanges the code, stores the integration, mirrors the settings,
    /// makes sure the webhook subscription exists and queues the initial sync (a job: the
    /// answer never waits for it, whatever the account's size).
    pub async fn complete_connect(&self, code: &str, state: &str, caller: &Caller) -> Result<ConnectOutcome, AppError> {
        let now = self.clock.now();
        // Bound to who started it (RFC 6749 §10.12): the same organization *and* user, checked
        // before the state is consumed, so nobody else's attempt can burn it.
        let pending = match self.store.take_oauth_state(state, &caller.organization_id, &caller.user_id, now).await? {
            StateTake::Taken(pending) => pending,
            StateTake::Absent => {
                return Err(AppError::bad_request("invalid_state", "unknown, expired or already used OAuth state"));
            }
            StateTake::NotYours => {
                tracing::warn!(organization_id = %caller.organization_id, "OAuth state of another user or organization presented");
                return Err(AppError::bad_request(
                    "invalid_state",
                    "this connect was started by another user or organization",
                ));
            }
        };
        let org = pending.organization_id.clone();
        let verifier = self
            .sealer
            .open(&pending.pkce_verifier, &state_context(state))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let session = self.engine.session(MANUAL_RATE_LIMIT_BUDGET);
        let tokens = session
            .call(|api| {
                let (c, v) = (code.to_string(), verifier.clone());
                async move { api.exchange_code(&c, &v).await }
            })
            .await
            .map_err(|e| match e {
                CalendlyError::OAuth { error, description } => {
                    AppError::CalendlyRejected(format!("{error}: {description}"))
                }
                other => other.into(),
            })?;
        let access = tokens.access_token.clone();
        let user = session
            .call(|api| {
                let a = access.clone();
                async move { api.current_user(&a).await }
            })
            .await?;

        // One Calendly account feeds one organization: another organization's active
        // integration keeps it, and the tokens just obtained are given back.
        if !self.store.claim_calendly_user(&user.uri, &org, now).await? {
            for token in [&tokens.access_token, &tokens.refresh_token] {
                let _ = session
                    .call(|api| {
                        let t = token.clone();
                        async move { api.revoke(&t).await }
                    })
                    .await;
            }
            tracing::warn!(organization_id = %org, "Calendly account already connected to another organization");
            return Err(AppError::Conflict {
                code: "calendly_account_in_use",
                message: "this Calendly account is connected to another organization; disconnect it there first".into(),
            });
        }
        let previous = self.store.get_integration(&org).await?;
        if let Some(old) = previous.as_ref().filter(|p| p.calendly_user_uri != user.uri) {
            self.store.release_calendly_user(&old.calendly_user_uri, &org).await?;
            // The previous Calendly user's subscription would go on delivering its bookings:
            // deleted with its own token while that is still stored (bounded, best-effort; a
            // leftover is replaced when the new user's subscription meets it as a 409).
            if let (true, Some(uri)) = (old.is_active, old.webhook_subscription_uri.clone()) {
                let cleanup = async {
                    let session = self.engine.session(std::time::Duration::ZERO);
                    let (token, _) = self.engine.tokens().access_token(&session, old).await.map_err(AppError::from)?;
                    self.delete_subscription(&session, &token, &uri).await.map_err(AppError::from)
                };
                match tokio::time::timeout(CALENDLY_CLEANUP_BUDGET, cleanup).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(organization_id = %org, error = %e, "could not delete the previous user's subscription")
                    }
                    Err(_) => {
                        tracing::warn!(organization_id = %org, "Calendly did not answer in time deleting the previous user's subscription")
                    }
                }
            }
        }
        let account = ConnectedAccount {
            id: previous.as_ref().map(|p| p.id.clone()).unwrap_or_else(IntegrationId::generate),
            organization_id: org.clone(),
            connected_by: pending.user_id.clone(),
            calendly_user_uri: user.uri.clone(),
            calendly_organization_uri: user.current_organization.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            scheduling_url: user.scheduling_url.clone(),
        };
        // A reconnect keeps the organization's choices (and its subscription, same user only).
        let mut integration = Integration {
            token_type: tokens.token_type.clone(),
            scope: tokens.scope.clone(),
            webhook_subscription_uri: previous
                .as_ref()
                .filter(|p| p.calendly_user_uri == user.uri)
                .and_then(|p| p.webhook_subscription_uri.clone()),
            auto_sync_enabled: previous.as_ref().is_none_or(|p| p.auto_sync_enabled),
            sync_interval_minutes: previous.as_ref().map_or(DEFAULT_SYNC_INTERVAL_MINUTES, |p| p.sync_interval_minutes),
            filter: previous.as_ref().map(|p| p.filter.clone()).unwrap_or_default(),
            ..Integration::connected(account, tokens.expires_at(now), now)
        };
        integration.access_token = self.sealer.seal(&tokens.access_token, &seal_context(&integration, "access"));
        integration.refresh_token = self.sealer.seal(&tokens.refresh_token, &seal_context(&integration, "refresh"));
        let integration = self.store.save_connected_integration(integration).await?;

        let mut mirror = Map::new();
        mirror.insert("enabled".into(), json!(true));
        mirror.insert("mode".into(), json!("oauth"));
        mirror.insert("calendly_link".into(), json!(user.scheduling_url));
        mirror.insert("oauth_connected".into(), json!(true));
        mirror.insert("oauth_email".into(), json!(user.email));
        mirror.insert("oauth_user_uri".into(), json!(user.uri));
        mirror.insert("oauth_user_name".into(), json!(user.name));
        mirror.insert("oauth_expires_at".into(), json!(integration.expires_at));
        mirror.insert("oauth_token_type".into(), json!(integration.token_type));
        self.store.merge_calendly_settings(&org, &mirror).await?;

        if let Err(e) = self.ensure_webhook(&integration).await {
            tracing::warn!(organization_id = %org, error = %e, "could not subscribe to Calendly webhooks; the scheduled sync still runs");
        }
        // `next_sync_at` is now: if the job can't be queued, the next scheduled tick runs it.
        let sync = match self.queue_sync(&integration, SyncTrigger::Initial).await {
            Ok(queued) => Some(queued.job),
            Err(e) => {
                // The job is recorded as failed, with why; the scheduled sync will run one.
                tracing::warn!(organization_id = %org, error = %e, "initial sync not queued; the scheduled sync will run it");
                self.store.get_sync_job(&org).await.ok().flatten()
            }
        };
        tracing::info!(organization_id = %org, integration_id = %integration.id, "Calendly connected");
        Ok(ConnectOutcome {
            connected: true,
            organization_id: org,
            email: user.email,
            name: user.name,
            user_uri: user.uri,
            sync,
        })
    }

    /// The webhook URL of an integration: one URL per integration, so Calendly's
    /// one-subscription-per-URL rule keeps reconnects from creating a second one.
    pub fn webhook_url(&self, integration: &Integration) -> String {
        format!("{}/calendly/webhook/{}", self.webhook_base_url, integration.id)
    }

    /// Makes sure an active subscription delivers to this integration's URL: keeps a working
    /// one, replaces a disabled one (delete, then create), creates a missing one.
    pub async fn ensure_webhook(&self, integration: &Integration) -> Result<WebhookCheck, AppError> {
        let org = &integration.organization_id;
        let session = self.engine.session(MANUAL_RATE_LIMIT_BUDGET);
        let (token, _) = self.engine.tokens().access_token(&session, integration).await?;
        let url = self.webhook_url(integration);
        let (org_uri, user_uri) =
            (integration.calendly_organization_uri.clone(), integration.calendly_user_uri.clone());
        let existing = session
            .call(|api| {
                let (t, o, u) = (token.clone(), org_uri.clone(), user_uri.clone());
                async move { api.list_webhook_subscriptions(&t, &o, Some(&u)).await }
            })
            .await?;
        let ours = existing.into_iter().find(|s| s.callback_url == url);
        if let Some(current) = &ours {
            if current.is_active() && covers_webhook_events(&current.events) {
                self.store.set_webhook(org, Some(current.uri.clone()), true, None).await?;
                return Ok(WebhookCheck::Kept);
            }
            tracing::warn!(organization_id = %org, state = %current.state, "webhook subscription is not delivering; replacing it");
            self.delete_subscription(&session, &token, &current.uri).await?;
        }
        let request = NewWebhookSubscription { url: url.clone(), organization_uri: org_uri.clone(), user_uri };
        let create = || {
            session.call(|api| {
                let (t, r) = (token.clone(), request.clone());
                async move { api.create_webhook_subscription(&t, &r).await }
            })
        };
        let created = match create().await {
            // Someone holds our URL (the user this integration was connected to before, or
            // another member of the Calendly organization): adopt it if it is this user's and
            // delivering, else replace it.
            Err(CalendlyError::AlreadyExists) => {
                let all = session
                    .call(|api| {
                        let (t, o) = (token.clone(), org_uri.clone());
                        async move { api.list_webhook_subscriptions(&t, &o, None).await }
                    })
                    .await?;
                match all.into_iter().find(|s| s.callback_url == url) {
                    Some(holder)
                        if holder.user.as_deref() == Some(integration.calendly_user_uri.as_str())
                            && holder.is_active()
                            && covers_webhook_events(&holder.events) =>
                    {
                        self.store.set_webhook(org, Some(holder.uri.clone()), true, None).await?;
                        return Ok(WebhookCheck::Kept);
                    }
                    Some(holder) => {
                        tracing::warn!(organization_id = %org, "another subscription holds this integration's URL; replacing it");
                        self.delete_subscription(&session, &token, &holder.uri).await?;
                        create().await
                    }
                    None => Err(CalendlyError::AlreadyExists),
                }
            }
            other => other,
        };
        match created {
            Ok(created) => {
                self.store.set_webhook(org, Some(created.uri), created.state == "active", None).await?;
                Ok(WebhookCheck::Created)
            }
            Err(e) => {
                // Shown in the status (a plan without webhooks answers 403); polling carries on.
                let reason = match &e {
                    CalendlyError::Forbidden(message) => {
                        format!("Calendly refused the webhook subscription: {message}")
                    }
                    other => other.to_string(),
                };
                self.store.set_webhook(org, None, false, Some(reason)).await?;
                Err(e.into())
            }
        }
    }

    async fn delete_subscription(
        &self,
        session: &crate::calendly::CalendlySession,
        token: &str,
        uri: &str,
    ) -> Result<(), CalendlyError> {
        session
            .call(|api| {
                let (t, u) = (token.to_string(), uri.to_string());
                async move { api.delete_webhook_subscription(&t, &u).await }
            })
            .await
    }

    // ---- Status, settings, sync, disconnect ------------------------------------------------

    /// The connection's state, as the settings page shows it, with the latest sync job.
    pub async fn status(&self, org: &OrganizationId) -> Result<ConnectionStatus, AppError> {
        let sync = self.store.get_sync_job(org).await?;
        let integration = self.store.get_integration(org).await?.filter(|i| i.is_active);
        Ok(ConnectionStatus { integration, sync })
    }

    /// The connected user's event types, for the filter in the settings screen.
    pub async fn event_types(&self, org: &OrganizationId) -> Result<Vec<EventTypeChoice>, AppError> {
        let integration = self.active_integration(org).await?;
        let session = self.engine.session(MANUAL_RATE_LIMIT_BUDGET);
        let (token, _) = self.engine.tokens().access_token(&session, &integration).await?;
        let user = integration.calendly_user_uri.clone();
        let types = session
            .call(|api| {
                let (t, u) = (token.clone(), user.clone());
                async move { api.list_event_types(&t, &u).await }
            })
            .await?;
        let selected = |uri: &str| integration.filter.event_types.as_ref().is_none_or(|l| l.iter().any(|x| x == uri));
        Ok(types
            .into_iter()
            .map(|t| {
                let selected = selected(&t.uri);
                EventTypeChoice { event_type: t, selected }
            })
            .collect())
    }

    /// Sets which bookings become prospects (event types, ignored e-mails or domains).
    pub async fn update_booking_filter(
        &self,
        org: &OrganizationId,
        event_types: Option<Option<Vec<String>>>,
        ignore_emails: Option<Vec<String>>,
    ) -> Result<(), AppError> {
        let integration = self.active_integration(org).await?;
        let mut filter = integration.filter.clone();
        if let Some(types) = event_types {
            filter.event_types = types;
        }
        if let Some(entries) = ignore_emails {
            for entry in &entries {
                let valid = match entry.strip_prefix('@') {
                    Some(domain) => crate::domain::Email::parse(&format!("x@{domain}")).is_ok(),
                    None => crate::domain::Email::parse(entry).is_ok(),
                };
                if !valid {
                    return Err(AppError::bad_request(
                        "invalid_field",
                        format!("ignore_emails: '{entry}' is neither an e-mail address nor an @domain"),
                    ));
                }
            }
            filter.ignore_emails = entries;
        }
        self.store.set_booking_filter(org, &filter).await?;
        Ok(())
    }

    /// Changes auto-sync settings.
    pub async fn update_sync_settings(
        &self,
        org: &OrganizationId,
        auto_sync_enabled: Option<bool>,
        interval_minutes: Option<u32>,
    ) -> Result<ConnectionStatus, AppError> {
        let integration = self.active_integration(org).await?;
        if let Some(m) = interval_minutes.filter(|m| !SYNC_INTERVAL_RANGE.contains(m)) {
            return Err(AppError::bad_request(
                "invalid_interval",
                format!("sync_interval_minutes must be between 5 and 1440, got {m}"),
            ));
        }
        let interval = interval_minutes.unwrap_or(integration.sync_interval_minutes);
        let enabled = auto_sync_enabled.unwrap_or(integration.auto_sync_enabled);
        let next = integration.last_synced_at.map(|last| last + Duration::minutes(i64::from(interval)));
        self.store.update_sync_settings(org, enabled, interval, next).await?;
        self.status(org).await
    }

    /// Disconnects: revokes at Calendly, deletes the subscription, soft-deletes the
    /// integration and mirrors the settings. Idempotent; prospects stay.
    pub async fn disconnect(&self, org: &OrganizationId) -> Result<(), AppError> {
        let Some(integration) = self.store.get_integration(org).await?.filter(|i| i.is_active) else {
            return Ok(());
        };
        // Disconnected first, here: whatever Calendly does next (down, hanging, refusing),
        // the user is disconnected and nothing more is synced.
        self.store.deactivate_integration(org, self.clock.now()).await?;
        self.store.release_calendly_user(&integration.calendly_user_uri, org).await?;
        let mut mirror = Map::new();
        mirror.insert("enabled".into(), json!(false));
        mirror.insert("oauth_connected".into(), json!(false));
        self.store.merge_calendly_settings(org, &mirror).await?;
        // Then Calendly, best-effort and bounded, so the answer comes within seconds.
        if tokio::time::timeout(CALENDLY_CLEANUP_BUDGET, self.clean_up_at_calendly(&integration)).await.is_err() {
            tracing::warn!(organization_id = %org, "Calendly did not answer the disconnect in time; its token expires on its own");
        }
        tracing::info!(organization_id = %org, "Calendly disconnected");
        Ok(())
    }

    /// Deletes the subscription and revokes both tokens at Calendly; failures are only logged.
    async fn clean_up_at_calendly(&self, integration: &Integration) {
        let org = &integration.organization_id;
        let session = self.engine.session(std::time::Duration::ZERO);
        if let Ok((token, _)) = self.engine.tokens().access_token(&session, integration).await {
            if let Some(uri) = integration.webhook_subscription_uri.clone() {
                let t = token.clone();
                if let Err(e) = session
                    .call(|api| {
                        let (t, u) = (t.clone(), uri.clone());
                        async move { api.delete_webhook_subscription(&t, &u).await }
                    })
                    .await
                {
                    tracing::warn!(organization_id = %org, error = %e, "could not delete the Calendly webhook subscription");
                }
            }
            if let Err(e) = session
                .call(|api| {
                    let t = token.clone();
                    async move { api.revoke(&t).await }
                })
                .await
            {
                tracing::warn!(organization_id = %org, error = %e, "could not revoke the Calendly token");
            }
        }
        if let Ok(refresh) = self.sealer.open(&integration.refresh_token, &seal_context(integration, "refresh")) {
            let _ = session
                .call(|api| {
                    let t = refresh.clone();
                    async move { api.revoke(&t).await }
                })
                .await;
        }
    }

    pub(crate) async fn active_integration(&self, org: &OrganizationId) -> Result<Integration, AppError> {
        self.store.get_integration(org).await?.filter(|i| i.is_active).ok_or_else(AppError::not_connected)
    }

    // ---- Real time -------------------------------------------------------------------------

    /// `$connect`: authenticates the browser by its JWT and stores the connection under its
    /// organization; a missing or invalid token stores nothing.
    pub async fn ws_connect(&self, token: Option<&str>, connection_id: &str) -> Result<Connection, AppError> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| AppError::Unauthorized("missing token".into()))?;
        let caller = self.jwt.verify(token).map_err(|e| AppError::Unauthorized(e.to_string()))?;
        if connection_id.is_empty() {
            return Err(AppError::bad_request("invalid_connection", "missing connection id"));
        }
        let now = self.clock.now();
        let connection = Connection {
            connection_id: connection_id.to_string(),
            organization_id: caller.organization_id,
            user_id: caller.user_id,
            connected_at: now,
            expires_at: (now + CONNECTION_LIFETIME).min(caller.expires_at),
        };
        self.store.put_connection(&connection).await?;
        tracing::info!(organization_id = %connection.organization_id, %connection_id, "WebSocket connected");
        Ok(connection)
    }

    // ---- Prospects -------------------------------------------------------------------------

    /// One page of the organization's prospects, optionally of one `source`.
    pub async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, AppError> {
        if let Some(s) = source {
            crate::domain::check_source(s).map_err(|m| AppError::bad_request("invalid_source", m))?;
        }
        Ok(self.store.list_prospects(org, source, limit, cursor).await?)
    }

    /// One prospect; 404 when it is not this organization's.
    pub async fn prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Prospect, AppError> {
        self.store.get_prospect(org, id).await?.ok_or(AppError::NotFound("prospect"))
    }

    /// Creates a prospect by hand; 409 when the email is taken in this organization.
    pub async fn create_prospect(&self, prospect: Prospect) -> Result<Prospect, AppError> {
        self.store.create_prospect(&prospect).await.map_err(email_conflict)?;
        self.pusher.push(&prospect.organization_id, PushMessage::prospect_created(&prospect)).await;
        Ok(prospect)
    }

    /// Updates a prospect; 404 when it is not this organization's.
    pub async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
    ) -> Result<Prospect, AppError> {
        let updated = self.store.update_prospect(org, id, patch, self.clock.now()).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound("prospect"),
            other => email_conflict(other),
        })?;
        self.pusher.push(org, PushMessage::prospect_updated(&updated)).await;
        Ok(updated)
    }

    /// Deletes a prospect; 404 when it is not this organization's.
    pub async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<(), AppError> {
        if !self.store.delete_prospect(org, id).await? {
            return Err(AppError::NotFound("prospect"));
        }
        self.pusher.push(org, PushMessage::prospect_deleted(id)).await;
        Ok(())
    }
}

impl Services {
    // ---- Bookings, notifications, organization ---------------------------------------------

    /// One page of the organization's Calendly bookings.
    pub async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, AppError> {
        Ok(self.store.list_bookings(org, limit, cursor).await?)
    }

    /// One page of the organization's notifications, newest first.
    pub async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, AppError> {
        Ok(self.store.list_notifications(org, limit, cursor).await?)
    }

    /// Marks a notification read; 404 when it is not this organization's.
    pub async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<(), AppError> {
        match self.store.mark_notification_read(org, id).await? {
            true => Ok(()),
            false => Err(AppError::NotFound("notification")),
        }
    }

    /// The organization and its settings.
    pub async fn organization(&self, org: &OrganizationId) -> Result<Organization, AppError> {
        Ok(self.store.get_organization(org).await?)
    }

    /// Merges `settings` into the organization's, key by key: other keys are kept,
    /// `settings.calendly` is the integration's mirror and can't be written, `timezone` must be
    /// an IANA name, and the whole stays within what an item holds.
    pub async fn merge_organization_settings(
        &self,
        org: &OrganizationId,
        settings: &Map<String, Value>,
    ) -> Result<Organization, AppError> {
        let timezone = settings.get("timezone").filter(|v| !v.is_null());
        if timezone.is_some_and(|tz| tz.as_str().is_none_or(|t| t.parse::<chrono_tz::Tz>().is_err())) {
            return Err(AppError::bad_request(
                "invalid_timezone",
                "settings.timezone must be an IANA timezone name such as Europe/Paris",
            ));
        }
        let current = self.store.get_organization(org).await?;
        crate::domain::check_settings_patch(&current.settings, settings).map_err(|e| {
            let code = match e {
                crate::domain::SettingsError::ReadOnly => "read_only_setting",
                crate::domain::SettingsError::TooLarge => "settings_too_large",
                _ => "invalid_settings",
            };
            AppError::bad_request(code, e.to_string())
        })?;
        self.store.merge_settings(org, settings).await?;
        Ok(self.store.get_organization(org).await?)
    }
}

/// `$disconnect`: forgets the connection (best-effort in API Gateway, hence the `ttl`). Needs
/// nothing but the connection records, so `ws-disconnect` is wired with nothing else.
pub async fn forget_connection(connections: &dyn ConnectionStore, connection_id: &str) -> Result<(), AppError> {
    if let Some(c) = connections.remove_connection(connection_id).await? {
        tracing::info!(organization_id = %c.organization_id, %connection_id, "WebSocket disconnected");
    }
    Ok(())
}

/// Whether a subscription delivers every event the product uses.
fn covers_webhook_events(events: &[String]) -> bool {
    WEBHOOK_EVENTS.iter().all(|e| events.iter().any(|x| x == e))
}

fn email_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(message) => AppError::Conflict { code: "email_taken", message },
        other => other.into(),
    }
}

fn state_context(state: &str) -> String {
    format!("oauth-state|{state}")
}
