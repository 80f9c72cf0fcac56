//! Access tokens, refreshed ahead of expiry, single-flight per integration.
//!
//! Calendly refresh tokens are single-use, so two Lambdas refreshing at once would kill the
//! integration. The store arbitrates: whoever takes the lease refreshes and stores the new
//! pair with a `token_version` compare-and-swap; everyone else waits and re-reads.

use crate::calendly::{CalendlyError, CalendlySession};
use crate::clock::Clock;
use crate::crypto::{SealError, Sealer};
use crate::domain::Integration;
use crate::store::{IntegrationStore, StoreError, TokenUpdate};
use chrono::Duration;
use std::sync::Arc;

/// Refresh this long before the access token expires.
const REFRESH_AHEAD: Duration = Duration::minutes(5);
/// A refresh that takes longer than this is presumed dead and its lease can be taken over.
const LEASE: Duration = Duration::seconds(30);
/// How long a loser waits for the winner's new pair.
const WAIT_FOR_REFRESH: std::time::Duration = std::time::Duration::from_secs(20);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No active integration.
    #[error("the Calendly integration is not connected")]
    NotConnected,
    /// Calendly refused the refresh token for good.
    #[error("the Calendly integration must be reconnected")]
    NeedsReconnect,
    /// Another refresh held the lease and never stored a new pair.
    #[error("another refresh of this integration did not finish in time")]
    RefreshTimedOut,
    /// Calendly failed the refresh (transiently).
    #[error(transparent)]
    Calendly(#[from] CalendlyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored token does not open (wrong key, or altered).
    #[error("stored token does not open: {0}")]
    Seal(#[from] SealError),
}

/// Which of an integration's secrets a sealed value is: bound into the seal, so one can't be
/// opened as the other, nor as another integration's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealPurpose {
    /// The OAuth access token.
    AccessToken,
    /// The OAuth refresh token.
    RefreshToken,
}

impl SealPurpose {
    /// The word in the sealing context (stored seals depend on it: never change it).
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access",
            Self::RefreshToken => "refresh",
        }
    }
}

/// The sealing context of one of an integration's secrets.
pub fn seal_context(integration: &Integration, purpose: SealPurpose) -> String {
    format!("{}|{}|{}", integration.organization_id, integration.id, purpose.as_str())
}

/// Told once when an integration's Calendly access is lost for good (the user removed the
/// app in Calendly, or revoked it): the organization must hear of it, not find out later.
#[async_trait::async_trait]
pub trait AccessLostAlarm: Send + Sync {
    /// `integration` was just marked as needing reconnection (by this caller only).
    async fn raise(&self, integration: &Integration);
}

/// Hands out valid access tokens.
#[derive(Clone)]
pub struct TokenKeeper {
    integrations: Arc<dyn IntegrationStore>,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    alarm: Option<Arc<dyn AccessLostAlarm>>,
}

impl TokenKeeper {
    /// Now, by the keeper's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// A keeper over the integration store.
    pub fn new(integrations: Arc<dyn IntegrationStore>, sealer: Sealer, clock: Arc<dyn Clock>) -> Self {
        Self { integrations, sealer, clock, alarm: None }
    }

    /// The same keeper, raising `alarm` when a grant is found revoked.
    pub fn with_alarm(self, alarm: Arc<dyn AccessLostAlarm>) -> Self {
        Self { alarm: Some(alarm), ..self }
    }

    /// Marks the integration as needing reconnection if its tokens are still `token_version`;
    /// the one caller that marks it raises the alarm (so it is raised once per lost grant).
    pub async fn access_lost(&self, integration: &Integration, token_version: u64) -> Result<(), StoreError> {
        let org = &integration.organization_id;
        if self.integrations.mark_needs_reconnect(org, token_version).await? {
            tracing::warn!(organization_id = %org, "Calendly access lost; the integration needs reconnecting");
            if let Some(alarm) = &self.alarm {
                alarm.raise(integration).await;
            }
        }
        Ok(())
    }

    /// A valid access token and the token version it belongs to.
    pub async fn access_token(
        &self,
        session: &CalendlySession,
        integration: &Integration,
    ) -> Result<(String, u64), TokenError> {
        self.token_newer_than(session, integration, None).await
    }

    /// A token newer than `rejected_version` (Calendly answered 401 to that one).
    pub async fn replace_rejected(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        rejected_version: u64,
    ) -> Result<(String, u64), TokenError> {
        self.token_newer_than(session, integration, Some(rejected_version)).await
    }

    async fn token_newer_than(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        rejected: Option<u64>,
    ) -> Result<(String, u64), TokenError> {
        let org = &integration.organization_id;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_REFRESH;
        let mut current = integration.clone();
        loop {
            if !current.is_active {
                return Err(TokenError::NotConnected);
            }
            if current.needs_reconnect {
                return Err(TokenError::NeedsReconnect);
            }
            let now = self.clock.now();
            let usable = current.expires_at > now + REFRESH_AHEAD && rejected.is_none_or(|r| current.token_version > r);
            if usable {
                let token =
                    self.sealer.open(&current.access_token, &seal_context(&current, SealPurpose::AccessToken))?;
                return Ok((token, current.token_version));
            }
            let version = current.token_version;
            if self.integrations.try_acquire_refresh_lease(org, version, now, now + LEASE).await? {
                return self.refresh_holding_lease(session, &current).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TokenError::RefreshTimedOut);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            current = self.integrations.get_integration(org).await?.ok_or(TokenError::NotConnected)?;
        }
    }

    async fn refresh_holding_lease(
        &self,
        session: &CalendlySession,
        current: &Integration,
    ) -> Result<(String, u64), TokenError> {
        let org = &current.organization_id;
        let version = current.token_version;
        let refresh_token =
            self.sealer.open(&current.refresh_token, &seal_context(current, SealPurpose::RefreshToken))?;
        match session
            .call(|api| {
                let rt = refresh_token.clone();
                async move { api.refresh(&rt).await }
            })
            .await
        {
            Ok(tokens) => {
                let update = TokenUpdate {
                    access_token: self
                        .sealer
                        .seal(&tokens.access_token, &seal_context(current, SealPurpose::AccessToken)),
                    refresh_token: self
                        .sealer
                        .seal(&tokens.refresh_token, &seal_context(current, SealPurpose::RefreshToken)),
                    expires_at: tokens.expires_at(self.clock.now()),
                };
                crate::telemetry::metrics::count(
                    crate::telemetry::metrics::Metric::TokenRefreshes,
                    Some("succeeded"),
                    1,
                );
                if self.integrations.store_refreshed_tokens(org, version, update).await? {
                    tracing::info!(organization_id = %org, token_version = version + 1, "Calendly tokens refreshed");
                    Ok((tokens.access_token, version + 1))
                } else {
                    // The integration was reconnected while we refreshed: its new tokens win.
                    Err(TokenError::NotConnected)
                }
            }
            Err(e) if e.is_invalid_grant() => {
                crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::TokenRefreshes, Some("failed"), 1);
                tracing::warn!(organization_id = %org, "Calendly refused the refresh token (grant revoked or spent)");
                self.access_lost(current, version).await?;
                Err(TokenError::NeedsReconnect)
            }
            Err(e) => {
                crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::TokenRefreshes, Some("failed"), 1);
                self.integrations.release_refresh_lease(org, version).await?;
                Err(e.into())
            }
        }
    }
}
