//! Connecting a Calendly account (OAuth 2.0 with state + PKCE, bound to the user who started
//! it) and disconnecting it.

use crate::app::{AppError, CalendlyAccess, Coverage, ErrorCode, Jobs, MANUAL_RATE_LIMIT_BUDGET, Subscriptions};
use crate::auth::Caller;
use crate::calendly::{CalendlyError, CalendlySession, CalendlyUser, GrantedScopes, Scope, TokenResponse};
use crate::clock::Clock;
use crate::crypto::{Pkce, Sealer, random_token};
use crate::domain::quota::{CONNECT_STARTS, QuotaTake};
use crate::domain::{
    CalendlyScope, ConnectedAccount, DEFAULT_SYNC_INTERVAL_MINUTES, Integration, IntegrationId, OAuthState,
    OrganizationId, SyncJob, SyncTrigger,
};
use crate::engine::tokens::{SealPurpose, seal_context};
use crate::store::{IntegrationStore, OAuthStateStore, OrganizationStore, QuotaStore, StateTake};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, json};
use std::sync::Arc;

/// What Calendly granted a connect: the tokens, the user, and whose bookings they bring.
struct Grant<'a> {
    pending: &'a OAuthState,
    user: &'a CalendlyUser,
    tokens: &'a TokenResponse,
    coverage: CalendlyScope,
    members: Option<Vec<String>>,
    now: DateTime<Utc>,
}

/// How long a started connect may take (Calendly codes live 10 minutes too).
const OAUTH_STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long a disconnect waits for Calendly (subscription deletion, revocations).
const CALENDLY_CLEANUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(4);

/// The answer to `POST /calendly/connect`.
#[derive(Debug, Serialize)]
pub struct ConnectStart {
    /// Calendly's authorization page, with the state and the PKCE challenge.
    pub authorize_url: String,
    /// The single-use state the callback must bring back.
    pub state: String,
    /// When the state expires.
    pub expires_at: DateTime<Utc>,
}

/// The answer to a completed connect.
#[derive(Debug, Serialize)]
pub struct ConnectOutcome {
    /// Always `true` (a failed connect is an error).
    pub connected: bool,
    /// The organization now connected.
    pub organization_id: OrganizationId,
    /// The Calendly user's e-mail.
    pub email: String,
    /// The Calendly user's name.
    pub name: String,
    /// The Calendly user's URI.
    pub user_uri: String,
    /// The initial sync job (failed, with why, when it could not be queued: the schedule then
    /// runs one).
    pub sync: Option<SyncJob>,
    /// Whose bookings the integration brings.
    pub coverage: CalendlyScope,
    /// Why organization scope was asked for and not granted (the user is no owner or admin).
    pub scope_error: Option<String>,
}

/// Connecting and disconnecting a Calendly account: the pending connects, the connect quota,
/// the integration items and the settings mirror, Calendly, the token sealer and the clock;
/// then the subscription and the initial job, through their own use cases.
#[derive(Clone)]
pub struct Connecting {
    states: Arc<dyn OAuthStateStore>,
    quotas: Arc<dyn QuotaStore>,
    integrations: Arc<dyn IntegrationStore>,
    settings: Arc<dyn OrganizationStore>,
    calendly: CalendlyAccess,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    subscriptions: Subscriptions,
    jobs: Jobs,
}

