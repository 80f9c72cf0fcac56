//! The connection's status and its settings (auto-sync, interval, booking filter).

use crate::app::{AppError, CalendlyAccess, ErrorCode, MANUAL_RATE_LIMIT_BUDGET, Subscriptions, active_integration};
use crate::calendly::{EventType, EventTypeOwner, GrantedScopes, Scope};
use crate::clock::Clock;
use crate::domain::ledger::WebhookHealth;
use crate::domain::quota::{EVENT_TYPE_LISTINGS, QuotaTake, SCOPE_CHANGES};
use crate::domain::{
    BookingFilter, CalendlyScope, Integration, IntegrationId, OrganizationId, SYNC_INTERVAL_RANGE, SyncJob,
};
use crate::store::{DeliveryLedgerStore, IntegrationStore, QuotaStore, SyncJobStore};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// The connection as the settings page shows it: the active integration, if any, and the
/// latest sync job.
#[derive(Clone, Debug)]
pub struct ConnectionStatus {
    /// The active integration (`None`: not connected).
    pub integration: Option<Integration>,
    /// The organization's latest sync job.
    pub sync: Option<SyncJob>,
    /// Whether the webhook delivers (while connected).
    pub webhook_health: Option<WebhookHealth>,
}

/// One of the connected user's event types, and whether the booking filter takes it.
#[derive(Clone, Debug)]
pub struct EventTypeChoice {
    /// The event type as Calendly lists it.
    pub event_type: EventType,
    /// Whether its bookings become prospects.
    pub selected: bool,
}

/// How long Calendly's list of event types is reused: the settings page reads it on every
/// visit, and event types change rarely (a new one shows within this).
pub const EVENT_TYPES_FRESH: Duration = Duration::minutes(5);
/// Organizations whose event types one instance keeps (the oldest is dropped past this).
const EVENT_TYPES_CACHED_ORGANIZATIONS: usize = 256;

/// The event types last read from Calendly, per organization, in this instance. Shared
/// across instances is the quota (`EVENT_TYPE_LISTINGS`): past it, a stale copy is served,
/// or a 429 when this instance has none.
#[derive(Default)]
pub struct EventTypesCache {
    entries: std::sync::Mutex<std::collections::HashMap<OrganizationId, CachedEventTypes>>,
}

#[derive(Clone)]
struct CachedEventTypes {
    /// Whose list it is: the integration, its Calendly account and scope, and when it was
    /// connected (another account, a reconnect or a scope change is another list).
    source: ListSource,
    read_at: DateTime<Utc>,
    types: Vec<EventType>,
}

type ListSource = (IntegrationId, String, CalendlyScope, DateTime<Utc>);

fn list_source(integration: &Integration) -> ListSource {
    (integration.id.clone(), integration.calendly_user_uri.clone(), integration.coverage, integration.created_at)
}

impl EventTypesCache {
    fn get(&self, org: &OrganizationId, integration: &Integration) -> Option<CachedEventTypes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(org).filter(|c| c.source == list_source(integration)).cloned()
    }

    fn put(&self, org: &OrganizationId, entry: CachedEventTypes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= EVENT_TYPES_CACHED_ORGANIZATIONS && !entries.contains_key(org) {
            let oldest = entries.iter().min_by_key(|(_, c)| c.read_at).map(|(o, _)| o.clone());
            oldest.map(|o| entries.remove(&o));
        }
        entries.insert(org.clone(), entry);
    }
}

/// The connection's status and settings: the integration and job items, the event-type
/// listing quota and its per-instance cache, Calendly (event types, the role check of a scope
/// change), the subscription that follows the scope, and the clock.
#[derive(Clone)]
pub struct IntegrationSettings {
    integrations: Arc<dyn IntegrationStore>,
    jobs: Arc<dyn SyncJobStore>,
    quotas: Arc<dyn QuotaStore>,
    ledger: Arc<dyn DeliveryLedgerStore>,
    clock: Arc<dyn Clock>,
    calendly: CalendlyAccess,
    subscriptions: Subscriptions,
    event_types_cache: Arc<EventTypesCache>,
}

