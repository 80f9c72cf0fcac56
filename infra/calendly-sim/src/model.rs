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

    pub fn approve(
        &mut self,
        config: &SimConfig,
        user_uuid: &str,
        query: &HashMap<String, String>,
    ) -> Result<String, String> {
        let param = |k: &str| query.get(k).cloned().ok_or_else(|| format!("missing {k}"));
        if param("client_id")? != config.client_id {
            return Err("unknown client_id".into());
        }
        if param("response_type")? != "code" {
            return Err("response_type must be code".into());
        }
        if param("code_challenge_method")? != "S256" {
            return Err("code_challenge_method must be S256".into());
        }
        // Calendly grants what was requested and the app is registered for, nothing more.
        let scope = param("scope")?;
        if let Some(unknown) = scope.split(' ').find(|s| !CATALOG.contains(s)) {
            return Err(format!("unknown scope {unknown}"));
        }
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| self.app_scopes.as_ref().is_none_or(|app| app.iter().any(|a| a == s)))
            .map(String::from)
            .collect();
        let code = random(24);
        let expires_at = self.now() + Duration::minutes(10);
        self.codes.insert(
            code.clone(),
            Code {
                user_uuid: user_uuid.into(),
                scopes,
                redirect_uri: param("redirect_uri")?,
                challenge: param("code_challenge")?,
                expires_at,
            },
        );
        Ok(code)
    }

    /// Exchanges a code; Err is an RFC 6749 error code.
    pub fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Value, (&'static str, &'static str)> {
        let grant = self
            .codes
            .remove(code)
            .ok_or(("invalid_grant", "The provided authorization grant is invalid, expired or revoked"))?;
        if grant.expires_at < self.now() {
            return Err(("invalid_grant", "The authorization code has expired"));
        }
        if redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(("invalid_grant", "The redirect_uri does not match the authorization request"));
        }
        let verifier = verifier.ok_or(("invalid_request", "code_verifier is required"))?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if challenge != grant.challenge {
            return Err(("invalid_grant", "The code_verifier does not match the code_challenge"));
        }
        Ok(self.issue_tokens(&Grant { user_uuid: grant.user_uuid, scopes: grant.scopes }))
    }

    /// Single-use refresh: the old token dies at once.
    pub fn refresh(&mut self, token: &str) -> Result<Value, (&'static str, &'static str)> {
        match self.refresh_tokens.remove(token) {
            Some(grant) => {
                self.used_refresh_tokens.insert(token.to_string(), grant.user_uuid.clone());
                Ok(self.issue_tokens(&grant))
            }
            None => {
                self.refused_refreshes += 1;
                Err((
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, or was issued to another client",
                ))
            }
        }
    }

    fn issue_tokens(&mut self, grant: &Grant) -> Value {
        let now = self.now();
        // Recognizable, so a scan of the product's logs can tell a leaked token.
        let access = format!("calsim-access-{}", random(40));
        let refresh = format!("calsim-refresh-{}", random(32));
        let user_uuid = grant.user_uuid.clone();
        self.access_tokens.insert(
            access.clone(),
            AccessToken {
                user_uuid: user_uuid.clone(),
                expires_at: now + Duration::seconds(ACCESS_TOKEN_SECONDS),
                scopes: grant.scopes.clone(),
            },
        );
        self.refresh_tokens.insert(refresh.clone(), grant.clone());
        let org = self.user(&user_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let mut answer = json!({
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "created_at": now.timestamp(),
            "refresh_token": refresh,
            "access_token": access,
            "scope": grant.scopes.join(" "),
            "owner": format!("{API}/users/{user_uuid}"),
            "organization": org,
        });
        if self.omit_token_scope {
            answer.as_object_mut().map(|a| a.remove("scope"));
        }
        answer
    }

    /// The user removes the app in Calendly: every token of theirs dies, refreshes answer
    /// `invalid_grant`.
    pub fn revoke_grant(&mut self, user_uuid: &str) {
        self.access_tokens.retain(|_, t| t.user_uuid != user_uuid);
        self.refresh_tokens.retain(|_, g| g.user_uuid != user_uuid);
    }

    pub fn revoke(&mut self, token: &str) {
        let removed = self.access_tokens.remove(token).is_some() | self.refresh_tokens.remove(token).is_some();
        if removed {
            self.revoked += 1;
        }
    }

    /// The user an access token belongs to and its scopes, if it is valid now.
    pub fn authenticate(&self, token: &str) -> Option<(String, Vec<String>)> {
        let t = self.access_tokens.get(token)?;
        (t.expires_at > self.now()).then(|| (t.user_uuid.clone(), t.scopes.clone()))
    }

    /// Counts a request against the user's window (real time, like Calendly's minute); returns
    /// (limit, remaining, reset secs) or 429. The reset is whole seconds rounded down, as
    /// Calendly sends it.
    pub fn rate_limit(&mut self, user: &str, limit: u32, length: std::time::Duration) -> Result<(u32, u32, i64), i64> {
        let now = Utc::now();
        let length = Duration::from_std(length).unwrap_or(Duration::minutes(1));
        let window = self.rate_windows.entry(user.to_string()).or_insert((now, 0));
        if now - window.0 >= length {
            *window = (now, 0);
        }
        let reset = (window.0 + length - now).num_seconds().max(0);
        if self.forced_429 > 0 {
            self.forced_429 -= 1;
            return Err(1);
        }
        if window.1 >= limit {
            return Err(reset);
        }
        window.1 += 1;
        let used = window.1;
        self.peak_window_requests = self.peak_window_requests.max(used);
        Ok((limit, limit - window.1, reset))
    }

    fn new_booking(&mut self, user_uuid: &str, spec: BookingSpec, old_invitee: Option<String>) -> Booked {
        let now = self.now();
        let event_uuid = uuid();
        let invitee_uuid = uuid();
        self.push_event(Event {
            uuid: event_uuid.clone(),
            user_uuid: user_uuid.into(),
            name: spec.event_name.clone(),
            start: spec.start_time,
            end: spec.start_time + Duration::minutes(spec.duration_minutes),
            status: "active".into(),
            created_at: now,
            updated_at: now,
            cancellation: None,
            join_url: spec.join_url.clone(),
            call_phone: spec.call_phone.clone(),
            guests: spec.guests.iter().map(|g| (g.clone(), now)).collect(),
        });
        self.push_invitee(InviteeRecord {
            uuid: invitee_uuid.clone(),
            event_uuid: event_uuid.clone(),
            spec,
            status: "active".into(),
            rescheduled: false,
            old_invitee,
            new_invitee: None,
            cancellation: None,
            no_show: None,
            created_at: now,
            updated_at: now,
        });
        Booked { event_uuid, invitee_uuid }
    }

    pub fn book_silently(&mut self, user_uuid: &str, spec: BookingSpec) -> Booked {
        self.new_booking(user_uuid, spec, None)
    }

    /// A group event: one scheduled event with every one of `specs` as its invitees (the
    /// event's name, time and length are the first spec's).
    pub fn book_group_silently(&mut self, user_uuid: &str, specs: Vec<BookingSpec>) -> Vec<Booked> {
        let mut specs = specs.into_iter();
        let Some(first) = specs.next() else { return Vec::new() };
        let head = self.book_silently(user_uuid, first);
        let now = self.now();
        let mut booked = vec![head.clone()];
        for spec in specs {
            let invitee_uuid = uuid();
            self.push_invitee(InviteeRecord {
                uuid: invitee_uuid.clone(),
                event_uuid: head.event_uuid.clone(),
                spec,
                status: "active".into(),
                rescheduled: false,
                old_invitee: None,
                new_invitee: None,
                cancellation: None,
                no_show: None,
                created_at: now,
                updated_at: now,
            });
            booked.push(Booked { event_uuid: head.event_uuid.clone(), invitee_uuid });
        }
        booked
    }

    pub fn book(&mut self, user_uuid: &str, spec: BookingSpec) -> (Booked, Vec<Delivery>) {
        let booked = self.book_silently(user_uuid, spec);
        let deliveries = self.deliveries_for("invitee.created", &booked);
        (booked, deliveries)
    }

    fn cancel_record(&mut self, booked: &Booked, reason: &str, rescheduled_to: Option<String>) {
        let now = self.now();
        let cancellation = json!({
            "canceled_by": "Invitee",
            "reason": reason,
            "canceler_type": "invitee",
            "created_at": time(now),
        });
        if let Some(i) = self.invitee_mut(booked) {
            i.status = "canceled".into();
            i.rescheduled = rescheduled_to.is_some();
            i.new_invitee = rescheduled_to;
            i.cancellation = Some(cancellation.clone());
            i.updated_at = now;
        }
        if let Some(e) = self.event_mut(&booked.event_uuid) {
            e.status = "canceled".into();
            e.cancellation = Some(cancellation);
            e.updated_at = now;
        }
    }

    pub fn cancel(&mut self, booked: &Booked, reason: &str) -> Vec<Delivery> {
        self.cancel_record(booked, reason, None);
        self.deliveries_for("invitee.canceled", booked)
    }

    pub fn reschedule(&mut self, booked: &Booked, new_start: DateTime<Utc>) -> (Booked, Vec<Delivery>) {
        let Some(old) = self.invitee(booked) else {
            return (booked.clone(), Vec::new());
        };
        let mut spec = old.spec.clone();
        spec.start_time = new_start;
        let user_uuid = self.event(&booked.event_uuid).map(|e| e.user_uuid.clone()).unwrap_or_default();
        let new = self.new_booking(&user_uuid, spec, Some(booked.invitee_uri()));
        self.cancel_record(booked, "Rescheduled", Some(new.invitee_uri()));
        let mut deliveries = self.deliveries_for("invitee.canceled", booked);
        deliveries.extend(self.deliveries_for("invitee.created", &new));
        (new, deliveries)
    }

    pub fn set_no_show(&mut self, booked: &Booked, no_show: bool) -> Vec<Delivery> {
        let now = self.now();
        if let Some(i) = self.invitee_mut(booked) {
            i.no_show = no_show
                .then(|| json!({ "uri": format!("{API}/invitee_no_shows/{}", uuid()), "created_at": time(now) }));
            i.updated_at = now;
        }
        self.deliveries_for(if no_show { "invitee_no_show.created" } else { "invitee_no_show.deleted" }, booked)
    }

    /// `POST /invitee_no_shows` by `viewer`: the invitee must be theirs to see, its event
    /// started and not canceled, and not already marked. The no-show's resource and the echo
    /// deliveries, or Calendly's refusal.
    pub fn mark_no_show(&mut self, viewer: &str, invitee_uri: &str) -> Result<(Value, Vec<Delivery>), (u16, String)> {
        let mut segments = invitee_uri.trim_end_matches('/').rsplit('/');
        let (invitee_uuid, event_uuid) = (segments.next().unwrap_or_default(), segments.nth(1).unwrap_or_default());
        let booked = Booked { event_uuid: event_uuid.into(), invitee_uuid: invitee_uuid.into() };
        let now = self.now();
        let Some(event) = self.event(event_uuid).filter(|e| self.can_see(viewer, e)) else {
            return Err((404, "The server could not find the requested resource.".into()));
        };
        if event.start > now {
            return Err((400, "The event has not started yet".into()));
        }
        let Some(invitee) = self.invitee(&booked) else {
            return Err((404, "The server could not find the requested resource.".into()));
        };
        if invitee.status != "active" {
            return Err((400, "A canceled invitee can't be marked as a no-show".into()));
        }
        if invitee.no_show.is_some() {
            return Err((422, "The invitee is already marked as a no-show".into()));
        }
        let deliveries = self.set_no_show(&booked, true);
        let marked = self.invitee(&booked).and_then(|i| i.no_show.clone()).unwrap_or_default();
        let resource = json!({ "uri": marked["uri"], "invitee": invitee_uri, "created_at": marked["created_at"] });
        Ok((resource, deliveries))
    }

    /// `DELETE /invitee_no_shows/{uuid}` by `viewer`: the echo deliveries, or 404.
    pub fn unmark_no_show(&mut self, viewer: &str, no_show_uuid: &str) -> Result<Vec<Delivery>, (u16, String)> {
        let uri = format!("{API}/invitee_no_shows/{no_show_uuid}");
        let found = self.invitees.iter().find(|i| i.no_show.as_ref().is_some_and(|n| n["uri"] == uri.as_str()));
        let booked = found.map(|i| Booked { event_uuid: i.event_uuid.clone(), invitee_uuid: i.uuid.clone() });
        let visible = booked.as_ref().and_then(|b| self.event(&b.event_uuid)).is_some_and(|e| self.can_see(viewer, e));
        match booked.filter(|_| visible) {
            Some(booked) => Ok(self.set_no_show(&booked, false)),
            None => Err((404, "The server could not find the requested resource.".into())),
        }
    }

    pub fn event_json(&self, e: &Event) -> Value {
        let user = self.user(&e.user_uuid);
        let invitees: Vec<&InviteeRecord> = self.invitees_of(&e.uuid).collect();
        let active = invitees.iter().filter(|i| i.status == "active").count();
        let mut event = json!({
            "uri": format!("{API}/scheduled_events/{}", e.uuid),
            "name": e.name,
            "meeting_notes_plain": null,
            "meeting_notes_html": null,
            "status": e.status,
            "start_time": time(e.start),
            "end_time": time(e.end),
            "event_type": Self::event_type_uri(&e.user_uuid, &e.name),
            "location": match (&e.join_url, &e.call_phone) {
                (Some(url), _) => json!({ "type": "zoom", "status": "pushed", "join_url": url, "data": { "id": 81234567890u64 } }),
                (None, Some(phone)) => json!({ "type": "outbound_call", "location": phone }),
                (None, None) => json!({ "type": "physical", "location": "12 rue de la Paix, Paris" }),
            },
            "invitees_counter": { "total": invitees.len(), "active": active, "limit": invitees.len().max(1) },
            "created_at": time(e.created_at),
            "updated_at": time(e.updated_at),
            "event_memberships": [{ "user": user.map(|u| u.uri.clone()), "user_email": user.map(|u| u.email.clone()), "user_name": user.map(|u| u.name.clone()) }],
            "event_guests": e.guests.iter().map(|(email, at)| json!({ "email": email, "created_at": time(*at), "updated_at": time(*at) })).collect::<Vec<_>>(),
        });
        if let Some(c) = &e.cancellation {
            event["cancellation"] = c.clone();
        }
        event
    }

    pub fn invitee_json(&self, i: &InviteeRecord) -> Value {
        json!({
            "uri": format!("{API}/scheduled_events/{}/invitees/{}", i.event_uuid, i.uuid),
            "email": i.spec.invitee_email,
            "first_name": i.spec.first_name,
            "last_name": i.spec.last_name,
            "name": i.spec.invitee_name,
            "status": i.status,
            "questions_and_answers": i.spec.questions.iter().enumerate().map(|(position, (q, a))| json!({ "question": q, "answer": a, "position": position })).collect::<Vec<_>>(),
            "timezone": "Europe/Paris",
            "event": format!("{API}/scheduled_events/{}", i.event_uuid),
            "created_at": time(i.created_at),
            "updated_at": time(i.updated_at),
            "tracking": {
                "utm_campaign": i.spec.utm.as_ref().map(|u| u.2.clone()),
                "utm_source": i.spec.utm.as_ref().map(|u| u.0.clone()),
                "utm_medium": i.spec.utm.as_ref().map(|u| u.1.clone()),
                "utm_content": null, "utm_term": null, "salesforce_uuid": null
            },
            "text_reminder_number": i.spec.text_reminder_number,
            "rescheduled": i.rescheduled,
            "old_invitee": i.old_invitee,
            "new_invitee": i.new_invitee,
            "cancel_url": format!("https://calendly.com/cancellations/{}", i.uuid),
            "reschedule_url": format!("https://calendly.com/reschedulings/{}", i.uuid),
            "routing_form_submission": i.spec.routing_form_submission,
            "cancellation": i.cancellation,
            "payment": null,
            "no_show": i.no_show,
            "reconfirmation": null,
            "scheduling_method": null,
            "invitee_scheduled_by": null,
        })
    }

    /// The envelope Calendly posts for `event` about `booked`.
    pub fn delivery_body(&self, event: &str, booked: &Booked) -> Vec<u8> {
        let Some(invitee) = self.invitee(booked) else {
            return b"{}".to_vec();
        };
        let scheduled = self.event(&booked.event_uuid);
        let mut payload = self.invitee_json(invitee);
        if let Some(e) = scheduled {
            payload["scheduled_event"] = self.event_json(e);
        }
        let created_by = scheduled.and_then(|e| self.user(&e.user_uuid)).map(|u| u.uri.clone());
        let envelope = json!({
            "created_at": time(self.now()),
            "created_by": created_by,
            "event": event,
            "payload": payload,
        });
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// A delivery of this subscription failed: Calendly notes when its retries started.
    pub fn retry_started(&mut self, subscription_uuid: &str) {
        let now = self.now();
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid) {
            w.retry_started_at.get_or_insert(now);
        }
    }

    /// A delivery got through: the subscription is healthy again.
    pub fn delivered(&mut self, subscription_uuid: &str) {
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid) {
            w.retry_started_at = None;
        }
    }

    /// Retries ran out with nothing delivered since they started: the subscription is disabled.
    pub fn disable_after_retries(&mut self, subscription_uuid: &str) {
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid && w.retry_started_at.is_some())
        {
            w.state = "disabled".into();
        }
    }

    /// A routing form of `owner`'s organization.
    pub fn add_routing_form(&mut self, owner_uuid: &str, name: &str, questions: &[&str]) -> String {
        let organization_uri = self.user(owner_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let form = RoutingForm {
            uuid: uuid(),
            organization_uri,
            name: name.into(),
            questions: questions.iter().map(|q| q.to_string()).collect(),
            created_at: self.now(),
        };
        let uri = form.uri();
        self.routing_forms.push(form);
        uri
    }

    /// Someone fills a routing form in: the submission, and its `routing_form_submission.created`
    /// deliveries (to the form's organization's subscriptions that asked for it).
    pub fn submit_form(&mut self, form_uri: &str, answers: Vec<(String, String)>) -> (String, Vec<Delivery>) {
        let now = self.now();
        let submission = FormSubmission {
            uuid: uuid(),
            form_uuid: form_uri.rsplit('/').next().unwrap_or_default().to_string(),
            answers,
            submitter: None,
            created_at: now,
            updated_at: now,
        };
        let uri = submission.uri();
        let uuid = submission.uuid.clone();
        self.submissions.push(submission);
        let deliveries = self.submission_deliveries(&uuid);
        (uri, deliveries)
    }

    /// The booking a submission routed to: the invitee names the submission, the submission
    /// its submitter.
    pub fn book_after_form(
        &mut self,
        user_uuid: &str,
        mut spec: BookingSpec,
        submission_uri: &str,
    ) -> (Booked, Vec<Delivery>) {
        spec.routing_form_submission = Some(submission_uri.to_string());
        let (booked, deliveries) = self.book(user_uuid, spec);
        let now = self.now();
        let submitter = booked.invitee_uri();
        if let Some(s) = self.submissions.iter_mut().find(|s| s.uri() == submission_uri) {
            s.submitter = Some(submitter);
            s.updated_at = now;
        }
        (booked, deliveries)
    }

    pub fn submission_deliveries(&self, submission_uuid: &str) -> Vec<Delivery> {
        const EVENT: &str = "routing_form_submission.created";
        if !self.deliveries_enabled {
            return Vec::new();
        }
        let Some(submission) = self.submissions.iter().find(|s| s.uuid == submission_uuid) else { return Vec::new() };
        let Some(form) = self.routing_forms.iter().find(|f| f.uuid == submission.form_uuid) else { return Vec::new() };
        self.webhooks
            .iter()
            .filter(|w| w.state == "active" && w.scope == "organization" && w.organization_uri == form.organization_uri)
            .filter(|w| w.events.iter().any(|e| e == EVENT))
            .map(|w| {
                let envelope = json!({
                    "created_at": time(self.now()),
                    "created_by": format!("{API}/users/{}", w.user_uuid),
                    "event": EVENT,
                    "payload": submission.to_json(),
                });
                Delivery {
                    subscription_uuid: w.uuid.clone(),
                    url: w.callback_url.clone(),
                    body: serde_json::to_vec(&envelope).unwrap_or_default(),
                }
            })
            .collect()
    }

    fn deliveries_for(&mut self, event: &str, booked: &Booked) -> Vec<Delivery> {
        if !self.deliveries_enabled {
            return Vec::new();
        }
        let Some(user_uuid) = self.event(&booked.event_uuid).map(|e| e.user_uuid.clone()) else {
            return Vec::new();
        };
        let host_org = self.user(&user_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let body = self.delivery_body(event, booked);
        self.webhooks
            .iter()
            .filter(|w| w.state == "active" && w.events.iter().any(|e| e == event))
            .filter(|w| match w.scope.as_str() {
                "organization" => w.organization_uri == host_org,
                _ => w.user_uuid == user_uuid,
            })
            .map(|w| {
                // An organization subscription's deliveries name its creator as `created_by`.
                let body = match w.scope.as_str() {
                    "organization" => with_created_by(&body, &format!("{API}/users/{}", w.user_uuid)),
                    _ => body.clone(),
                };
                Delivery { subscription_uuid: w.uuid.clone(), url: w.callback_url.clone(), body }
            })
            .collect()
    }
}

fn with_created_by(body: &[u8], creator: &str) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut envelope) => {
            envelope["created_by"] = json!(creator);
            serde_json::to_vec(&envelope).unwrap_or_default()
        }
        Err(_) => body.to_vec(),
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
