//! What the API answers and what browsers receive: one serializable type per body, each with
//! its JSON Schema derived from the same definition (the OpenAPI document, `http::contract`).
//! Handlers and pushes serialize these and nothing else, so the document can't drift from the
//! wire.
//!
//! One file on purpose: every wire shape in one place, so the contract reads as one.

use crate::app::PersonalData;
use crate::app::{ConnectOutcome, ConnectStart, ConnectionStatus, DeliveryOutcome, EventTypeChoice};
use crate::calendly::GrantedScopes;
use crate::domain::{
    Booking, CalendlyErasure, CalendlyScope, ErasureRecord, Notification, Organization, Prospect, QuestionAnswer,
    SyncJob, SyncJobState, SyncTrigger, Tracking,
};
use crate::store::PageOf;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A CRM prospect.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProspectView {
    /// The prospect's id (a UUID).
    pub id: String,
    /// First name (from a booking: Calendly's first name, else the name up to its first space).
    pub firstname: Option<String>,
    /// Last name (from a booking: Calendly's last name, else the rest of the name).
    pub lastname: Option<String>,
    /// Normalized (lower-cased domain, NFC).
    pub email: Option<String>,
    /// Free-form phone number, as entered.
    pub phone: Option<String>,
    /// The company.
    pub company: Option<String>,
    /// The e-mail of the salesperson who owns the prospect (from a booking in organization
    /// scope: the event's host, by the default field map).
    pub owner_email: Option<String>,
    /// That salesperson's name.
    pub owner_name: Option<String>,
    /// The organization's own fields (`custom.<key>` targets of the field map, or set by hand).
    pub custom_fields: std::collections::BTreeMap<String, String>,
    /// The CRM pipeline status (`new` for prospects created from a booking).
    pub status: String,
    /// `calendly` for prospects created from a booking, `manual` by default otherwise.
    pub source: String,
    /// Every note entry, separated by a blank line (one line per Calendly booking:
    /// `Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min`).
    pub notes: String,
    /// When the prospect was created.
    pub created_at: DateTime<Utc>,
    /// When the prospect last changed (a note appended counts).
    pub updated_at: DateTime<Utc>,
}

impl From<&Prospect> for ProspectView {
    fn from(p: &Prospect) -> Self {
        Self {
            id: p.id.to_string(),
            firstname: p.firstname.clone(),
            lastname: p.lastname.clone(),
            email: p.email.as_ref().map(|e| e.as_str().to_string()),
            phone: p.phone.clone(),
            company: p.company.clone(),
            owner_email: p.owner_email.clone(),
            owner_name: p.owner_name.clone(),
            custom_fields: p.custom_fields.clone(),
            status: p.status.clone(),
            source: p.source.clone(),
            notes: crate::domain::notes::render_notes(&p.notes),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A notification shown to every user of an organization.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// The notification's id (a UUID).
    pub id: String,
    /// What it is about.
    #[serde(rename = "type")]
    pub kind: crate::domain::NotificationKind,
    /// A one-line title (e.g. `Nouveau prospect Calendly`).
    pub title: String,
    /// The text shown under the title.
    pub message: String,
    /// What the notification is about (prospect id, booking, sync job…).
    #[schema(value_type = Object)]
    pub meta: Value,
    /// Whether a user marked it read (`PATCH /notifications/{id}/read`).
    pub read: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        Self {
            id: n.id.to_string(),
            kind: n.kind,
            title: n.title.clone(),
            message: n.message.clone(),
            meta: n.meta.clone(),
            read: n.read,
            created_at: n.created_at,
        }
    }
}

/// A Calendly booking: one invitee of one scheduled event, with the event's and the invitee's
/// fields as the CRM shows them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BookingView {
    /// The invitee's UUID.
    pub id: String,
    /// The Velvena organization the booking belongs to.
    pub organization_id: String,
    /// The Calendly integration that brought it.
    pub integration_id: String,
    /// The prospect it created or enriched (`null` when the filter left it out).
    pub prospect_id: Option<String>,
    /// The scheduled event's Calendly URI.
    pub calendly_event_uri: String,
    /// The event type's Calendly URI.
    pub calendly_event_type: Option<String>,
    /// The event's name (e.g. `Découverte 30min`).
    pub event_name: Option<String>,
    /// When the event starts.
    pub event_start_time: DateTime<Utc>,
    /// When the event ends.
    pub event_end_time: DateTime<Utc>,
    /// `active` or `canceled`.
    pub event_status: String,
    /// Where it takes place (an address, a phone number or a conferencing kind).
    pub location: Option<String>,
    /// The invitee's name as entered on Calendly.
    pub invitee_name: String,
    /// The invitee's e-mail as entered on Calendly.
    pub invitee_email: String,
    /// The invitee's time zone (IANA name).
    pub invitee_timezone: Option<String>,
    /// The number the invitee gave for SMS reminders.
    pub invitee_phone: Option<String>,
    /// The people the invitee added to the meeting.
    pub guests: Vec<crate::domain::booking::Guest>,
    /// The invitee's Calendly URI.
    pub invitee_uri: String,
    /// The answers to the event type's questions, in their order.
    pub invitee_questions: Vec<QuestionAnswer>,
    /// The `utm_*` parameters of the scheduling link.
    pub tracking: Tracking,
    /// The event's host (the member whose booking it is, in organization scope).
    pub host_name: Option<String>,
    /// The host's e-mail.
    pub host_email: Option<String>,
    /// The host's Calendly user URI.
    pub host_user_uri: Option<String>,
    /// The conferencing link, when the location has one.
    pub join_url: Option<String>,
    /// Whether the invitee moved this booking to another time (this one is then canceled).
    pub rescheduled: bool,
    /// The invitee this booking was rescheduled from.
    pub old_invitee_uri: Option<String>,
    /// The invitee this booking was rescheduled to.
    pub new_invitee_uri: Option<String>,
    /// Whether the host marked the invitee as a no-show.
    pub no_show: bool,
    /// Why it was canceled, as written by whoever canceled.
    pub cancel_reason: Option<String>,
    /// Who canceled (a name).
    pub canceled_by: Option<String>,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// When the CRM first recorded it.
    pub created_at: DateTime<Utc>,
    /// When the CRM last recorded a change to it.
    pub updated_at: DateTime<Utc>,
}

