//! Calendly API v2 payloads, parsed at the edge. Unknown fields are tolerated everywhere.

use crate::domain::{BookingSnapshot, BookingStatus};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The OAuth token endpoint's answer.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token (Bearer), valid `expires_in` seconds.
    pub access_token: String,
    /// The refresh token: single-use, the next refresh needs the one it returns.
    pub refresh_token: String,
    /// Always `Bearer` (defaulted when absent).
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Seconds the access token lives (Calendly: 7,200).
    pub expires_in: i64,
    /// When the token was issued (Unix seconds).
    pub created_at: Option<i64>,
    /// The OAuth scopes granted, space-separated.
    pub scope: Option<String>,
    /// The Calendly user the tokens act for (a user URI).
    pub owner: Option<String>,
    /// That user's Calendly organization (an organization URI).
    pub organization: Option<String>,
}

fn bearer() -> String {
    "Bearer".into()
}

impl TokenResponse {
    /// When the access token expires (Calendly's `created_at` when given, else `now`).
    pub fn expires_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let issued = self.created_at.and_then(|t| Utc.timestamp_opt(t, 0).single()).unwrap_or(now);
        issued + chrono::Duration::seconds(self.expires_in)
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// `{"resource": …}`
#[derive(Debug, Deserialize)]
pub struct Resource<T> {
    /// The one resource.
    pub resource: T,
}

/// `{"collection": […], "pagination": {…}}`
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// This page's items.
    pub collection: Vec<T>,
    /// Where the next page is (absent on some endpoints' last page).
    #[serde(default)]
    pub pagination: Pagination,
}

/// Calendly's pagination block; a null `next_page_token` ends a list.
#[derive(Debug, Default, Deserialize)]
pub struct Pagination {
    /// Pass as `page_token` for the next page; `null` on the last.
    pub next_page_token: Option<String>,
}

/// `GET /users/me`.
#[derive(Clone, Debug, Deserialize)]
pub struct CalendlyUser {
    /// The user's URI (the key of the Calendly account everywhere).
    pub uri: String,
    /// Their name.
    pub name: String,
    /// Their e-mail.
    pub email: String,
    /// Their public booking page.
    pub scheduling_url: Option<String>,
    /// Their time zone (IANA name).
    pub timezone: Option<String>,
    /// Their Calendly organization's URI (every user has one, even alone).
    pub current_organization: String,
}

/// A scheduled event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// The event's URI.
    pub uri: String,
    /// The event type's name at booking time.
    pub name: Option<String>,
    /// `active` or `canceled`.
    pub status: String,
    /// When it starts.
    pub start_time: DateTime<Utc>,
    /// When it ends.
    pub end_time: DateTime<Utc>,
    /// The event type's URI.
    pub event_type: Option<String>,
    /// Where it takes place; its shape depends on `type` (physical, call, conferencing…).
    pub location: Option<Value>,
    /// `{total, active, limit}`: group events have several invitees.
    pub invitees_counter: Option<Value>,
    /// Present once canceled.
    pub cancellation: Option<Cancellation>,
    /// When it was booked.
    pub created_at: Option<DateTime<Utc>>,
    /// When Calendly last changed it.
    pub updated_at: DateTime<Utc>,
    /// The event's hosts.
    #[serde(default)]
    pub event_memberships: Vec<EventMembership>,
    /// The people the invitee added to the event.
    #[serde(default)]
    pub event_guests: Vec<EventGuest>,
}

/// A guest an invitee added to a scheduled event.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EventGuest {
    /// The guest's e-mail.
    pub email: String,
    /// When the guest was added.
    pub created_at: Option<DateTime<Utc>>,
}

/// One host of a scheduled event.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EventMembership {
    /// The host's user URI.
    pub user: String,
    /// The host's e-mail.
    pub user_email: Option<String>,
    /// The host's name.
    pub user_name: Option<String>,
}

/// A user's membership of a Calendly organization.
#[derive(Clone, Debug, Deserialize)]
pub struct OrganizationMembership {
    /// `owner`, `admin` or `user`.
    pub role: String,
    /// The member.
    pub user: MemberUser,
}

/// The user of a membership.
#[derive(Clone, Debug, Deserialize)]
pub struct MemberUser {
    /// The member's user URI.
    pub uri: String,
    /// The member's e-mail.
    pub email: Option<String>,
}

impl OrganizationMembership {
    /// Whether Calendly lets this member read the whole organization's bookings.
    pub fn manages_organization(&self) -> bool {
        matches!(self.role.as_str(), "owner" | "admin")
    }
}

impl ScheduledEvent {
    /// The event's UUID (last segment of its URI).
    pub fn uuid(&self) -> &str {
        last_segment(&self.uri)
    }

