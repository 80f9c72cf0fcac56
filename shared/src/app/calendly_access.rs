//! Calendly on behalf of a connected integration, for the use cases that call it inside a
//! request or a job step (connect, subscription, settings, the worker's member refresh): the
//! API and the token keeper, nothing else. The sync engine has its own (it paces whole runs).

use crate::app::AppError;
use crate::calendly::{CalendlyApi, CalendlyError, CalendlySession, OrganizationMembership, Scope, TokenResponse};
use crate::domain::{CalendlyScope, Integration};
use crate::engine::tokens::TokenKeeper;
use std::sync::Arc;
use std::time::Duration;

/// Whose bookings an integration can bring: the scope, the members' e-mails in organization
/// scope, and why organization scope was refused.
pub type Coverage = (CalendlyScope, Option<Vec<String>>, Option<String>);

/// The Calendly API and the keeper of the integrations' tokens.
#[derive(Clone)]
pub struct CalendlyAccess {
    api: Arc<dyn CalendlyApi>,
    tokens: TokenKeeper,
}

impl CalendlyAccess {
    /// Calendly through `api`, with tokens from `tokens`.
    pub fn new(api: Arc<dyn CalendlyApi>, tokens: TokenKeeper) -> Self {
        Self { api, tokens }
    }

    /// Now, by the clock the tokens expire by.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.tokens.now()
    }

    /// A session that may wait up to `rate_limit_budget` for a rate-limit reset.
    pub fn session(&self, rate_limit_budget: Duration) -> CalendlySession {
        CalendlySession::new(self.api.clone(), rate_limit_budget)
    }

    /// Calendly's authorization page for a started connect.
    pub fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        self.api.authorize_url(state, code_challenge)
    }

    /// A valid access token of `integration` (refreshed single-flight when it is due).
    pub async fn access_token(&self, session: &CalendlySession, integration: &Integration) -> Result<String, AppError> {
        Ok(self.tokens.access_token(session, integration).await?.0)
    }

    /// Organization scope for an owner or admin of the Calendly organization (with its
    /// members' e-mails); user scope, and why, for anyone else (Calendly answers them 403).
    pub async fn organization_coverage(
        &self,
        session: &CalendlySession,
        token: &str,
        organization_uri: &str,
        user_uri: &str,
    ) -> Result<Coverage, AppError> {
        let memberships = |user: Option<String>| {
            let (t, o) = (token.to_string(), organization_uri.to_string());
            session.all_pages("organization memberships", move |api, page| {
                let (t, o, u) = (t.clone(), o.clone(), user.clone());
                async move { api.organization_memberships(&t, &o, u.as_deref(), page.as_deref()).await }
            })
        };
        let mine = memberships(Some(user_uri.to_string())).await.map_err(scope_refusal)?;
        if !mine.iter().any(|m| m.manages_organization()) {
            let role = mine.first().map_or("none", |m| m.role.as_str()).to_string();
            tracing::info!(%role, "organization scope refused: not an owner or admin of the Calendly organization");
            return Ok((
                CalendlyScope::User,
                None,
                Some(format!(
                    "Calendly gives organization scope to owners and admins only (your role: {role}); connected with your own bookings"
                )),
            ));
        }
        let members = memberships(None).await.map_err(scope_refusal)?;
        Ok((CalendlyScope::Organization, Some(member_emails(members)), None))
    }

    /// Deletes one webhook subscription.
    pub async fn delete_subscription(
        &self,
        session: &CalendlySession,
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

    /// Revokes one token; failures are the caller's to log or ignore.
    pub async fn revoke(&self, session: &CalendlySession, token: &str) -> Result<(), CalendlyError> {
        session
            .call(|api| {
                let t = token.to_string();
                async move { api.revoke(&t).await }
            })
            .await
    }

    /// Revokes both tokens of a grant that won't be kept (best-effort: they expire anyway).
    pub async fn give_back(&self, session: &CalendlySession, tokens: &TokenResponse) {
        for token in [&tokens.access_token, &tokens.refresh_token] {
            let _ = self.revoke(session, token).await;
        }
    }
}

/// A 403 on the memberships is a scope Calendly did not grant after all (the token response
/// may not say): named like a missing scope, not passed on as Calendly's refusal.
fn scope_refusal(e: CalendlyError) -> AppError {
    match e {
        CalendlyError::Forbidden(_) => AppError::scope_missing(Scope::OrganizationsRead),
        other => other.into(),
    }
}

/// The e-mails of an organization's members (never prospects), normalized as prospects are.
fn member_emails(members: Vec<OrganizationMembership>) -> Vec<String> {
    members.into_iter().filter_map(|m| m.user.email).collect()
}
