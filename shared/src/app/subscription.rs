//! The webhook subscription of an integration: one per integration URL, created, repaired and
//! deleted at Calendly.

use crate::app::{AppError, CalendlyAccess, MANUAL_RATE_LIMIT_BUDGET};
use crate::calendly::{
    CalendlyError, CalendlySession, GrantedScopes, NewWebhookSubscription, ROUTING_FORM_EVENT, Scope, WEBHOOK_EVENTS,
    WebhookSubscription,
};
use crate::domain::{CalendlyScope, Integration};
use crate::store::IntegrationStore;
use std::sync::Arc;

/// What checking an integration's webhook subscription did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookCheck {
    /// An active subscription to our URL was there and kept.
    Kept,
    /// None was delivering (missing or disabled): one was created.
    Created,
}

/// The integrations' webhook subscriptions at Calendly: Calendly, the integration items (the
/// subscription's URI and health are recorded there) and our public base URL.
#[derive(Clone)]
pub struct Subscriptions {
    calendly: CalendlyAccess,
    integrations: Arc<dyn IntegrationStore>,
    webhook_base_url: String,
}

impl Subscriptions {
    /// Subscriptions delivering to `webhook_base_url`.
    pub fn new(calendly: CalendlyAccess, integrations: Arc<dyn IntegrationStore>, webhook_base_url: String) -> Self {
        Self { calendly, integrations, webhook_base_url }
    }

    /// The webhook URL of an integration: one URL per integration, so Calendly's
    /// one-subscription-per-URL rule keeps reconnects from creating a second one.
    pub fn webhook_url(&self, integration: &Integration) -> String {
        format!("{}/calendly/webhook/{}", self.webhook_base_url, integration.id)
    }

    /// Makes sure an active subscription delivers to this integration's URL, in the
    /// integration's scope: keeps a working one, deletes the others at our URL (disabled, or of
    /// the other scope: a scope change leaves one behind), creates a missing one.
    pub async fn ensure_webhook(&self, integration: &Integration) -> Result<WebhookCheck, AppError> {
        let org = &integration.organization_id;
        let session = self.calendly.session(MANUAL_RATE_LIMIT_BUDGET);
        let token = self.calendly.access_token(&session, integration).await?;
        let url = self.webhook_url(integration);
        let organization_wide = integration.coverage == CalendlyScope::Organization;
        let wanted_scope = if organization_wide { "organization" } else { "user" };
        let at_our_url = self.subscriptions_at(&session, &token, integration, &url).await?;
        let events = webhook_events(integration);
        let (keep, stale): (Vec<_>, Vec<_>) = at_our_url.into_iter().partition(|s| {
            s.is_active() && covers(&s.events, &events) && s.scope.as_deref().unwrap_or("user") == wanted_scope
        });
        for old in &stale {
            tracing::warn!(organization_id = %org, state = %old.state, "webhook subscription at our URL not delivering, or of the other scope; deleting it");
            self.calendly.delete_subscription(&session, &token, &old.uri).await?;
        }
        if let Some(current) = keep.first() {
            let since = current.created_at.unwrap_or_else(|| self.calendly.now());
            // Recorded as it is already (every scheduled sync checks): nothing to read or write.
            let changes = integration.clone().set_webhook(Some(current.uri.clone()), true, None, since);
            if changes {
                self.integrations.set_webhook(org, Some(current.uri.clone()), true, None, since).await?;
            }
            return Ok(WebhookCheck::Kept);
        }
        let request = NewWebhookSubscription {
            url,
            organization_uri: integration.calendly_organization_uri.clone(),
            user_uri: integration.calendly_user_uri.clone(),
            organization_wide,
            events,
        };
        let created = session
            .call(|api| {
                let (t, r) = (token.clone(), request.clone());
                async move { api.create_webhook_subscription(&t, &r).await }
            })
            .await;
        match created {
            Ok(created) => {
                let since = created.created_at.unwrap_or_else(|| self.calendly.now());
                let active = created.state == "active";
                self.integrations.set_webhook(org, Some(created.uri), active, None, since).await?;
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
                self.integrations.set_webhook(org, None, false, Some(reason), self.calendly.now()).await?;
                Err(e.into())
            }
        }
    }

    /// The subscriptions delivering to `url` that this user could have made: their own
    /// (`scope=user`), and the organization's (`scope=organization`; owners and admins only,
    /// so a member's 403 there means none of theirs).
    async fn subscriptions_at(
        &self,
        session: &CalendlySession,
        token: &str,
        integration: &Integration,
        url: &str,
    ) -> Result<Vec<WebhookSubscription>, CalendlyError> {
        let list = |user: Option<String>| {
            let (t, o) = (token.to_string(), integration.calendly_organization_uri.clone());
            session.all_pages("webhook subscriptions", move |api, page| {
                let (t, o, u) = (t.clone(), o.clone(), user.clone());
                async move { api.list_webhook_subscriptions(&t, &o, u.as_deref(), page.as_deref()).await }
            })
        };
        let mut found = list(Some(integration.calendly_user_uri.clone())).await?;
        match list(None).await {
            Ok(organization) => found.extend(organization),
            Err(CalendlyError::Forbidden(_)) => {}
            Err(e) => return Err(e),
        }
        found.retain(|s| s.callback_url == url);
        Ok(found)
    }
}

/// The events an integration's subscription asks for: the bookings' always, routing form
/// submissions in organization scope when the grant says routing forms may be read (Calendly
/// refuses a family's events without its read scope).
pub fn webhook_events(integration: &Integration) -> Vec<&'static str> {
    let mut events = WEBHOOK_EVENTS.to_vec();
    if takes_routing_forms(integration) {
        events.push(ROUTING_FORM_EVENT);
    }
    events
}

/// Whether routing form submissions are read for this integration: organization scope, and
/// `routing_forms:read` granted.
pub fn takes_routing_forms(integration: &Integration) -> bool {
    integration.coverage == CalendlyScope::Organization
        && GrantedScopes::parse(integration.scope.as_deref()).says_granted(Scope::RoutingFormsRead)
}

/// Whether a subscription delivers every event in `wanted`.
fn covers(events: &[String], wanted: &[&str]) -> bool {
    wanted.iter().all(|e| events.iter().any(|x| x == e))
}
