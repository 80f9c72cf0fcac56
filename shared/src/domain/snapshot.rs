//! What Calendly says about one booking (an invitee and its scheduled event), parsed at the
//! edge and bounded to what the CRM keeps: what `booking::plan` and the field map read.

use super::bounds;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether the booking still holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    /// Scheduled.
    Active,
    /// Canceled (or the old half of a reschedule).
    Canceled,
}

impl BookingStatus {
    /// The status as Calendly and our API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Canceled => "canceled",
        }
    }
}

/// What Calendly says about one booking, parsed from an invitee and its scheduled event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookingSnapshot {
    /// The invitee's URI.
    pub invitee_uri: String,
    /// The invitee's UUID (the booking's key).
    pub invitee_uuid: String,
    /// The scheduled event's URI.
    pub event_uri: String,
    /// The scheduled event's UUID.
    pub event_uuid: String,
    /// The event type's URI (what the filter selects on).
    pub event_type_uri: Option<String>,
    /// The event's name (e.g. `Découverte 30min`).
    pub event_name: Option<String>,
    /// When it starts.
    pub start_time: DateTime<Utc>,
    /// When it ends.
    pub end_time: DateTime<Utc>,
    /// `Canceled` when the invitee or the whole event is.
    pub status: BookingStatus,
    /// The invitee's e-mail as entered (the prospect is matched on its normalized form).
    pub invitee_email: String,
    /// The invitee's full name.
    pub invitee_name: String,
    /// The invitee's first name, when the form asked for it.
    pub invitee_first_name: Option<String>,
    /// The invitee's last name, when the form asked for it.
    pub invitee_last_name: Option<String>,
    /// The SMS reminder number, if given (becomes the prospect's phone).
    pub invitee_phone: Option<String>,
    /// The invitee's time zone (IANA name).
    pub invitee_timezone: Option<String>,
    /// Where it takes place, as text (the join link or the location given).
    pub location: Option<String>,
    /// Whether this booking was moved to another time.
    pub rescheduled: bool,
    /// The booking this one replaced.
    pub old_invitee_uri: Option<String>,
    /// The booking that replaced this one.
    pub new_invitee_uri: Option<String>,
    /// Whether the host marked the invitee a no-show.
    pub no_show: bool,
    /// When `no_show` last changed, when known (a no-show's `created_at`, or the delivery's
    /// time): no-show toggles delivered out of order are ordered by it.
    #[serde(default)]
    pub no_show_changed_at: Option<DateTime<Utc>>,
    /// Why it was canceled.
    pub cancel_reason: Option<String>,
    /// Who canceled (a name).
    pub canceled_by: Option<String>,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Calendly's `updated_at` of the invitee: orders deliveries that arrive out of order.
    pub invitee_updated_at: DateTime<Utc>,
    /// When the invitee booked (Calendly's `created_at`), as first recorded.
    #[serde(default)]
    pub invitee_created_at: Option<DateTime<Utc>>,
    /// The routing form submission (its UUID) that led to the booking: its prospect is the
    /// submission's, whichever arrives first.
    #[serde(default)]
    pub routing_form_submission: Option<String>,
    /// The invitee's answers to the event type's questions (the seed's `invitee_questions`).
    #[serde(default)]
    pub questions: Vec<QuestionAnswer>,
    /// UTM parameters of the booking link, when it had some.
    #[serde(default)]
    pub tracking: Tracking,
    /// The video call's link, when the event has one.
    #[serde(default)]
    pub join_url: Option<String>,
    /// The event's host (the member of the Calendly organization whose booking it is).
    #[serde(default)]
    pub host: Option<Host>,
    /// The invitee's phone of an "outbound call" location (the host calls the invitee). An
    /// "inbound call" location holds the host's number: never the invitee's.
    #[serde(default)]
    pub call_phone: Option<String>,
    /// The guests the invitee added (Calendly's `event_guests`).
    #[serde(default)]
    pub guests: Vec<Guest>,
    /// The no-show mark's URI while marked (what taking it back names).
    #[serde(default)]
    pub no_show_uri: Option<String>,
}

/// Someone the invitee invited to the meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Guest {
    /// The guest's e-mail.
    pub email: String,
    /// When the invitee added them.
    pub created_at: Option<DateTime<Utc>>,
}

