//! The webhook subscription of an integration: one per integration URL, created, repaired and
//! deleted at Calendly.

use crate::app::{AppError, MANUAL_RATE_LIMIT_BUDGET, Services};
use crate::calendly::{CalendlyError, NewWebhookSubscription, WEBHOOK_EVENTS};
use crate::domain::Integration;

/// What checking an integration's webhook subscription did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookCheck {
    /// An active subscription to our URL was there and kept.
    Kept,
    /// None was delivering (missing or disabled): one was created.
    Created,
}

impl Services {
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
        // Organization scope: one organization-wide subscription, listed with the organization's.
        let organization_wide = integration.coverage == crate::domain::CalendlyScope::Organization;
        let existing = session
            .call(|api| {
                let (t, o, u) = (token.clone(), org_uri.clone(), user_uri.clone());
                async move { api.list_webhook_subscriptions(&t, &o, (!organization_wide).then_some(u.as_str())).await }
            })
            .await?;
        let wanted_scope = if organization_wide { "organization" } else { "user" };
        let ours = existing.into_iter().find(|s| s.callback_url == url);
        if let Some(current) = &ours {
            let right_scope = current.scope.as_deref().unwrap_or("user") == wanted_scope;
            if current.is_active() && covers_webhook_events(&current.events) && right_scope {
                self.store.set_webhook(org, Some(current.uri.clone()), true, None).await?;
                return Ok(WebhookCheck::Kept);
            }
            tracing::warn!(organization_id = %org, state = %current.state, right_scope, "webhook subscription is not delivering, or not for this scope; replacing it");
            self.delete_subscription(&session, &token, &current.uri).await?;
        }
        let request =
            NewWebhookSubscription { url: url.clone(), organization_uri: org_uri.clone(), user_uri, organization_wide };
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
                        if (organization_wide
                            || holder.user.as_deref() == Some(integration.calendly_user_uri.as_str()))
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

    pub(super) async fn delete_subscription(
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
}

/// Whether a subscription delivers every event the product uses.
fn covers_webhook_events(events: &[String]) -> bool {
    WEBHOOK_EVENTS.iter().all(|e| events.iter().any(|x| x == e))
}
