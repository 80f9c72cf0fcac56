//! The simulator's data: users, OAuth grants, scheduled events, invitees, subscriptions.
//!
//! One file on purpose: the simulator's state and its transitions (book, cancel, reschedule,
//! no-show, deliveries) change together and read best side by side.

use crate::{SimConfig, SimUser, random, uuid};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

mod bookings;
mod deliveries;
mod oauth;

pub(crate) const API: &str = "https://api.calendly.com";
pub(crate) const ACCESS_TOKEN_SECONDS: i64 = 7200;

/// A booking to make: who, when, for what.
#[derive(Clone, Debug)]
pub struct BookingSpec {
    /// The invitee's full name.
    pub invitee_name: String,
    /// The invitee's e-mail.
    pub invitee_email: String,
    /// The event type's name (one event type per name and host).
    pub event_name: String,
    /// When the event starts.
    pub start_time: DateTime<Utc>,
    /// How long it lasts.
    pub duration_minutes: i64,
    /// The first name, as a form asking for it separately gives it.
    pub first_name: Option<String>,
    /// The last name, likewise.
    pub last_name: Option<String>,
    /// The number given for SMS reminders.
    pub text_reminder_number: Option<String>,
    /// The invitee's answers to the event type's questions, as `(question, answer)`.
    pub questions: Vec<(String, String)>,
    /// The booking link's `utm_source`, `utm_medium`, `utm_campaign`.
    pub utm: Option<(String, String, String)>,
    /// A video call (a Zoom-type location with this join URL) instead of an in-person place.
    pub join_url: Option<String>,
    /// An "outbound call" location: the host calls the invitee at this number.
    pub call_phone: Option<String>,
    /// The e-mails of the guests the invitee adds (`event_guests`).
    pub guests: Vec<String>,
    /// The routing form submission that led to this booking (its URI).
    pub routing_form_submission: Option<String>,
}

impl BookingSpec {
    /// A 30-minute booking.
    pub fn new(invitee_name: &str, invitee_email: &str, event_name: &str, start_time: DateTime<Utc>) -> Self {
        Self {
            invitee_name: invitee_name.into(),
            invitee_email: invitee_email.into(),
            event_name: event_name.into(),
            start_time,
            duration_minutes: 30,
            first_name: None,
            last_name: None,
            text_reminder_number: None,
            questions: Vec::new(),
            utm: None,
            join_url: None,
            call_phone: None,
            guests: Vec::new(),
            routing_form_submission: None,
        }
    }
}

/// A routing form of a Calendly organization.
pub(crate) struct RoutingForm {
    pub uuid: String,
    pub organization_uri: String,
    pub name: String,
    pub questions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl RoutingForm {
    pub fn uri(&self) -> String {
        format!("{API}/routing_forms/{}", self.uuid)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "uri": self.uri(),
            "organization": self.organization_uri,
            "name": self.name,
            "status": "published",
            "questions": self.questions.iter().map(|q| json!({
                "uuid": uuid::org_for(&format!("{}|{q}", self.uuid)),
                "name": q,
                "type": if q.to_lowercase().contains("mail") { "email" } else { "text" },
                "required": true,
                "answer_choices": null,
            })).collect::<Vec<_>>(),
            "created_at": time(self.created_at),
            "updated_at": time(self.created_at),
        })
    }
}

/// One submission of a routing form.
pub(crate) struct FormSubmission {
    pub uuid: String,
    pub form_uuid: String,
    pub answers: Vec<(String, String)>,
    /// The invitee who booked after it (`null` until then).
    pub submitter: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FormSubmission {
    pub fn uri(&self) -> String {
        format!("{API}/routing_form_submissions/{}", self.uuid)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "uri": self.uri(),
            "routing_form": format!("{API}/routing_forms/{}", self.form_uuid),
            "questions_and_answers": self.answers.iter().map(|(q, a)| json!({
                "question_uuid": uuid::org_for(&format!("{}|{q}", self.form_uuid)),
                "question": q,
                "answer": a,
            })).collect::<Vec<_>>(),
            "tracking": { "utm_campaign": null, "utm_source": null, "utm_medium": null, "utm_content": null, "utm_term": null, "salesforce_uuid": null },
            "result": { "type": "event_type", "value": null },
            "submitter": self.submitter,
            "submitter_type": self.submitter.as_ref().map(|_| "Invitee"),
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
        })
    }
}

