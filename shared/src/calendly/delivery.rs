//! Calendly's webhook deliveries, parsed once at the edge into what the product reads: the
//! envelope's event, time and creator, the Calendly users the delivery is about, and its
//! payload as an invitee (whole, or named by its URI) or a routing form submission. Unknown
//! fields are ignored, as Calendly adds fields without notice.

use super::{Invitee, ROUTING_FORM_EVENT, RoutingFormSubmission};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// An invitee's URI: `https://api.calendly.com/scheduled_events/{event}/invitees/{invitee}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteeUri {
    uri: String,
    event_uuid: String,
    invitee_uuid: String,
}

impl InviteeUri {
    /// The URI, when it names an invitee under a scheduled event.
    pub fn parse(uri: &str) -> Option<Self> {
        let mut segments = uri.trim_end_matches('/').rsplit('/');
        let (invitee, invitees, event, events) =
            (segments.next()?, segments.next()?, segments.next()?, segments.next()?);
        let named = invitees == "invitees" && events == "scheduled_events" && !invitee.is_empty() && !event.is_empty();
        named.then(|| Self { uri: uri.to_string(), event_uuid: event.to_string(), invitee_uuid: invitee.to_string() })
    }
    /// The URI as Calendly wrote it.
    pub fn as_str(&self) -> &str {
        &self.uri
    }
    /// The scheduled event's UUID.
    pub fn event_uuid(&self) -> &str {
        &self.event_uuid
    }
    /// The invitee's UUID.
    pub fn invitee_uuid(&self) -> &str {
        &self.invitee_uuid
    }
}

/// What a delivery's payload is, as far as the product uses it.
#[derive(Clone, Debug)]
pub enum DeliveredPayload {
    /// The whole invitee (`invitee.*`, or a no-show embedding it), its `scheduled_event`
    /// embedded or not.
    Invitee(Box<Invitee>),
    /// Only the invitee's URI (a no-show shaped `{uri, invitee: "<invitee uri>", created_at}`).
    InviteeNamed(InviteeUri),
    /// A routing form submission (`routing_form_submission.created`).
    Submission(Box<RoutingFormSubmission>),
    /// A payload the product can't use, and why.
    Unusable(String),
}

/// One signed delivery, parsed.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The event (`invitee.created`, `invitee_no_show.deleted`, …).
    pub event: String,
    /// When the change happened: orders no-show toggles delivered out of order.
    pub created_at: Option<DateTime<Utc>>,
    /// The payload's own time (a no-show's creation).
    pub payload_created_at: Option<DateTime<Utc>>,
    /// The Calendly user whose subscription sent it.
    pub created_by: Option<String>,
    /// The hosts of the delivery's event (none when the payload leaves its event out).
    pub event_hosts: Vec<String>,
    /// The invitee the delivery is about, when it names one (even in a payload otherwise unusable).
    pub invitee_uri: Option<InviteeUri>,
    /// The payload.
    pub payload: DeliveredPayload,
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    created_at: Option<DateTime<Utc>>,
    created_by: Option<String>,
    payload: Value,
}

/// The parts of any payload that say who and what it is about, read leniently.
#[derive(Deserialize, Default)]
struct Outline {
    uri: Option<String>,
    /// A no-show's invitee: its URI, or embedded.
    invitee: Option<NoShowInvitee>,
    scheduled_event: Option<EventOutline>,
    created_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NoShowInvitee {
    Named(String),
    Embedded(EmbeddedOutline),
}

#[derive(Deserialize)]
struct EmbeddedOutline {
    uri: Option<String>,
    scheduled_event: Option<EventOutline>,
}

#[derive(Deserialize)]
struct EventOutline {
    #[serde(default)]
    event_memberships: Vec<MemberOutline>,
}

#[derive(Deserialize)]
struct MemberOutline {
    user: Option<String>,
}

impl Delivery {
    /// Parses a delivery's body (`Err`: not a Calendly webhook envelope, and why).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| format!("not a Calendly webhook envelope: {}", why(&e)))?;
        // An `invitee.*` payload is the invitee: it has the e-mail.
        let is_invitee = envelope.payload.as_object().is_some_and(|fields| fields.contains_key("email"));
        let outline = Outline::deserialize(&envelope.payload).unwrap_or_default();
        let (invitee_uri, embedded_event) = match (is_invitee, outline.invitee) {
            (false, Some(NoShowInvitee::Named(uri))) => (Some(uri), None),
            (false, Some(NoShowInvitee::Embedded(embedded))) => (embedded.uri, embedded.scheduled_event),
            _ => (outline.uri, None),
        };
        let event_hosts = outline
            .scheduled_event
            .or(embedded_event)
            .map(|e| e.event_memberships.into_iter().filter_map(|m| m.user).collect())
            .unwrap_or_default();
        let invitee_uri = invitee_uri.as_deref().and_then(InviteeUri::parse);
        let payload = payload_of(&envelope.event, envelope.payload, is_invitee);
        Ok(Self {
            event: envelope.event,
            created_at: envelope.created_at,
            payload_created_at: outline.created_at,
            created_by: envelope.created_by,
            event_hosts,
            invitee_uri,
            payload,
        })
    }

    /// The Calendly users the delivery is about: who created the subscription, then the event's hosts.
    pub fn about_users(&self) -> impl Iterator<Item = &str> {
        self.created_by.iter().chain(&self.event_hosts).map(String::as_str)
    }
}