impl From<&Booking> for BookingView {
    fn from(b: &Booking) -> Self {
        let d = &b.details;
        Self {
            id: d.invitee_uuid.clone(),
            organization_id: b.organization_id.to_string(),
            integration_id: b.integration_id.to_string(),
            prospect_id: b.prospect_id.as_ref().map(ToString::to_string),
            calendly_event_uri: d.event_uri.clone(),
            calendly_event_type: d.event_type_uri.clone(),
            event_name: d.event_name.clone(),
            event_start_time: d.start_time,
            event_end_time: d.end_time,
            event_status: d.status.as_str().to_string(),
            location: d.location.clone(),
            invitee_name: d.invitee_name.clone(),
            invitee_email: d.invitee_email.clone(),
            invitee_timezone: d.invitee_timezone.clone(),
            invitee_phone: d.invitee_phone.clone(),
            guests: d.guests.clone(),
            invitee_uri: d.invitee_uri.clone(),
            invitee_questions: d.questions.clone(),
            tracking: d.tracking.clone(),
            host_name: d.host.as_ref().and_then(|h| h.name.clone()),
            host_email: d.host.as_ref().and_then(|h| h.email.clone()),
            host_user_uri: d.host.as_ref().map(|h| h.user_uri.clone()),
            join_url: d.join_url.clone(),
            rescheduled: d.rescheduled,
            old_invitee_uri: d.old_invitee_uri.clone(),
            new_invitee_uri: d.new_invitee_uri.clone(),
            no_show: d.no_show,
            cancel_reason: d.cancel_reason.clone(),
            canceled_by: d.canceled_by.clone(),
            canceled_at: d.canceled_at,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

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

/// One page of a list; `next_cursor` is `null` on the last page.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A store page, each item turned into its view.
    pub fn of<D>(page: &PageOf<D>) -> Self
    where
        T: for<'a> From<&'a D>,
    {
        Self { items: page.items.iter().map(T::from).collect(), next_cursor: page.next_cursor.clone() }
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

/// An organization and its free-form settings; `settings.calendly` mirrors the connection and
/// is read-only.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    /// The organization's id (from the caller's token).
    pub id: String,
    /// Free-form settings; `calendly` is the connection's mirror.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
}

/// A notification marked read.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NotificationReadView {
    /// The notification's id.
    pub id: String,
    /// Always `true`.
    pub read: bool,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        Self { id: o.id.to_string(), settings: o.settings.clone() }
    }
}

/// `GET /health`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// Always `ok`.
    pub status: String,
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

/// A prospect's id (the data of `prospect:deleted`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProspectIdView {
    /// The deleted prospect's id.
    pub id: String,
}

/// A message pushed to every WebSocket connection of an organization:
/// `{"event": "…", "data": {…}, "correlation_id": "…"}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PushEnvelope {
    /// What happened, and its data.
    #[serde(flatten)]
    pub message: PushedEvent,
    /// The correlation id of the work that made this push (the HTTP request's, e.g. a webhook
    /// delivery's, or the sync job's id): the `correlation_id` of that work's log lines and
    /// the `x-correlation-id` of its answer. Absent when no such work is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// What a push says happened: `event` names it, `data` carries it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "event", content = "data")]