/// A Calendly user who hosts an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Host {
    /// The host's Calendly user URI.
    pub user_uri: String,
    /// The host's name.
    pub name: Option<String>,
    /// The host's e-mail.
    pub email: Option<String>,
}

/// One answer of an invitee to a booking question.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuestionAnswer {
    /// The question as asked.
    pub question: String,
    /// The invitee's answer.
    pub answer: String,
}

/// Where a booking came from (Calendly's `tracking`: the booking link's UTM parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tracking {
    /// `utm_source` of the booking link.
    pub utm_source: Option<String>,
    /// `utm_medium` of the booking link.
    pub utm_medium: Option<String>,
    /// `utm_campaign` of the booking link.
    pub utm_campaign: Option<String>,
    /// `utm_content` of the booking link.
    pub utm_content: Option<String>,
    /// `utm_term` of the booking link.
    pub utm_term: Option<String>,
}

impl Tracking {
    /// `(name, value)` of the parameters that are set.
    pub fn present(&self) -> Vec<(&'static str, &str)> {
        [
            ("utm_source", &self.utm_source),
            ("utm_medium", &self.utm_medium),
            ("utm_campaign", &self.utm_campaign),
            ("utm_content", &self.utm_content),
            ("utm_term", &self.utm_term),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
    }
}

impl BookingSnapshot {
    /// What the CRM keeps of it: every text field within its `bounds`, at most
    /// `bounds::MAX_ANSWERS` answers.
    pub fn bounded(mut self) -> Self {
        use bounds::clip_opt;
        use bounds::*;
        self.invitee_email = clip(&self.invitee_email, EMAIL_BYTES);
        self.invitee_name = clip(&self.invitee_name, NAME_BYTES);
        self.invitee_first_name = clip_opt(&self.invitee_first_name, NAME_BYTES);
        self.invitee_last_name = clip_opt(&self.invitee_last_name, NAME_BYTES);
        self.invitee_phone = clip_opt(&self.invitee_phone, PHONE_BYTES);
        self.invitee_timezone = clip_opt(&self.invitee_timezone, TIMEZONE_BYTES);
        self.event_name = clip_opt(&self.event_name, EVENT_NAME_BYTES);
        self.event_type_uri = clip_opt(&self.event_type_uri, LOCATION_BYTES);
        self.location = clip_opt(&self.location, LOCATION_BYTES);
        self.join_url = clip_opt(&self.join_url, LOCATION_BYTES);
        self.old_invitee_uri = clip_opt(&self.old_invitee_uri, LOCATION_BYTES);
        self.new_invitee_uri = clip_opt(&self.new_invitee_uri, LOCATION_BYTES);
        self.cancel_reason = clip_opt(&self.cancel_reason, REASON_BYTES);
        self.canceled_by = clip_opt(&self.canceled_by, NAME_BYTES);
        self.questions.truncate(MAX_ANSWERS);
        for qa in &mut self.questions {
            qa.question = clip(&qa.question, QUESTION_BYTES);
            qa.answer = clip(&qa.answer, ANSWER_BYTES);
        }
        let t = &mut self.tracking;
        for value in [&mut t.utm_source, &mut t.utm_medium, &mut t.utm_campaign, &mut t.utm_content, &mut t.utm_term] {
            *value = clip_opt(value, UTM_BYTES);
        }
        if let Some(host) = &mut self.host {
            host.name = clip_opt(&host.name, NAME_BYTES);
            host.email = clip_opt(&host.email, EMAIL_BYTES);
        }
        self.call_phone = clip_opt(&self.call_phone, PHONE_BYTES);
        self.guests.truncate(MAX_GUESTS);
        for guest in &mut self.guests {
            guest.email = clip(&guest.email, EMAIL_BYTES);
        }
        self
    }

    /// The invitee's first and last names: Calendly's own when given, else `name` split once.
    pub fn names(&self) -> (Option<String>, Option<String>) {
        let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        let (first, last) = (clean(&self.invitee_first_name), clean(&self.invitee_last_name));
        if first.is_some() || last.is_some() {
            return (first, last);
        }
        let full = self.invitee_name.trim();
        match full.split_once(char::is_whitespace) {
            Some((f, l)) => (Some(f.to_string()), Some(l.trim().to_string()).filter(|s| !s.is_empty())),
            None if full.is_empty() => (None, None),
            None => (Some(full.to_string()), None),
        }
    }
}
