//! The Calendly connection on the wire: its status, connect and disconnect, sync jobs, event
//! types, and what became of a webhook delivery.

use super::*;

/// A sync job: its state and counters (`sync` in the status, `calendly:sync` pushes).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SyncJobView {
    /// The job's id.
    pub id: String,
    /// What the job's log lines carry as `correlation_id` (its id): follow one sync from
    /// its pushes to its logs.
    pub correlation_id: String,
    /// Where the job is: `queued`, `running`, `succeeded` or `failed`.
    pub state: SyncJobState,
    /// What started it: `initial` (connect), `manual`, `scheduled`.
    pub trigger: SyncTrigger,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When its first slice started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (`succeeded` or `failed`).
    pub finished_at: Option<DateTime<Utc>>,
    /// Scheduled events read from Calendly so far.
    pub events_seen: u64,
    /// Bookings seen for the first time.
    pub bookings_new: u64,
    /// Known bookings that changed (canceled, rescheduled, no-show…).
    pub bookings_changed: u64,
    /// Prospects created from bookings.
    pub prospects_created: u64,
    /// Note lines appended to existing prospects.
    pub notes_added: u64,
    /// Requests made to Calendly's API.
    pub calendly_requests: u64,
    /// Events skipped after errors of their own (the job went on with the others).
    pub events_failed: u64,
    /// The last per-event error, if any event failed.
    pub last_event_error: Option<String>,
    /// Bookings of erased invitees left out (the organization's suppression list).
    pub suppressed: u64,
    /// Routing form submissions the scheduled sync's poll recorded (deliveries Calendly missed).
    pub form_submissions: u64,
    /// Routing form submissions left out for want of an e-mail in their answers.
    pub form_submissions_without_email: u64,
    /// Why the job failed (`failed` only).
    pub error: Option<String>,
    /// Paused under Calendly's rate limit until then.
    pub waiting_until: Option<DateTime<Utc>>,
    /// How many worker invocations the job has taken so far.
    pub slices: u32,
}

impl From<&SyncJob> for SyncJobView {
    fn from(j: &SyncJob) -> Self {
        Self {
            id: j.id.clone(),
            correlation_id: j.id.clone(),
            state: j.state,
            trigger: j.trigger,
            queued_at: j.queued_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            events_seen: j.report.events_seen,
            bookings_new: j.report.bookings_new,
            bookings_changed: j.report.bookings_changed,
            prospects_created: j.report.prospects_created,
            notes_added: j.report.notes_added,
            calendly_requests: j.report.calendly_requests,
            events_failed: j.report.events_failed,
            last_event_error: j.report.last_event_error.clone(),
            suppressed: j.report.suppressed,
            form_submissions: j.report.form_submissions,
            form_submissions_without_email: j.report.form_submissions_without_email,
            error: j.error.clone(),
            waiting_until: j.resume_at,
            slices: j.slices,
        }
    }
}

/// The Calendly connection as the settings page shows it (`GET /calendly/status`). When not
/// connected, every field but `connected` and `sync` is `null`.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct StatusView {
    /// Whether a Calendly account is connected.
    pub connected: bool,
    /// The connected Calendly user's e-mail.
    pub email: Option<String>,
    /// The connected Calendly user's name.
    pub name: Option<String>,
    /// The connected Calendly user's URI.
    pub user_uri: Option<String>,
    /// When the last sync ended successfully.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the schedule runs the next sync.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Whether the schedule syncs every `sync_interval_minutes`.
    pub auto_sync_enabled: Option<bool>,
    /// Minutes between scheduled syncs (5 to 1440, 30 by default).
    pub sync_interval_minutes: Option<u32>,
    /// Days bookings and notifications are kept (`null`: kept).
    pub retention_days: Option<u32>,
    /// The field map in force: the organization's, or the default one of its scope.
    pub field_map: Option<Vec<crate::domain::field_map::FieldMappingText>>,
    /// Whether `field_map` is the default one (no map set).
    pub field_map_is_default: Option<bool>,
    /// Whether the guests an invitee adds become prospects.
    pub guests_as_prospects: Option<bool>,
    /// Whether Calendly delivers bookings in real time (webhook subscription active).
    pub webhook_active: Option<bool>,
    /// Why real-time updates are off (the subscription could not be created), if they are.
    pub webhook_error: Option<String>,
    /// Whether the webhook's deliveries arrive: counted over the last 24 hours.
    pub webhook_health: Option<WebhookHealthView>,
    /// Calendly refused the tokens: the user must connect again.
    pub needs_reconnect: Option<bool>,
    /// The event type URIs whose bookings become prospects (`null`: all of them).
    pub event_types: Option<Vec<String>>,
    /// E-mail addresses and `@domain` entries left out.
    pub ignore_emails: Option<Vec<String>>,
    /// Whose bookings: `user` or `organization`.
    pub scope: Option<CalendlyScope>,
    /// Members of the Calendly organization covered (organization scope).
    pub members_covered: Option<u32>,
    /// The connected user's Calendly organization (its name is not in Calendly's documented
    /// API: the URI identifies it).
    pub calendly_organization_uri: Option<String>,
    /// The Calendly scopes granted at connect (`null`: Calendly's token answer did not say).
    pub scopes: Option<Vec<String>>,
    /// Scopes the product uses that Calendly did not grant; the features needing them answer
    /// `calendly_scope_missing` (reconnect after ticking them in the Calendly app).
    pub missing_scopes: Option<Vec<String>>,
    /// The latest sync job, if any.
    pub sync: Option<SyncJobView>,
}

