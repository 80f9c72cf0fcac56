//! The connection's status and its settings (auto-sync, interval, booking filter).

use crate::app::{AppError, MANUAL_RATE_LIMIT_BUDGET, Services};
use crate::calendly::{EventTypeOwner, GrantedScopes, Scope};
use crate::domain::CalendlyScope;
use crate::domain::{Integration, OrganizationId, SYNC_INTERVAL_RANGE, SyncJob};
use chrono::Duration;

/// The connection as the settings page shows it: the active integration, if any, and the
/// latest sync job.
#[derive(Clone, Debug)]
pub struct ConnectionStatus {
    /// The active integration (`None`: not connected).
    pub integration: Option<Integration>,
    /// The organization's latest sync job.
    pub sync: Option<SyncJob>,
}

/// One of the connected user's event types, and whether the booking filter takes it.
#[derive(Clone, Debug)]
pub struct EventTypeChoice {
    /// The event type as Calendly lists it.
    pub event_type: crate::calendly::EventType,
    /// Whether its bookings become prospects.
    pub selected: bool,
}

impl Services {
    /// The connection's state, as the settings page shows it, with the latest sync job.
    pub async fn status(&self, org: &OrganizationId) -> Result<ConnectionStatus, AppError> {
        // Two independent items: read at once (the settings page waits on one round trip).
        let (sync, integration) = tokio::try_join!(self.store.get_sync_job(org), self.store.get_integration(org))?;
        Ok(ConnectionStatus { integration: integration.filter(|i| i.is_active), sync })
    }

    /// The event types the filter can pick from: the connected user's, or in organization
    /// scope every member's (each with its host). Without `event_types:read` granted this is a
    /// named 403, not Calendly's.
    pub async fn event_types(&self, org: &OrganizationId) -> Result<Vec<EventTypeChoice>, AppError> {
        let integration = self.active_integration(org).await?;
        if !GrantedScopes::parse(integration.scope.as_deref()).allows(Scope::EventTypesRead) {
            return Err(AppError::scope_missing(Scope::EventTypesRead));
        }
        let session = self.engine.session(MANUAL_RATE_LIMIT_BUDGET);
        let (token, _) = self.engine.tokens().access_token(&session, &integration).await?;
        let owner = match integration.coverage {
            CalendlyScope::User => EventTypeOwner::User(integration.calendly_user_uri.clone()),
            CalendlyScope::Organization => EventTypeOwner::Organization(integration.calendly_organization_uri.clone()),
        };
        let types = session
            .all_pages("event types", |api, page| {
                let (t, o) = (token.clone(), owner.clone());
                async move { api.list_event_types(&t, &o, page.as_deref()).await }
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
        // Due one (new) interval after the last sync ended, or from now when none has yet (the
        // initial job may still run: it schedules by the interval it finds when it ends).
        let since = integration.last_synced_at.unwrap_or_else(|| self.clock.now());
        let next = Some(since + Duration::minutes(i64::from(interval)));
        self.store.update_sync_settings(org, enabled, interval, next).await?;
        self.status(org).await
    }

    /// Changes whose bookings the integration brings. Organization scope needs the connecting
    /// user to be an owner or admin of the Calendly organization (403 otherwise, and the
    /// integration stays in user scope) and the organization not to be taken (409); the
    /// webhook subscription follows the scope.
    pub async fn change_scope(&self, org: &OrganizationId, scope: CalendlyScope) -> Result<(), AppError> {
        let integration = self.active_integration(org).await?;
        if integration.coverage == scope {
            return Ok(());
        }
        let org_uri = integration.calendly_organization_uri.clone();
        match scope {
            CalendlyScope::User => {
                self.store.set_coverage(org, CalendlyScope::User, Vec::new(), None).await?;
                self.store.release_calendly_user(&org_uri, org).await?;
            }
            CalendlyScope::Organization => {
                let session = self.engine.session(MANUAL_RATE_LIMIT_BUDGET);
                let (token, _) = self.engine.tokens().access_token(&session, &integration).await?;
                let (coverage, members, refusal) =
                    self.organization_coverage(&session, &token, &org_uri, &integration.calendly_user_uri).await?;
                if coverage != CalendlyScope::Organization {
                    return Err(AppError::Forbidden {
                        code: "calendly_scope_forbidden",
                        message: refusal.unwrap_or_else(|| "organization scope refused".into()),
                    });
                }
                if !self.store.claim_calendly_user(&org_uri, org, self.clock.now()).await? {
                    return Err(AppError::organization_in_use());
                }
                let read_at = Some(self.clock.now());
                self.store.set_coverage(org, CalendlyScope::Organization, members.unwrap_or_default(), read_at).await?;
            }
        }
        let updated = self.active_integration(org).await?;
        if let Err(e) = self.ensure_webhook(&updated).await {
            tracing::warn!(organization_id = %org, error = %e, "could not move the webhook subscription to the new scope; the scheduled sync still runs");
        }
        Ok(())
    }
}