/// The items the settings read and write.
pub struct SettingsPorts {
    /// The integration items.
    pub integrations: Arc<dyn IntegrationStore>,
    /// The latest job, shown with the status.
    pub jobs: Arc<dyn SyncJobStore>,
    /// Event-type listings per organization.
    pub quotas: Arc<dyn QuotaStore>,
    /// The webhook delivery ledger, shown as the webhook's health.
    pub ledger: Arc<dyn DeliveryLedgerStore>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl IntegrationSettings {
    /// The settings over `ports`, with an empty event-type cache.
    pub fn new(ports: SettingsPorts, calendly: CalendlyAccess, subscriptions: Subscriptions) -> Self {
        let SettingsPorts { integrations, jobs, quotas, ledger, clock } = ports;
        Self { integrations, jobs, quotas, ledger, clock, calendly, subscriptions, event_types_cache: Arc::default() }
    }

    /// The connection's state, as the settings page shows it, with the latest sync job.
    pub async fn status(&self, org: &OrganizationId) -> Result<ConnectionStatus, AppError> {
        // Independent items: read at once (the settings page waits on one round trip).
        let ((recorded, integration), hours) =
            tokio::try_join!(self.jobs.get_sync_job_with_integration(org), self.ledger.ledger_hours(org))?;
        let now = self.clock.now();
        let sync = crate::domain::current_job(recorded.clone(), integration.as_ref(), now);
        let integration = integration.filter(|i| i.is_active).map(|i| i.with_sync_of(recorded.as_ref()));
        let webhook_health = integration.as_ref().map(|_| WebhookHealth::from_hours(&hours, now));
        Ok(ConnectionStatus { integration, sync, webhook_health })
    }

    /// The event types the filter can pick from: the connected user's, or in organization
    /// scope every member's (each with its host). Without `event_types:read` granted this is a
    /// named 403, not Calendly's.
    pub async fn event_types(&self, org: &OrganizationId) -> Result<Vec<EventTypeChoice>, AppError> {
        let integration = active_integration(self.integrations.as_ref(), org).await?;
        if !GrantedScopes::parse(integration.scope.as_deref()).allows(Scope::EventTypesRead) {
            return Err(AppError::scope_missing(Scope::EventTypesRead));
        }
        let now = self.clock.now();
        let cached = self.event_types_cache.get(org, &integration);
        let types = match cached {
            Some(c) if now - c.read_at < EVENT_TYPES_FRESH => c.types,
            cached => match self.quotas.take_quota(org, &EVENT_TYPE_LISTINGS, "organization", now).await? {
                QuotaTake::Granted => {
                    let types = self.read_event_types(&integration).await?;
                    let entry =
                        CachedEventTypes { source: list_source(&integration), read_at: now, types: types.clone() };
                    self.event_types_cache.put(org, entry);
                    types
                }
                QuotaTake::Exhausted { retry_at } => match cached {
                    Some(stale) => stale.types,
                    None => {
                        return Err(AppError::too_many_requests(
                            ErrorCode::EventTypesRateLimited,
                            format!(
                                "the event types were read from Calendly {} times in {} minutes; retry later",
                                EVENT_TYPE_LISTINGS.limit,
                                EVENT_TYPE_LISTINGS.window.num_minutes()
                            ),
                            retry_at,
                            now,
                        ));
                    }
                },
            },
        };
        let selected = |uri: &str| integration.filter.event_types.as_ref().is_none_or(|l| l.iter().any(|x| x == uri));
        Ok(types
            .into_iter()
            .map(|t| {
                let selected = selected(&t.uri);
                EventTypeChoice { event_type: t, selected }
            })
            .collect())
    }

    /// Every event type of the integration's user (or organization), from Calendly.
    async fn read_event_types(&self, integration: &Integration) -> Result<Vec<EventType>, AppError> {
        let session = self.calendly.session(MANUAL_RATE_LIMIT_BUDGET);
        let token = self.calendly.access_token(&session, integration).await?;
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
        Ok(types)
    }

    /// Changes the settings all or nothing: the whole change is checked first (types, bounds,
    /// and for organization scope the caller's role at Calendly), and nothing is written
    /// unless all of it is valid. Scope changes of one organization run one at a time.
    pub async fn update_settings(
        &self,
        org: &OrganizationId,
        change: SettingsChange,
    ) -> Result<ConnectionStatus, AppError> {
        let integration = active_integration(self.integrations.as_ref(), org).await?;
        change.validate()?;
        change.fits_beside(&integration.filter)?;
        let scope = change.scope.filter(|s| *s != integration.coverage);
        let Some(scope) = scope else {
            self.apply_settings(&integration, &change).await?;
            return self.status(org).await;
        };
        let now = self.clock.now();
        // Paced before anything reaches Calendly: each change costs the user's budget there.
        if let QuotaTake::Exhausted { retry_at } =
            self.quotas.take_quota(org, &SCOPE_CHANGES, "organization", now).await?
        {
            return Err(AppError::too_many_requests(
                ErrorCode::TooManyScopeChanges,
                format!(
                    "the scope was changed {} times in {} minute; retry later",
                    SCOPE_CHANGES.limit,
                    SCOPE_CHANGES.window.num_minutes()
                ),
                retry_at,
                now,
            ));
        }
        if !self.integrations.set_scope_lease(org, now, Some(now + SCOPE_CHANGE_LEASE)).await? {
            return Err(AppError::Conflict {
                code: ErrorCode::ScopeChangeInProgress,
                message: "another scope change of this organization is in progress; retry in a few seconds".into(),
            });
        }
        let changed = self.change_scope(&integration, scope, &change).await;
        if let Err(e) = self.integrations.set_scope_lease(org, now, None).await {
            tracing::warn!(organization_id = %org, error = %e, "could not release the scope-change lease; it expires on its own");
        }
        changed?;
        self.status(org).await
    }

    /// The filter and auto-sync parts of a checked change.
    async fn apply_settings(&self, integration: &Integration, change: &SettingsChange) -> Result<(), AppError> {
        let org = &integration.organization_id;
        if change.event_types.is_some() || change.ignore_emails.is_some() {
            let mut filter = integration.filter.clone();
            if let Some(types) = &change.event_types {
                filter.event_types = types.clone();
            }
            if let Some(entries) = &change.ignore_emails {
                filter.ignore_emails = entries.clone();
            }
            self.integrations.set_booking_filter(org, &filter).await?;
        }
        if let Some(days) = change.retention_days {
            self.integrations.set_retention(org, days).await?;
        }
        if change.field_map.is_some() || change.guests_as_prospects.is_some() {
            let mut rules = integration.crm.clone();
            if let Some(map) = &change.field_map {
                rules.field_map = map.clone();
            }
            if let Some(take) = change.guests_as_prospects {
                rules.guests_as_prospects = take;
            }
            self.integrations.set_crm_rules(org, &rules).await?;
        }
        if change.auto_sync_enabled.is_some() || change.sync_interval_minutes.is_some() {
            let interval = change.sync_interval_minutes.unwrap_or(integration.sync_interval_minutes);
            let enabled = change.auto_sync_enabled.unwrap_or(integration.auto_sync_enabled);
            // Due one (new) interval after the last sync ended, or from now when none has yet
            // (the initial job may still run: it schedules by the interval it finds at its end).
            // Scheduled syncs record theirs on the job item.
            let last_job = self.jobs.get_sync_job(org).await?;
            let since = integration.clone().with_sync_of(last_job.as_ref()).last_synced_at;
            let since = since.unwrap_or_else(|| self.clock.now());
            let next = Some(since + Duration::minutes(i64::from(interval)));
            self.integrations.update_sync_settings(org, enabled, interval, next).await?;
        }
        Ok(())
    }

    /// Changes whose bookings the integration brings, with the rest of a checked change.
    /// Organization scope needs the connecting user to be an owner or admin of the Calendly
    /// organization (403 otherwise, nothing changed) and the organization not to be taken
    /// (409, nothing changed); the webhook subscription follows the scope.
    async fn change_scope(
        &self,
        integration: &Integration,
        scope: CalendlyScope,
        change: &SettingsChange,
    ) -> Result<(), AppError> {
        let org = &integration.organization_id;
        let org_uri = integration.calendly_organization_uri.clone();
        match scope {
            CalendlyScope::User => {
                self.apply_settings(integration, change).await?;
                self.integrations.set_coverage(org, CalendlyScope::User, Vec::new(), None).await?;
                self.integrations.release_calendly_user(&org_uri, org).await?;
            }
            CalendlyScope::Organization => {
                if !GrantedScopes::parse(integration.scope.as_deref()).allows(Scope::OrganizationsRead) {
                    return Err(AppError::scope_missing(Scope::OrganizationsRead));
                }
                let session = self.calendly.session(MANUAL_RATE_LIMIT_BUDGET);
                let token = self.calendly.access_token(&session, integration).await?;
                let (coverage, members, refusal) = self
                    .calendly
                    .organization_coverage(&session, &token, &org_uri, &integration.calendly_user_uri)
                    .await?;
                if coverage != CalendlyScope::Organization {
                    return Err(AppError::Forbidden {
                        code: ErrorCode::CalendlyScopeForbidden,
                        message: refusal.unwrap_or_else(|| "organization scope refused".into()),
                    });
                }
                if !self.integrations.claim_calendly_user(&org_uri, org, self.clock.now()).await? {
                    return Err(AppError::organization_in_use());
                }
                self.apply_settings(integration, change).await?;
                let read_at = Some(self.clock.now());
                self.integrations
                    .set_coverage(org, CalendlyScope::Organization, members.unwrap_or_default(), read_at)
                    .await?;
            }
        }
        let updated = active_integration(self.integrations.as_ref(), org).await?;
        if let Err(e) = self.subscriptions.ensure_webhook(&updated).await {
            tracing::warn!(organization_id = %org, error = %e, "could not move the webhook subscription to the new scope; the scheduled sync still runs");
        }
        Ok(())
    }
}

/// How long a scope change may hold its lease (a few Calendly calls, bounded by their budget).
const SCOPE_CHANGE_LEASE: Duration = Duration::seconds(60);
/// Booking-filter entries kept at the most, each list...
pub const MAX_FILTER_ENTRIES: usize = 200;
/// ...and the longest entry (an event type URI, an e-mail or an `@domain`).
pub const MAX_FILTER_ENTRY_BYTES: usize = 320;
/// The two lists together, as JSON (escapes included): what the status answer and the
/// integration item carry of them. Keeps the status answer under 70 KB whatever is set.
pub const MAX_FILTER_JSON_BYTES: usize = 48 * 1024;

/// A change of `PATCH /calendly/settings`, each part optional.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    /// Whose bookings: the user's or the whole Calendly organization's.
    pub scope: Option<CalendlyScope>,
    /// The event types taken (`Some(None)`: all of them).
    pub event_types: Option<Option<Vec<String>>>,
    /// E-mails and `@domain`s left out.
    pub ignore_emails: Option<Vec<String>>,
    /// Whether the schedule syncs.
    pub auto_sync_enabled: Option<bool>,
    /// Minutes between scheduled syncs.
    pub sync_interval_minutes: Option<u32>,
    /// Days what came from Calendly is kept (`Some(None)`: kept).
    pub retention_days: Option<Option<u32>>,
    /// The field map (`Some(None)`: back to the default one), already parsed.
    pub field_map: Option<Option<crate::domain::FieldMap>>,
    /// Whether guests become prospects.
    pub guests_as_prospects: Option<bool>,
}