impl From<&ConnectionStatus> for StatusView {
    fn from(status: &ConnectionStatus) -> Self {
        let sync = status.sync.as_ref().map(SyncJobView::from);
        match &status.integration {
            None => Self { sync, ..Self::default() },
            Some(i) => Self {
                connected: true,
                email: Some(i.email.clone()),
                name: Some(i.name.clone()),
                user_uri: Some(i.calendly_user_uri.clone()),
                last_synced_at: i.last_synced_at,
                next_sync_at: i.next_sync_at,
                auto_sync_enabled: Some(i.auto_sync_enabled),
                sync_interval_minutes: Some(i.sync_interval_minutes),
                retention_days: i.retention_days,
                field_map: Some(i.field_map().texts()),
                field_map_is_default: Some(i.crm.field_map.is_none()),
                guests_as_prospects: Some(i.crm.guests_as_prospects),
                webhook_active: Some(i.webhook_active),
                webhook_error: i.webhook_error.clone(),
                webhook_health: status.webhook_health.as_ref().map(WebhookHealthView::from),
                needs_reconnect: Some(i.needs_reconnect),
                event_types: i.filter.event_types.clone(),
                ignore_emails: Some(i.filter.ignore_emails.clone()),
                scope: Some(i.coverage),
                members_covered: i.members_covered,
                calendly_organization_uri: Some(i.calendly_organization_uri.clone()),
                scopes: i.scope.as_ref().map(|s| s.split_whitespace().map(String::from).collect()),
                missing_scopes: Some(
                    GrantedScopes::parse(i.scope.as_deref()).missing().iter().map(|s| s.as_str().to_string()).collect(),
                ),
                sync,
            },
        }
    }
}

/// Whether Calendly's deliveries arrive (`webhook_health` of the status).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct WebhookHealthView {
    /// Signed deliveries received in the last 24 hours.
    pub deliveries_24h: u64,
    /// Bookings of the last 24 hours that a sync found more than 5 minutes after they were
    /// made, while the subscription was active: deliveries Calendly never made.
    pub missed_24h: u64,
    /// The latest delivery received (within the last 8 days).
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// When the earliest of `missed_24h` was booked.
    pub missed_since: Option<DateTime<Utc>>,
}

impl From<&crate::domain::ledger::WebhookHealth> for WebhookHealthView {
    fn from(h: &crate::domain::ledger::WebhookHealth) -> Self {
        Self {
            deliveries_24h: h.deliveries_24h,
            missed_24h: h.missed_24h,
            last_delivery_at: h.last_delivery_at,
            missed_since: h.missed_since,
        }
    }
}

/// The start of a connect: send the browser to `authorize_url`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectStartView {
    /// Calendly's authorization page, with `state` and the PKCE challenge.
    pub authorize_url: String,
    /// The single-use state to send back with the code (`POST /auth/calendly/callback`).
    pub state: String,
    /// When the state expires (the connect must complete before).
    pub expires_at: DateTime<Utc>,
}

impl From<&ConnectStart> for ConnectStartView {
    fn from(c: &ConnectStart) -> Self {
        Self { authorize_url: c.authorize_url.clone(), state: c.state.clone(), expires_at: c.expires_at }
    }
}