/// The items a connect reads and writes.
pub struct ConnectingPorts {
    /// Pending connects (state + PKCE verifier).
    pub states: Arc<dyn OAuthStateStore>,
    /// Connect starts per user.
    pub quotas: Arc<dyn QuotaStore>,
    /// The integration items and the Calendly accounts' claims.
    pub integrations: Arc<dyn IntegrationStore>,
    /// `Organization.settings.calendly`.
    pub settings: Arc<dyn OrganizationStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl Connecting {
    /// Connecting over `ports`, sealing tokens with `sealer`.
    pub fn new(
        ports: ConnectingPorts,
        calendly: CalendlyAccess,
        sealer: Sealer,
        subscriptions: Subscriptions,
        jobs: Jobs,
    ) -> Self {
        let ConnectingPorts { states, quotas, integrations, settings, clock } = ports;
        Self { states, quotas, integrations, settings, calendly, sealer, clock, subscriptions, jobs }
    }

    /// Starts a connect: a single-use state bound to the caller, and the PKCE verifier sealed.
    /// `scope`: organization scope is granted at completion to owners and admins only.
    pub async fn start_connect(&self, caller: &Caller, scope: CalendlyScope) -> Result<ConnectStart, AppError> {
        let now = self.clock.now();
        let quota = &CONNECT_STARTS;
        let org = &caller.organization_id;
        if let QuotaTake::Exhausted { retry_at } =
            self.quotas.take_quota(org, quota, caller.user_id.as_str(), now).await?
        {
            return Err(AppError::too_many_requests(
                ErrorCode::TooManyConnectStarts,
                format!(
                    "{} connects were started in {} minutes; finish one of them, or retry later",
                    quota.limit,
                    quota.window.num_minutes()
                ),
                retry_at,
                now,
            ));
        }
        let state = random_token(32);
        let pkce = Pkce::generate();
        let expires_at = now + OAUTH_STATE_TTL;
        let pending = OAuthState {
            state: state.clone(),
            organization_id: caller.organization_id.clone(),
            user_id: caller.user_id.clone(),
            pkce_verifier: self.sealer.seal(&pkce.verifier, &state_context(&state)),
            expires_at,
            scope,
        };
        self.states.put_oauth_state(&pending, now).await?;
        Ok(ConnectStart { authorize_url: self.calendly.authorize_url(&state, &pkce.challenge), state, expires_at })
    }

    /// Completes a connect: exchanges the code, stores the integration, mirrors the settings,
    /// makes sure the webhook subscription exists and queues the initial sync (a job: the
    /// answer never waits for it, whatever the account's size).
    pub async fn complete_connect(&self, code: &str, state: &str, caller: &Caller) -> Result<ConnectOutcome, AppError> {
        let now = self.clock.now();
        let pending = self.take_state(state, caller, now).await?;
        let org = pending.organization_id.clone();
        let session = self.calendly.session(MANUAL_RATE_LIMIT_BUDGET);
        let tokens = self.exchange_code(&session, &pending, code).await?;
        let access = tokens.access_token.clone();
        let user = session
            .call(|api| {
                let a = access.clone();
                async move { api.current_user(&a).await }
            })
            .await?;
        let (coverage, members, scope_error) = self.claim_coverage(&session, &pending, &user, &tokens, now).await?;
        let previous = self.integrations.get_integration(&org).await?;
        self.release_previous(previous.as_ref(), &user, coverage).await?;
        let grant = Grant { pending: &pending, user: &user, tokens: &tokens, coverage, members, now };
        let integration =
            self.integrations.save_connected_integration(self.sealed_integration(grant, previous)).await?;
        self.settings.merge_calendly_settings(&org, &connected_mirror(&user, &integration)).await?;
        let sync = self.start_feeding(&integration).await;
        tracing::info!(organization_id = %org, integration_id = %integration.id, "Calendly connected");
        Ok(ConnectOutcome {
            connected: true,
            organization_id: org,
            email: user.email,
            name: user.name,
            user_uri: user.uri,
            sync,
            coverage,
            scope_error,
        })
    }

    /// The tokens of `code`, with the pending connect's PKCE verifier. Checked before anything
    /// is claimed: a grant without what the connect needs is given back to Calendly at once.
    async fn exchange_code(
        &self,
        session: &CalendlySession,
        pending: &OAuthState,
        code: &str,
    ) -> Result<TokenResponse, AppError> {
        let verifier = self
            .sealer
            .open(&pending.pkce_verifier, &state_context(&pending.state))
            .map_err(|e| AppError::Internal(Box::new(e)))?;
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
        let granted = GrantedScopes::parse(tokens.scope.as_deref());
        if let Some(missing) = required_scopes(pending.scope).into_iter().find(|s| !granted.allows(*s)) {
            tracing::warn!(organization_id = %pending.organization_id, scope = missing.as_str(), "Calendly granted the connect without a scope it needs");
            self.calendly.give_back(session, &tokens).await;
            return Err(AppError::scope_missing(missing));
        }
        Ok(tokens)
    }

    /// Claims the Calendly account (and in organization scope its organization) for the
    /// organization, and reads whose bookings the integration brings. Nothing half-done stays
    /// behind a failure: the claims are released and the tokens given back.
    async fn claim_coverage(
        &self,
        session: &CalendlySession,
        pending: &OAuthState,
        user: &CalendlyUser,
        tokens: &TokenResponse,
        now: DateTime<Utc>,
    ) -> Result<Coverage, AppError> {
        let org = &pending.organization_id;
        self.claim_account_or_give_back(session, &user.uri, org, tokens, now).await?;
        let coverage = match pending.scope {
            CalendlyScope::User => Ok((CalendlyScope::User, None, None)),
            CalendlyScope::Organization => {
                let (token, org_uri) = (&tokens.access_token, &user.current_organization);
                self.calendly.organization_coverage(session, token, org_uri, &user.uri).await
            }
        };
        let coverage = match coverage {
            Ok(coverage) => coverage,
            Err(e) => {
                self.integrations.release_calendly_user(&user.uri, org).await?;
                self.calendly.give_back(session, tokens).await;
                return Err(e);
            }
        };
        // One Calendly organization feeds at most one organization in organization scope.
        if coverage.0 == CalendlyScope::Organization {
            let conflict = AppError::organization_in_use();
            let org_uri = &user.current_organization;
            if let Err(e) = self.claim_or_give_back(session, org_uri, org, tokens, now, conflict).await {
                self.integrations.release_calendly_user(&user.uri, org).await?;
                return Err(e);
            }
        }
        Ok(coverage)
    }

    /// What a reconnect leaves behind: another Calendly user's claim and subscription, and an
    /// organization-scope claim the new coverage no longer holds.
    async fn release_previous(
        &self,
        previous: Option<&Integration>,
        user: &CalendlyUser,
        coverage: CalendlyScope,
    ) -> Result<(), AppError> {
        let Some(old) = previous else { return Ok(()) };
        if old.calendly_user_uri != user.uri {
            self.forget_previous_user(old).await?;
        }
        let same_organization =
            coverage == CalendlyScope::Organization && old.calendly_organization_uri == user.current_organization;
        if old.coverage == CalendlyScope::Organization && !same_organization {
            self.integrations.release_calendly_user(&old.calendly_organization_uri, &old.organization_id).await?;
        }
        Ok(())
    }

    /// The integration of a completed connect, its tokens sealed. A reconnect keeps the
    /// organization's choices (and its subscription, same user only).
    fn sealed_integration(&self, grant: Grant<'_>, previous: Option<Integration>) -> Integration {
        let Grant { pending, user, tokens, coverage, members, now } = grant;
        let account = ConnectedAccount {
            id: previous.as_ref().map(|p| p.id.clone()).unwrap_or_else(IntegrationId::generate),
            organization_id: pending.organization_id.clone(),
            connected_by: pending.user_id.clone(),
            calendly_user_uri: user.uri.clone(),
            calendly_organization_uri: user.current_organization.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            scheduling_url: user.scheduling_url.clone(),
        };
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
            // The organization's privacy policy outlives a reconnect.
            retention_days: previous.as_ref().and_then(|p| p.retention_days),
            // So does how bookings fill its prospects.
            crm: previous.as_ref().map(|p| p.crm.clone()).unwrap_or_default(),
            coverage,
            members_covered: members.as_ref().map(|m: &Vec<String>| u32::try_from(m.len()).unwrap_or(u32::MAX)),
            members_read_at: members.as_ref().map(|_| now),
            member_emails: members.unwrap_or_default(),
            ..Integration::connected(account, tokens.expires_at(now), now)
        };
        integration.access_token =
            self.sealer.seal(&tokens.access_token, &seal_context(&integration, SealPurpose::AccessToken));
        integration.refresh_token =
            self.sealer.seal(&tokens.refresh_token, &seal_context(&integration, SealPurpose::RefreshToken));
        integration
    }