    /// What must change for the event's invitees to be fetched again at `now`. A no-show is
    /// marked on the invitee and leaves the event untouched, so for `NO_SHOW_WATCH` after an
    /// event ends its fingerprint also changes once a day: its invitees are re-read daily
    /// (at most 7 times), and a no-show marked without a webhook still gets its note.
    pub fn fingerprint_at(&self, now: DateTime<Utc>) -> String {
        let counter = self.invitees_counter.as_ref().map(Value::to_string).unwrap_or_default();
        let since_end = now - self.end_time;
        let watch = if since_end >= chrono::Duration::zero() && since_end < NO_SHOW_WATCH {
            format!("|ended+{}d", since_end.num_days())
        } else {
            String::new()
        };
        format!("{}|{}|{}{watch}", self.updated_at.timestamp_micros(), self.status, counter)
    }

    /// The video call's link, when the location is a conference.
    pub fn join_url(&self) -> Option<String> {
        self.location.as_ref()?.get("join_url").and_then(Value::as_str).map(String::from)
    }

    /// A readable location: the join URL of a conference, or the place's text.
    pub fn location_text(&self) -> Option<String> {
        let location = self.location.as_ref()?;
        ["join_url", "location"].iter().find_map(|key| location.get(key).and_then(Value::as_str)).map(String::from)
    }

    /// The invitee's phone number when the host calls them (`outbound_call`). An
    /// `inbound_call`'s number is the host's, where the invitee calls: not the invitee's.
    pub fn call_phone(&self) -> Option<String> {
        let location =
            self.location.as_ref().filter(|l| l.get("type").and_then(Value::as_str) == Some("outbound_call"))?;
        location.get("location").and_then(Value::as_str).map(str::trim).filter(|p| !p.is_empty()).map(String::from)
    }
}

/// A cancellation block (events and invitees).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cancellation {
    /// Who canceled (a name).
    pub canceled_by: Option<String>,
    /// Why, as they wrote it.
    pub reason: Option<String>,
    /// `host` or `invitee`.
    pub canceler_type: Option<String>,
    /// When it was canceled.
    pub created_at: Option<DateTime<Utc>>,
}

/// How long after an event ends its invitees are re-read (once a day) for no-shows.
pub const NO_SHOW_WATCH: chrono::Duration = chrono::Duration::days(7);

/// An invitee: one booking of a scheduled event.
#[derive(Clone, Debug, Deserialize)]
pub struct Invitee {
    /// The invitee's URI (under its event's URI).
    pub uri: String,
    /// The e-mail entered when booking.
    pub email: String,
    /// The name entered when booking.
    pub name: String,
    /// The first name, when the booking form asks for it separately.
    pub first_name: Option<String>,
    /// The last name, when the booking form asks for it separately.
    pub last_name: Option<String>,
    /// `active` or `canceled`.
    pub status: String,
    /// The invitee's time zone (IANA name).
    pub timezone: Option<String>,
    /// The number given for SMS reminders.
    pub text_reminder_number: Option<String>,
    /// Whether this booking was moved to another time (then `new_invitee` names it).
    #[serde(default)]
    pub rescheduled: bool,
    /// The booking this one replaced, when it is a reschedule.
    pub old_invitee: Option<String>,
    /// The booking that replaced this one.
    pub new_invitee: Option<String>,
    /// Present once canceled.
    pub cancellation: Option<Cancellation>,
    /// Present (an object) while the host marks the invitee a no-show.
    pub no_show: Option<Value>,
    /// When the booking was made.
    pub created_at: Option<DateTime<Utc>>,
    /// When Calendly last changed it.
    pub updated_at: DateTime<Utc>,
    /// Present in webhook payloads: the full event, so no API call is needed.
    pub scheduled_event: Option<ScheduledEvent>,
    /// The answers to the event type's questions.
    #[serde(default)]
    pub questions_and_answers: Vec<CalendlyAnswer>,
    /// The booking link's UTM parameters.
    pub tracking: Option<crate::domain::Tracking>,
    /// The routing form submission that led to this booking, if one did.
    #[serde(default)]
    pub routing_form_submission: Option<String>,
}

/// The answered questions, trimmed (an unanswered optional question is left out).
fn answered(answers: &[CalendlyAnswer]) -> Vec<crate::domain::QuestionAnswer> {
    answers
        .iter()
        .filter_map(|qa| {
            let answer = qa.answer.as_deref().map(str::trim).filter(|a| !a.is_empty())?;
            Some(crate::domain::QuestionAnswer { question: qa.question.trim().to_string(), answer: answer.into() })
        })
        .collect()
}