/// A completed connect; the initial sync runs as a job (`sync`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConnectedView {
    /// Always `true`.
    pub connected: bool,
    /// The connected Calendly user's e-mail.
    pub email: String,
    /// The connected Calendly user's name.
    pub name: String,
    /// The connected Calendly user's URI.
    pub user_uri: String,
    /// The initial sync job; `failed` with its `error` when it could not be queued (the
    /// schedule then runs one within minutes).
    pub sync: Option<SyncJobView>,
    /// Whose bookings the integration brings.
    pub scope: CalendlyScope,
    /// Why organization scope was asked for and not granted (only owners and admins get it).
    pub scope_error: Option<String>,
}

impl From<&ConnectOutcome> for ConnectedView {
    fn from(o: &ConnectOutcome) -> Self {
        Self {
            connected: o.connected,
            email: o.email.clone(),
            name: o.name.clone(),
            user_uri: o.user_uri.clone(),
            sync: o.sync.as_ref().map(SyncJobView::from),
            scope: o.coverage,
            scope_error: o.scope_error.clone(),
        }
    }
}

/// The answer to a disconnect (idempotent).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisconnectedView {
    /// Always `false`.
    pub connected: bool,
    /// What `{"purge": true}` deleted (`null` without it).
    pub purge: Option<PurgeView>,
}

/// What a purge deleted of what came from Calendly (prospects stay).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PurgeView {
    /// Bookings deleted by this call.
    pub bookings: u64,
    /// Event fingerprints deleted by this call.
    pub fingerprints: u64,
    /// Notifications deleted by this call.
    pub notifications: u64,
    /// `false` when this call's time ran out first: call again to go on (idempotent).
    pub complete: bool,
}

impl From<&crate::app::Purge> for PurgeView {
    fn from(p: &crate::app::Purge) -> Self {
        Self {
            bookings: p.bookings,
            fingerprints: p.fingerprints,
            notifications: p.notifications,
            complete: p.complete,
        }
    }
}

/// One of the connected user's Calendly event types.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    /// The event type's Calendly URI (what the filter lists).
    pub uri: String,
    /// Its name.
    pub name: Option<String>,
    /// Whether it can still be booked.
    pub active: bool,
    /// Its public booking page.
    pub scheduling_url: Option<String>,
    /// Whether its bookings become prospects (the filter of `PATCH /calendly/settings`).
    pub selected: bool,
    /// Whose event type it is (organization scope lists every member's).
    pub host_name: Option<String>,
    /// The owner's Calendly user URI.
    pub host_user_uri: Option<String>,
}

impl From<&EventTypeChoice> for EventTypeView {
    fn from(c: &EventTypeChoice) -> Self {
        let t = &c.event_type;
        Self {
            uri: t.uri.clone(),
            name: t.name.clone(),
            active: t.active,
            scheduling_url: t.scheduling_url.clone(),
            selected: c.selected,
            host_name: t.profile.as_ref().and_then(|p| p.name.clone()),
            host_user_uri: t.profile.as_ref().and_then(|p| p.owner.clone()),
        }
    }
}

/// The event types of the connected Calendly user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventTypesView {
    /// The event types, as Calendly lists them.
    pub items: Vec<EventTypeView>,
}

/// What became of a signed webhook delivery: 200 when processed, ignored or deferred (Calendly
/// would retry a hopeless one for 24 h, then disable the subscription); 410 `gone` when the
/// subscription is no active integration's (Calendly then deletes it).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum WebhookOutcome {
    /// Recorded.
    Processed {
        /// Whether the booking was new or different.
        changed: bool,
        /// Note lines appended to prospects.
        notes_added: usize,
    },
    /// Signed but not acted on (an event we don't use, a body we can't use).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Ours, but it can't succeed now (Calendly refused what the payload left out, or the
    /// integration needs reconnecting): the next sync reads the booking.
    Deferred {
        /// Why.
        reason: String,
    },
    /// For no active integration of ours (410: Calendly deletes the subscription).
    Gone {
        /// Why.
        reason: String,
    },
}

impl From<&DeliveryOutcome> for WebhookOutcome {
    fn from(o: &DeliveryOutcome) -> Self {
        match o {
            DeliveryOutcome::Processed { changed, notes_added } => {
                Self::Processed { changed: *changed, notes_added: *notes_added }
            }
            DeliveryOutcome::Ignored { reason } => Self::Ignored { reason: reason.clone() },
            DeliveryOutcome::Deferred { reason } => Self::Deferred { reason: reason.clone() },
            DeliveryOutcome::Gone { reason } => Self::Gone { reason: reason.clone() },
        }
    }
}