impl SettingsChange {
    /// The booking filter it leaves (the stored one with this change's lists) within the one
    /// byte budget the two lists share.
    fn fits_beside(&self, stored: &BookingFilter) -> Result<(), AppError> {
        if self.event_types.is_none() && self.ignore_emails.is_none() {
            return Ok(());
        }
        let merged = BookingFilter {
            event_types: self.event_types.clone().unwrap_or_else(|| stored.event_types.clone()),
            ignore_emails: self.ignore_emails.clone().unwrap_or_else(|| stored.ignore_emails.clone()),
        };
        let bytes = serde_json::to_vec(&merged).map(|json| json.len()).unwrap_or(usize::MAX);
        if bytes > MAX_FILTER_JSON_BYTES {
            return Err(AppError::bad_request(
                ErrorCode::InvalidField,
                format!(
                    "event_types and ignore_emails together take at most {MAX_FILTER_JSON_BYTES} bytes as JSON; this change would make {bytes}"
                ),
            ));
        }
        Ok(())
    }

    /// Every part within its bounds (nothing is written before this passes).
    fn validate(&self) -> Result<(), AppError> {
        let range = crate::domain::privacy::RETENTION_DAYS_RANGE;
        if let Some(Some(days)) = self.retention_days.filter(|d| d.is_some_and(|d| !range.contains(&d))) {
            return Err(AppError::bad_request(
                ErrorCode::InvalidField,
                format!("retention_days must be between {} and {} (or null), got {days}", range.start(), range.end()),
            ));
        }
        if let Some(m) = self.sync_interval_minutes.filter(|m| !SYNC_INTERVAL_RANGE.contains(m)) {
            return Err(AppError::bad_request(
                ErrorCode::InvalidInterval,
                format!("sync_interval_minutes must be between 5 and 1440, got {m}"),
            ));
        }
        let bounded = |field: &str, entries: &[String]| {
            if entries.len() > MAX_FILTER_ENTRIES
                || entries.iter().any(|e| e.is_empty() || e.len() > MAX_FILTER_ENTRY_BYTES)
            {
                return Err(AppError::bad_request(
                    ErrorCode::InvalidField,
                    format!("{field}: at most {MAX_FILTER_ENTRIES} entries of 1 to {MAX_FILTER_ENTRY_BYTES} bytes"),
                ));
            }
            Ok(())
        };
        if let Some(Some(types)) = &self.event_types {
            bounded("event_types", types)?;
        }
        if let Some(entries) = &self.ignore_emails {
            bounded("ignore_emails", entries)?;
            for entry in entries {
                let valid = match entry.strip_prefix('@') {
                    Some(domain) => crate::domain::Email::parse(&format!("x@{domain}")).is_ok(),
                    None => crate::domain::Email::parse(entry).is_ok(),
                };
                if !valid {
                    return Err(AppError::bad_request(
                        ErrorCode::InvalidField,
                        format!("ignore_emails: '{entry}' is neither an e-mail address nor an @domain"),
                    ));
                }
            }
        }
        Ok(())
    }
}