/// A made booking: the event and invitee it created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booked {
    /// The scheduled event's UUID (a group event's is shared by its invitees).
    pub event_uuid: String,
    /// The invitee's UUID.
    pub invitee_uuid: String,
}

impl Booked {
    /// The invitee's URI, as Calendly writes it.
    pub fn invitee_uri(&self) -> String {
        format!("{API}/scheduled_events/{}/invitees/{}", self.event_uuid, self.invitee_uuid)
    }
}

pub(crate) struct Code {
    pub user_uuid: String,
    /// What the authorize URL requested, cut to what the app is registered for.
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub challenge: String,
    pub expires_at: DateTime<Utc>,
}

pub(crate) struct AccessToken {
    pub user_uuid: String,
    pub expires_at: DateTime<Utc>,
    /// The scopes granted (Calendly checks them endpoint by endpoint since 2026-03-03).
    pub scopes: Vec<String>,
}

/// A refresh token's grant: whose, and with which scopes.
#[derive(Clone)]
pub(crate) struct Grant {
    pub user_uuid: String,
    pub scopes: Vec<String>,
}

/// Every scope of Calendly's catalog the simulator knows (what an app may register).
pub(crate) const CATALOG: [&str; 9] = [
    "users:read",
    "organizations:read",
    "event_types:read",
    "scheduled_events:read",
    "scheduled_events:write",
    "routing_forms:read",
    "webhooks:read",
    "webhooks:write",
    "data_compliance:write",
];

/// Whether `scopes` grant `needed`: named, or implied by the `:write` of its own domain.
pub(crate) fn grants(scopes: &[String], needed: &str) -> bool {
    let domain = needed.split(':').next().unwrap_or_default();
    scopes.iter().any(|s| s == needed || (needed.ends_with(":read") && *s == format!("{domain}:write")))
}

pub(crate) struct Event {
    pub uuid: String,
    pub user_uuid: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancellation: Option<Value>,
    pub join_url: Option<String>,
    pub call_phone: Option<String>,
    /// `(email, added at)`.
    pub guests: Vec<(String, DateTime<Utc>)>,
}

pub(crate) struct InviteeRecord {
    pub uuid: String,
    pub event_uuid: String,
    pub spec: BookingSpec,
    pub status: String,
    pub rescheduled: bool,
    pub old_invitee: Option<String>,
    pub new_invitee: Option<String>,
    pub cancellation: Option<Value>,
    pub no_show: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) struct Webhook {
    pub uuid: String,
    pub callback_url: String,
    /// Who created it (the user of a `user` subscription).
    pub user_uuid: String,
    /// `user` or `organization` (every member's bookings).
    pub scope: String,
    pub organization_uri: String,
    pub events: Vec<String>,
    pub state: String,
    pub retry_started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn uri(&self) -> String {
        format!("{API}/webhook_subscriptions/{}", self.uuid)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "uri": self.uri(),
            "callback_url": self.callback_url,
            "created_at": time(self.created_at),
            "updated_at": time(self.created_at),
            "retry_started_at": self.retry_started_at.map(time),
            "state": self.state,
            "events": self.events,
            "scope": self.scope,
            "organization": self.organization_uri,
            "user": (self.scope == "user").then(|| format!("{API}/users/{}", self.user_uuid)),
            "creator": format!("{API}/users/{}", self.user_uuid),
            "creator": format!("{API}/users/{}", self.user_uuid),
        })
    }
}