/// A no-show mark (`POST /invitee_no_shows`'s resource, an invitee's `no_show`).
#[derive(Clone, Debug, Deserialize)]
pub struct InviteeNoShow {
    /// The mark's URI (what `DELETE /invitee_no_shows/{uuid}` takes back).
    pub uri: String,
    /// When it was marked.
    pub created_at: Option<DateTime<Utc>>,
}

/// One of an invitee's `questions_and_answers`.
#[derive(Clone, Debug, Deserialize)]
pub struct CalendlyAnswer {
    /// The question as the event type asks it.
    pub question: String,
    /// The answer (absent for an unanswered optional question).
    #[serde(default)]
    pub answer: Option<String>,
}

impl Invitee {
    /// The invitee's UUID (last segment of its URI).
    pub fn uuid(&self) -> &str {
        last_segment(&self.uri)
    }

    /// Combines the invitee with its event into what the CRM records.
    pub fn snapshot(&self, event: &ScheduledEvent) -> BookingSnapshot {
        let canceled = self.status == "canceled" || event.status == "canceled";
        let cancellation = self.cancellation.as_ref().or(event.cancellation.as_ref()).filter(|_| canceled);
        BookingSnapshot {
            invitee_uri: self.uri.clone(),
            invitee_uuid: self.uuid().to_string(),
            event_uri: event.uri.clone(),
            event_uuid: event.uuid().to_string(),
            event_type_uri: event.event_type.clone(),
            event_name: event.name.clone(),
            start_time: event.start_time,
            end_time: event.end_time,
            status: if canceled { BookingStatus::Canceled } else { BookingStatus::Active },
            invitee_email: self.email.trim().to_string(),
            invitee_name: self.name.trim().to_string(),
            invitee_first_name: self.first_name.clone(),
            invitee_last_name: self.last_name.clone(),
            invitee_phone: self.text_reminder_number.clone(),
            call_phone: event.call_phone(),
            guests: event
                .event_guests
                .iter()
                .map(|g| crate::domain::booking::Guest { email: g.email.trim().to_string(), created_at: g.created_at })
                .collect(),
            invitee_timezone: self.timezone.clone(),
            location: event.location_text(),
            rescheduled: self.rescheduled,
            old_invitee_uri: self.old_invitee.clone(),
            new_invitee_uri: self.new_invitee.clone(),
            no_show: self.no_show.as_ref().is_some_and(|v| !v.is_null()),
            no_show_uri: self.no_show.as_ref().and_then(|v| v.get("uri")).and_then(Value::as_str).map(String::from),
            no_show_changed_at: self
                .no_show
                .as_ref()
                .and_then(|v| v.get("created_at"))
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok()),
            cancel_reason: cancellation.and_then(|c| c.reason.clone()),
            canceled_by: cancellation.and_then(|c| c.canceled_by.clone()),
            canceled_at: cancellation.and_then(|c| c.created_at),
            invitee_updated_at: self.updated_at,
            invitee_created_at: self.created_at,
            routing_form_submission: self.routing_form_submission.as_deref().map(|u| last_segment(u).to_string()),
            questions: answered(&self.questions_and_answers),
            tracking: self.tracking.clone().unwrap_or_default(),
            host: event.event_memberships.first().map(|m| crate::domain::Host {
                user_uri: m.user.clone(),
                name: m.user_name.clone(),
                email: m.user_email.clone(),
            }),
            join_url: event.join_url(),
        }
        .bounded()
    }
}

/// An event type of the user (what bookings can be filtered by).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventType {
    /// The event type's URI.
    pub uri: String,
    /// Its name.
    pub name: Option<String>,
    /// Whether it can be booked.
    #[serde(default)]
    pub active: bool,
    /// The last segment of its booking page's URL.
    pub slug: Option<String>,
    /// Its public booking page.
    pub scheduling_url: Option<String>,
    /// Whose it is (in an organization listing, each member has their own types).
    #[serde(default)]
    pub profile: Option<EventTypeProfile>,
}

/// The owner of an event type, as Calendly's `profile` gives it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct EventTypeProfile {
    /// The owner's name.
    pub name: Option<String>,
    /// The owner's URI (a user's for `type: User`).
    pub owner: Option<String>,
}