pub enum PushedEvent {
    /// A prospect was created (by a booking or by a user).
    #[serde(rename = "prospect:created")]
    ProspectCreated(ProspectView),
    /// A prospect changed (a note appended, a field edited).
    #[serde(rename = "prospect:updated")]
    ProspectUpdated(ProspectView),
    /// A prospect was deleted.
    #[serde(rename = "prospect:deleted")]
    ProspectDeleted(ProspectIdView),
    /// A notification was created.
    #[serde(rename = "notification")]
    Notification(NotificationView),
    /// A sync job progressed (queued, slice started, every 5 s or 100 events, paused, ended).
    #[serde(rename = "calendly:sync")]
    Sync(SyncJobView),
}

impl From<&crate::push::PushMessage> for PushedEvent {
    fn from(message: &crate::push::PushMessage) -> Self {
        use crate::push::PushMessage;
        match message {
            PushMessage::ProspectCreated(p) => Self::ProspectCreated(p.into()),
            PushMessage::ProspectUpdated(p) => Self::ProspectUpdated(p.into()),
            PushMessage::ProspectDeleted(id) => Self::ProspectDeleted(ProspectIdView { id: id.to_string() }),
            PushMessage::Notification(n) => Self::Notification(n.into()),
            PushMessage::Sync(job) => Self::Sync(job.into()),
        }
    }
}

/// A pushed message's bytes on the wire: its `PushEnvelope` as JSON, with the correlation id
/// of the work in progress (the pushers' encoder).
pub fn push_payload(message: &crate::push::PushMessage) -> Vec<u8> {
    let envelope =
        PushEnvelope { message: PushedEvent::from(message), correlation_id: crate::telemetry::correlation::current() };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// Any view as a JSON value (for the places that still assemble JSON, e.g. notifications' meta).
pub fn to_value(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// What an erasure removed from the organization (`POST /privacy/erasures`), and its entry in
/// the audit (`GET /privacy/erasures`). No personal data: the e-mail is only its keyed hash.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// The audit entry's id.
    pub id: String,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// Who asked (the JWT's `sub`).
    pub requested_by: String,
    /// The keyed hash (HMAC-SHA256 under the server's privacy key) of the normalized e-mail.
    pub person: String,
    /// Prospects deleted (with their e-mail claim).
    pub prospects: u64,
    /// Bookings deleted.
    pub bookings: u64,
    /// Notifications deleted.
    pub notifications: u64,
    /// Calendly-side deletion: `not_requested`, `requested` or `unavailable`.
    pub calendly: CalendlyErasure,
    /// Why Calendly couldn't (`unavailable` only): its plan, the scope, or its answer.
    pub calendly_reason: Option<String>,
}

impl From<&ErasureRecord> for ErasureView {
    fn from(e: &ErasureRecord) -> Self {
        Self {
            id: e.id.clone(),
            erased_at: e.erased_at,
            requested_by: e.requested_by.to_string(),
            person: e.person.clone(),
            prospects: e.counts.prospects,
            bookings: e.counts.bookings,
            notifications: e.counts.notifications,
            calendly: e.calendly.clone(),
            calendly_reason: e.calendly_reason.clone(),
        }
    }
}

/// Everything the organization holds about one person (`GET /privacy/export`): empty lists
/// when nothing.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PersonalDataView {
    /// The e-mail asked about, normalized.
    pub email: String,
    /// When this export was made.
    pub exported_at: DateTime<Utc>,
    /// The prospect with that e-mail, with its notes.
    pub prospects: Vec<ProspectView>,
    /// Their Calendly bookings, with answers and tracking.
    pub bookings: Vec<BookingView>,
    /// The notifications about them.
    pub notifications: Vec<NotificationView>,
}

impl PersonalDataView {
    /// The view of `data` about the person at `address`.
    pub fn new(address: &crate::domain::PersonAddress, data: &PersonalData) -> Self {
        Self {
            email: address.key().to_string(),
            exported_at: data.exported_at,
            prospects: data.prospects.iter().map(ProspectView::from).collect(),
            bookings: data.bookings.iter().map(BookingView::from).collect(),
            notifications: data.notifications.iter().map(NotificationView::from).collect(),
        }
    }
}

/// The answer to lifting a suppression (`DELETE /privacy/suppressions`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SuppressionLiftedView {
    /// Whether the person was suppressed (false: nothing to lift; the call is idempotent).
    pub lifted: bool,
}

#[cfg(test)]
mod tests;