#[derive(Clone)]
pub(crate) struct Delivery {
    /// The subscription delivering (a 410 deletes it; failures past the retry window disable it).
    pub subscription_uuid: String,
    pub url: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct SimState {
    pub users: Vec<SimUser>,
    pub codes: HashMap<String, Code>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub used_refresh_tokens: HashMap<String, String>,
    /// Append-only (so `event_index` stays true); lists sort by start time when they answer.
    pub events: Vec<Event>,
    pub event_index: HashMap<String, usize>,
    pub invitees: Vec<InviteeRecord>,
    /// The invitees of each event, as indexes into `invitees`.
    pub invitees_by_event: HashMap<String, Vec<usize>>,
    /// The scopes the app is registered with in Calendly's portal (`None`: the whole catalog).
    pub app_scopes: Option<Vec<String>>,
    /// Delivery attempts still to fail as timeouts (`CalendlySim::fail_next_deliveries`).
    pub failing_deliveries: u32,
    /// Leave `scope` out of token answers (Calendly's documentation does not promise it).
    pub omit_token_scope: bool,
    /// The key deliveries are signed with now (regenerated in the portal: see `CalendlySim`).
    pub signing_key: String,
    pub webhooks: Vec<Webhook>,
    /// Each user's role in their organization: `owner`, `admin` or `user`.
    pub roles: HashMap<String, String>,
    pub requests: HashMap<String, u64>,
    pub refused_refreshes: u64,
    pub revoked: usize,
    pub deliveries_enabled: bool,
    pub forced_429: u32,
    pub unavailable: bool,
    pub latency: std::time::Duration,
    pub clock_offset: Duration,
    /// Serve one `next_page_token` forever on the events list (as Calendly's own OpenAPI
    /// examples do).
    pub repeat_page_token: bool,
    /// Deliveries as Calendly makes them on a bad day: each sent twice, batches in reverse
    /// order, and a refused one retried.
    pub chaotic_deliveries: bool,
    /// The most requests any user made in one rate-limit window.
    pub peak_window_requests: u32,
    /// Deliveries wait this long before they are sent.
    pub delivery_delay: std::time::Duration,
    /// Users whose webhook subscriptions Calendly refuses (403), with its message.
    pub webhook_refusals: HashMap<String, String>,
    /// Users whose access tokens the API refuses (401) though refreshes still succeed.
    pub refused_users: std::collections::HashSet<String>,
    /// Invitee lists that fail with this status, by event UUID.
    pub failing_events: HashMap<String, u16>,
    /// Calendly organizations on an Enterprise plan (data compliance deletions allowed).
    pub enterprise_organizations: std::collections::HashSet<String>,
    /// Invitee deletion requests accepted: `(organization URI, e-mails)`.
    pub invitee_deletions: Vec<(String, Vec<String>)>,
    /// Requests per user in the current minute window: (window start, count).
    pub rate_windows: HashMap<String, (DateTime<Utc>, u32)>,
    pub routing_forms: Vec<RoutingForm>,
    pub submissions: Vec<FormSubmission>,
}

/// Calendly's time format: UTC with microseconds.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl SimState {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn new(signing_key: &str) -> Self {
        Self { deliveries_enabled: true, signing_key: signing_key.to_string(), ..Self::default() }
    }

    /// The event with this UUID.
    pub fn event(&self, uuid: &str) -> Option<&Event> {
        self.event_index.get(uuid).and_then(|i| self.events.get(*i))
    }

    fn event_mut(&mut self, uuid: &str) -> Option<&mut Event> {
        let i = *self.event_index.get(uuid)?;
        self.events.get_mut(i)
    }

    /// The invitees of an event.
    pub fn invitees_of(&self, event_uuid: &str) -> impl Iterator<Item = &InviteeRecord> {
        self.invitees_by_event.get(event_uuid).into_iter().flatten().filter_map(|i| self.invitees.get(*i))
    }

    fn invitee_mut(&mut self, booked: &Booked) -> Option<&mut InviteeRecord> {
        let i = *self
            .invitees_by_event
            .get(&booked.event_uuid)?
            .iter()
            .find(|i| self.invitees.get(**i).is_some_and(|r| r.uuid == booked.invitee_uuid))?;
        self.invitees.get_mut(i)
    }

    fn invitee(&self, booked: &Booked) -> Option<&InviteeRecord> {
        self.invitees_of(&booked.event_uuid).find(|i| i.uuid == booked.invitee_uuid)
    }

    fn push_event(&mut self, event: Event) {
        self.event_index.insert(event.uuid.clone(), self.events.len());
        self.events.push(event);
    }

    fn push_invitee(&mut self, invitee: InviteeRecord) {
        self.invitees_by_event.entry(invitee.event_uuid.clone()).or_default().push(self.invitees.len());
        self.invitees.push(invitee);
    }

    /// The URI of `user`'s event type named `name`: each user has their own (colleagues' types
    /// of the same name are different event types, as at Calendly).
    pub fn event_type_uri(user_uuid: &str, name: &str) -> String {
        format!("{API}/event_types/{}", uuid::org_for(&format!("{user_uuid}|{name}")))
    }

    /// The members of `organization_uri`.
    pub fn members_of<'a>(&'a self, organization_uri: &'a str) -> impl Iterator<Item = &'a SimUser> {
        self.users.iter().filter(move |u| u.organization_uri == organization_uri)
    }

    pub fn count(&mut self, kind: &str) {
        *self.requests.entry(kind.to_string()).or_default() += 1;
    }

    pub fn add_user(&mut self, name: &str, email: &str) -> SimUser {
        let uuid = uuid();
        let user = SimUser {
            uri: format!("{API}/users/{uuid}"),
            organization_uri: format!("{API}/organizations/{}", uuid::org_for(&uuid)),
            uuid,
            name: name.into(),
            email: email.into(),
        };
        self.users.push(user.clone());
        // Alone in a new organization: its owner.
        self.roles.insert(user.uuid.clone(), "owner".into());
        user
    }

    /// `user`'s role in their organization.
    pub fn role(&self, user_uuid: &str) -> &str {
        self.roles.get(user_uuid).map_or("user", String::as_str)
    }

    /// Whether `viewer` may read `event`: its host, or an owner or admin of the host's
    /// organization (what organization-scoped access means at Calendly).
    pub fn can_see(&self, viewer_uuid: &str, event: &Event) -> bool {
        if event.user_uuid == viewer_uuid {
            return true;
        }
        let org_of = |uuid: &str| self.user(uuid).map(|u| u.organization_uri.clone());
        matches!(self.role(viewer_uuid), "owner" | "admin") && org_of(viewer_uuid) == org_of(&event.user_uuid)
    }

    /// A user in the same Calendly organization as `colleague`.
    pub fn add_colleague(&mut self, colleague: &SimUser, name: &str, email: &str) -> SimUser {
        let mut user = self.add_user(name, email);
        user.organization_uri = colleague.organization_uri.clone();
        if let Some(stored) = self.users.iter_mut().find(|u| u.uuid == user.uuid) {
            stored.organization_uri = user.organization_uri.clone();
        }
        self.roles.insert(user.uuid.clone(), "user".into());
        user
    }

    pub fn user(&self, uuid: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.uuid == uuid)
    }

    pub fn user_json(&self, user: &SimUser) -> Value {
        let slug = user.name.to_lowercase().replace(' ', "-");
        json!({
            "uri": user.uri,
            "name": user.name,
            "slug": slug,
            "email": user.email,
            "scheduling_url": format!("https://calendly.com/{slug}"),
            "timezone": "Europe/Paris",
            "avatar_url": null,
            "created_at": "2024-01-02T03:04:05.678123Z",
            "updated_at": "2024-01-02T03:04:05.678123Z",
            "current_organization": user.organization_uri,
            "resource_type": "User",
            "locale": "fr",
        })
    }
}

pub(crate) mod uuid {
    use sha2::{Digest, Sha256};

    /// A stable UUID-shaped id derived from `seed` (organization of a user, event type of a name).
    pub fn org_for(seed: &str) -> String {
        let h = hex::encode(Sha256::digest(seed.as_bytes()));
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}