/// A webhook subscription.
#[derive(Clone, Debug, Deserialize)]
pub struct WebhookSubscription {
    /// The subscription's URI.
    pub uri: String,
    /// Where Calendly delivers.
    pub callback_url: String,
    /// `active` or `disabled` (Calendly disables after failed deliveries).
    pub state: String,
    /// When Calendly started retrying failed deliveries, if it is.
    pub retry_started_at: Option<DateTime<Utc>>,
    /// The events it delivers (e.g. `invitee.created`).
    #[serde(default)]
    pub events: Vec<String>,
    /// The user it delivers for (user-scoped subscriptions).
    pub user: Option<String>,
    /// `user` or `organization`.
    #[serde(default)]
    pub scope: Option<String>,
    /// When it was created (it delivers since).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl WebhookSubscription {
    /// Whether Calendly is delivering to it.
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

/// The events our subscriptions ask for, and the only ones a delivery is acted on for.
pub const WEBHOOK_EVENTS: [&str; 4] =
    ["invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted"];
/// A routing form's submission: asked for by organization-scope subscriptions whose token
/// reads routing forms.
pub const ROUTING_FORM_EVENT: &str = "routing_form_submission.created";

impl RoutingFormSubmission {
    /// What the CRM records of it, its form named `form_name`.
    pub fn snapshot(&self, form_name: Option<String>) -> crate::domain::routing::SubmissionSnapshot {
        crate::domain::routing::SubmissionSnapshot {
            uuid: last_segment(&self.uri).to_string(),
            form_name,
            answers: answered(&self.questions_and_answers),
            tracking: self.tracking.clone().unwrap_or_default(),
            created_at: self.created_at,
        }
        .bounded()
    }
}

/// A routing form of the Calendly organization.
#[derive(Clone, Debug, Deserialize)]
pub struct RoutingForm {
    /// Its URI.
    pub uri: String,
    /// Its name.
    pub name: String,
}

/// One submission of a routing form (a list item, and the `routing_form_submission.created`
/// payload).
#[derive(Clone, Debug, Deserialize)]
pub struct RoutingFormSubmission {
    /// Its URI.
    pub uri: String,
    /// The form's URI.
    pub routing_form: String,
    /// The answers, in the form's order.
    #[serde(default)]
    pub questions_and_answers: Vec<CalendlyAnswer>,
    /// The form link's UTM parameters.
    pub tracking: Option<crate::domain::Tracking>,
    /// The invitee who booked after it (an invitee URI), once they did.
    pub submitter: Option<String>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
}

/// The UUID at the end of a Calendly URI.
pub fn last_segment(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &str = include_str!("../../tests/fixtures/webhook_invitee_created.json");

    #[test]
    fn a_captured_delivery_becomes_a_booking_snapshot() {
        let envelope: Value = serde_json::from_str(CAPTURED).unwrap();
        let invitee: Invitee = serde_json::from_value(envelope["payload"].clone()).unwrap();
        let event = invitee.scheduled_event.clone().unwrap();
        let snap = invitee.snapshot(&event);
        assert_eq!(snap.invitee_uuid, "3e39fe12-9338-448d-b760-2217a35cc0a7");
        assert_eq!(snap.event_uuid, "9a15cc4a-c99d-48e4-bc2b-b363b35c669c");
        assert_eq!(snap.status, BookingStatus::Active);
        assert_eq!(snap.names(), (Some("test".into()), Some("account".into())));
        assert_eq!(
            snap.location.as_deref(),
            Some("https://calendly.com/events/9a15cc4a-c99d-48e4-bc2b-b363b35c669c/google_meet")
        );
        assert!(!snap.no_show);
    }

    #[test]
    fn only_an_outbound_call_gives_the_invitee_s_phone_and_guests_are_kept() {
        let envelope: Value = serde_json::from_str(CAPTURED).unwrap();
        let mut event: Value = envelope["payload"]["scheduled_event"].clone();
        event["event_guests"] = serde_json::json!([{ "email": " guest@example.com ", "created_at": "2026-01-10T10:00:00.000000Z", "updated_at": "2026-01-10T10:00:00.000000Z" }]);
        let phone_of = |location: Value| {
            let mut e = event.clone();
            e["location"] = location;
            serde_json::from_value::<ScheduledEvent>(e).unwrap().call_phone()
        };
        assert_eq!(
            phone_of(serde_json::json!({ "type": "outbound_call", "location": " +33 6 12 34 56 78 " })).as_deref(),
            Some("+33 6 12 34 56 78")
        );
        assert_eq!(phone_of(serde_json::json!({ "type": "inbound_call", "location": "+33 1 00 00 00 00" })), None);
        assert_eq!(phone_of(serde_json::json!({ "type": "physical", "location": "Paris" })), None);
        assert_eq!(phone_of(Value::Null), None);

        let invitee: Invitee = serde_json::from_value(envelope["payload"].clone()).unwrap();
        let snap = invitee.snapshot(&serde_json::from_value(event).unwrap());
        assert_eq!(snap.guests.len(), 1);
        assert_eq!(snap.guests[0].email, "guest@example.com");
    }
}
