//! The CRM's records on the wire: prospects, notifications, bookings, organizations, pages.

use super::*;

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