    /// The webhook subscription, then the initial sync job. Neither failing fails the connect:
    /// the schedule polls without webhooks, and `next_sync_at` is now, so if the job can't be
    /// queued the next scheduled tick runs one. The job, as recorded (failed, with why).
    async fn start_feeding(&self, integration: &Integration) -> Option<SyncJob> {
        let org = &integration.organization_id;
        if let Err(e) = self.subscriptions.ensure_webhook(integration).await {
            tracing::warn!(organization_id = %org, error = %e, "could not subscribe to Calendly webhooks; the scheduled sync still runs");
        }
        match self.jobs.queue_sync(integration, SyncTrigger::Initial).await {
            Ok(queued) => Some(queued.job),
            Err(e) => {
                tracing::warn!(organization_id = %org, error = %e, "initial sync not queued; the scheduled sync will run it");
                self.jobs.current_sync(org).await.ok().flatten()
            }
        }
    }

    /// The pending connect of `state`, consumed. Bound to who started it (RFC 6749 §10.12):
    /// the same organization *and* user, checked before the state is consumed, so nobody
    /// else's attempt can burn it.
    async fn take_state(
        &self,
        state: &str,
        caller: &Caller,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<OAuthState, AppError> {
        match self.states.take_oauth_state(state, &caller.organization_id, &caller.user_id, now).await? {
            StateTake::Taken(pending) => Ok(pending),
            StateTake::Absent => {
                Err(AppError::bad_request(ErrorCode::InvalidState, "unknown, expired or already used OAuth state"))
            }
            StateTake::NotYours => {
                tracing::warn!(organization_id = %caller.organization_id, "OAuth state of another user or organization presented");
                Err(AppError::bad_request(
                    ErrorCode::InvalidState,
                    "this connect was started by another user or organization",
                ))
            }
        }
    }

    /// One Calendly account feeds one organization: claims it for `org`, or gives the tokens
    /// just obtained back to Calendly and answers 409 when another organization holds it.
    async fn claim_account_or_give_back(
        &self,
        session: &CalendlySession,
        user_uri: &str,
        org: &OrganizationId,
        tokens: &TokenResponse,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AppError> {
        let conflict = AppError::Conflict {
            code: ErrorCode::CalendlyAccountInUse,
            message: "this Calendly account is connected to another organization; disconnect it there first".into(),
        };
        self.claim_or_give_back(session, user_uri, org, tokens, now, conflict).await
    }

    /// Claims `uri` (a Calendly user, or a Calendly organization in organization scope) for
    /// `org`; when another organization holds it, gives the tokens back and fails with `conflict`.
    pub(super) async fn claim_or_give_back(
        &self,
        session: &CalendlySession,
        uri: &str,
        org: &OrganizationId,
        tokens: &TokenResponse,
        now: chrono::DateTime<chrono::Utc>,
        conflict: AppError,
    ) -> Result<(), AppError> {
        if !self.integrations.claim_calendly_user(uri, org, now).await? {
            self.calendly.give_back(session, tokens).await;
            tracing::warn!(organization_id = %org, %uri, "Calendly account or organization already connected to another organization");
            return Err(conflict);
        }
        Ok(())
    }

    /// A reconnect with another Calendly user: the previous user's claim is released and its
    /// subscription, which would go on delivering its bookings, deleted with its own token
    /// while that is still stored (bounded, best-effort; a leftover is replaced when the new
    /// user's subscription meets it as a 409).
    async fn forget_previous_user(&self, old: &Integration) -> Result<(), AppError> {
        let org = &old.organization_id;
        self.integrations.release_calendly_user(&old.calendly_user_uri, org).await?;
        // The previous Calendly user's subscription would go on delivering its bookings:
        // deleted with its own token while that is still stored (bounded, best-effort; a
        // leftover is replaced when the new user's subscription meets it as a 409).
        if let (true, Some(uri)) = (old.is_active, old.webhook_subscription_uri.clone()) {
            let cleanup = async {
                let session = self.calendly.session(std::time::Duration::ZERO);
                let token = self.calendly.access_token(&session, old).await?;
                self.calendly.delete_subscription(&session, &token, &uri).await.map_err(AppError::from)
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
        Ok(())
    }

    /// Disconnects: revokes at Calendly, deletes the subscription, soft-deletes the
    /// integration and mirrors the settings. Idempotent; prospects stay.
    pub async fn disconnect(&self, org: &OrganizationId) -> Result<(), AppError> {
        let Some(integration) = self.integrations.get_integration(org).await?.filter(|i| i.is_active) else {
            return Ok(());
        };
        // Disconnected first, here: whatever Calendly does next (down, hanging, refusing),
        // the user is disconnected and nothing more is synced.
        self.integrations.deactivate_integration(org, self.clock.now()).await?;
        self.integrations.release_calendly_user(&integration.calendly_user_uri, org).await?;
        if integration.coverage == CalendlyScope::Organization {
            self.integrations.release_calendly_user(&integration.calendly_organization_uri, org).await?;
        }
        let mut mirror = Map::new();
        mirror.insert("enabled".into(), json!(false));
        mirror.insert("oauth_connected".into(), json!(false));
        self.settings.merge_calendly_settings(org, &mirror).await?;
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
        let session = self.calendly.session(std::time::Duration::ZERO);
        if let Ok(token) = self.calendly.access_token(&session, integration).await {
            if let Some(uri) = &integration.webhook_subscription_uri
                && let Err(e) = self.calendly.delete_subscription(&session, &token, uri).await
            {
                tracing::warn!(organization_id = %org, error = %e, "could not delete the Calendly webhook subscription");
            }
            if let Err(e) = self.calendly.revoke(&session, &token).await {
                tracing::warn!(organization_id = %org, error = %e, "could not revoke the Calendly token");
            }
        }
        if let Ok(refresh) =
            self.sealer.open(&integration.refresh_token, &seal_context(integration, SealPurpose::RefreshToken))
        {
            let _ = self.calendly.revoke(&session, &refresh).await;
        }
    }
}

/// The scopes a connect can't complete without: the core ones, and `organizations:read` for
/// organization scope.
fn required_scopes(scope: CalendlyScope) -> Vec<Scope> {
    let mut required: Vec<Scope> = Scope::ALL.into_iter().filter(|s| s.is_core()).collect();
    if scope == CalendlyScope::Organization {
        required.push(Scope::OrganizationsRead);
    }
    required
}

fn state_context(state: &str) -> String {
    format!("oauth-state|{state}")
}

/// `Organization.settings.calendly` of a connected integration.
fn connected_mirror(user: &CalendlyUser, integration: &Integration) -> Map<String, serde_json::Value> {
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
    mirror
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ErrorCode;
    use crate::app::JobPorts;
    use crate::app::fakes::{CalendlyDown, RecordingPusher, RecordingQueue};
    use crate::clock::SystemClock;
    use crate::domain::{SyncWindow, UserId};
    use crate::engine::tokens::TokenKeeper;
    use crate::store::MemoryStore;

    fn connecting(store: &Arc<MemoryStore>, clock: &Arc<SystemClock>) -> Connecting {
        let sealer = Sealer::from_hex_key(&"ef".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        let access =
            CalendlyAccess::new(Arc::new(CalendlyDown), TokenKeeper::new(store.clone(), sealer.clone(), clock.clone()));
        let subscriptions = Subscriptions::new(access.clone(), store.clone(), "https://hooks.test".into());
        let (queue, pusher) = (Arc::new(RecordingQueue::default()), Arc::new(RecordingPusher::default()));
        let window = SyncWindow { days_past: 30, days_ahead: 90 };
        let jobs = Jobs::new(
            JobPorts { integrations: store.clone(), jobs: store.clone(), queue, pusher, clock: clock.clone() },
            window,
            chrono::Duration::zero(),
        );
        let ports = ConnectingPorts {
            states: store.clone(),
            quotas: store.clone(),
            integrations: store.clone(),
            settings: store.clone(),
            clock: clock.clone(),
        };
        Connecting::new(ports, access, sealer, subscriptions, jobs)
    }

    fn caller(user: &str) -> Caller {
        Caller {
            user_id: UserId::new(user),
            organization_id: OrganizationId::new("org-c"),
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn connect_starts_are_bound_to_their_user_and_limited_per_user() {
        let (store, clock) = (Arc::new(MemoryStore::new()), Arc::new(SystemClock::default()));
        let connecting = connecting(&store, &clock);
        let ada = caller("ada");
        let start = connecting.start_connect(&ada, CalendlyScope::User).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(start.authorize_url.contains(&start.state) && start.authorize_url.contains("code_challenge="));
        // Another user of the same organization can't complete Ada's connect (nor burn it).
        let stolen = connecting.complete_connect("code", &start.state, &caller("grace")).await;
        assert!(matches!(stolen, Err(AppError::BadRequest { code: ErrorCode::InvalidState, .. })), "{stolen:?}");
        for _ in 1..CONNECT_STARTS.limit {
            assert!(connecting.start_connect(&ada, CalendlyScope::User).await.is_ok());
        }
        let limited = connecting.start_connect(&ada, CalendlyScope::User).await;
        assert!(
            matches!(limited, Err(AppError::TooManyRequests { code: ErrorCode::TooManyConnectStarts, .. })),
            "{limited:?}"
        );
        assert!(connecting.start_connect(&caller("grace"), CalendlyScope::User).await.is_ok(), "the limit is per user");
        // Ada's state is still hers: Calendly being down is what stops her now, told as such.
        let completed = connecting.complete_connect("code", &start.state, &ada).await;
        assert!(matches!(completed, Err(AppError::CalendlyUnavailable(_))), "{completed:?}");
    }
}