/// The payload as an invitee (itself, or a no-show's) or a routing form submission.
fn payload_of(event: &str, payload: Value, is_invitee: bool) -> DeliveredPayload {
    if event == ROUTING_FORM_EVENT {
        return match serde_json::from_value(payload) {
            Ok(submission) => DeliveredPayload::Submission(Box::new(submission)),
            Err(e) => DeliveredPayload::Unusable(format!("the payload is not a routing form submission: {}", why(&e))),
        };
    }
    let candidate = match payload {
        payload if is_invitee => payload,
        Value::Object(mut fields) => match fields.remove("invitee") {
            Some(Value::String(uri)) => match InviteeUri::parse(&uri) {
                Some(named) => return DeliveredPayload::InviteeNamed(named),
                None => Value::String(uri),
            },
            Some(embedded) => embedded,
            None => Value::Null,
        },
        _ => Value::Null,
    };
    match serde_json::from_value::<Invitee>(candidate) {
        Ok(invitee) => DeliveredPayload::Invitee(Box::new(invitee)),
        Err(e) => DeliveredPayload::Unusable(format!("the payload is not a Calendly invitee: {}", why(&e))),
    }
}

/// Why a body did not parse, without the value that did not fit (serde's message quotes it,
/// and it may be a person's e-mail, name or phone): this reason is logged and answered.
fn why(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "a field missing or of the wrong type",
        serde_json::error::Category::Eof => "cut short",
    };
    match (e.line(), e.column()) {
        (0, _) => kind.to_string(),
        (line, column) => format!("{kind} (line {line}, column {column})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = include_str!("../../tests/fixtures/webhook_invitee_created.json");

    #[test]
    fn an_invitee_uri_names_its_event_and_invitee_and_nothing_else_is_one() {
        let uri = InviteeUri::parse("https://api.calendly.com/scheduled_events/EV1/invitees/IN1").unwrap();
        assert_eq!((uri.event_uuid(), uri.invitee_uuid()), ("EV1", "IN1"));
        for other in [
            "https://api.calendly.com/scheduled_events/EV1",
            "https://api.calendly.com/users/U1/invitees/IN1",
            "https://api.calendly.com/scheduled_events//invitees/IN1",
            "IN1",
        ] {
            assert_eq!(InviteeUri::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_captured_invitee_created_is_its_invitee_with_its_hosts() {
        let delivery = Delivery::parse(CREATED.as_bytes()).unwrap();
        assert_eq!(delivery.event, "invitee.created");
        let DeliveredPayload::Invitee(invitee) = &delivery.payload else { panic!("{:?}", delivery.payload) };
        assert_eq!(delivery.invitee_uri.as_ref().map(InviteeUri::as_str), Some(invitee.uri.as_str()));
        assert!(!delivery.event_hosts.is_empty(), "the embedded event names its hosts");
        assert_eq!(delivery.about_users().count(), delivery.event_hosts.len() + delivery.created_by.iter().count());
    }

    #[test]
    fn a_no_show_names_or_embeds_its_invitee() {
        let uri = "https://api.calendly.com/scheduled_events/EV1/invitees/IN1";
        let named = format!(
            r#"{{"event":"invitee_no_show.created","payload":{{"uri":"https://api.calendly.com/invitee_no_shows/N1","invitee":"{uri}","created_at":"2026-01-16T10:00:00Z"}}}}"#
        );
        let delivery = Delivery::parse(named.as_bytes()).unwrap();
        assert!(matches!(&delivery.payload, DeliveredPayload::InviteeNamed(u) if u.as_str() == uri));
        assert_eq!(delivery.invitee_uri.as_ref().map(InviteeUri::event_uuid), Some("EV1"));
        assert_eq!(delivery.payload_created_at, "2026-01-16T10:00:00Z".parse().ok());

        let unusable = r#"{"event":"invitee_no_show.created","payload":{"invitee":{"uri":"https://api.calendly.com/scheduled_events/EV2/invitees/IN2"}}}"#;
        let delivery = Delivery::parse(unusable.as_bytes()).unwrap();
        assert!(matches!(&delivery.payload, DeliveredPayload::Unusable(why) if why.contains("not a Calendly invitee")));
        assert_eq!(delivery.invitee_uri.as_ref().map(InviteeUri::invitee_uuid), Some("IN2"), "still names it");
    }

    #[test]
    fn a_reason_never_quotes_the_value_that_did_not_fit() {
        let body = r#"{"event":"invitee.created","payload":{"email":"ada@example.com","name":"Ada Lovelace","uri":"u","status":"active","text_reminder_number":33612345678,"updated_at":"2026-01-16T10:00:00Z"}}"#;
        let delivery = Delivery::parse(body.as_bytes()).unwrap();
        let DeliveredPayload::Unusable(reason) = &delivery.payload else { panic!("{:?}", delivery.payload) };
        assert!(reason.contains("wrong type"), "{reason}");
        for personal in ["33612345678", "ada@example.com", "Ada"] {
            assert!(!reason.contains(personal), "{reason}");
        }
        let envelope = Delivery::parse(br#"{"event": 3, "payload": "ada@example.com"}"#).unwrap_err();
        assert!(envelope.starts_with("not a Calendly webhook envelope") && !envelope.contains("ada"), "{envelope}");
    }

    #[test]
    fn what_is_not_an_envelope_says_why_and_a_bad_submission_is_unusable() {
        assert!(Delivery::parse(b"[]").unwrap_err().contains("not a Calendly webhook envelope"));
        let form = r#"{"event":"routing_form_submission.created","payload":{"uri":3}}"#;
        let delivery = Delivery::parse(form.as_bytes()).unwrap();
        assert!(matches!(delivery.payload, DeliveredPayload::Unusable(why) if why.contains("routing form")));
    }
}
