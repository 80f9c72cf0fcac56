//! A booking is one invitee of one Calendly scheduled event, keyed by the invitee URI.
//! `plan` decides, from what Calendly says now and what is stored, what must be written:
//! the store then writes it all-or-nothing, guarded by the revision it was planned against.
//!
//! Over 400 lines because of its tests (from `#[cfg(test)]` on): the plan's table of cases.

use super::bounds::{self, clip};
use super::field_map::{FieldMap, ProspectFields};
use super::{
    CommittedCounts, Email, IntegrationId, NoteStyle, Notification, NotificationKind, OrganizationId, Prospect,
    ProspectId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod plan;
#[cfg(test)]
use plan::new_prospect;
use plan::plan_change;

pub use super::snapshot::{BookingSnapshot, BookingStatus, Guest, Host, QuestionAnswer, Tracking};

/// A booking as stored: what Calendly said, plus what the CRM did with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The integration that brought it.
    pub integration_id: IntegrationId,
    /// What Calendly said, as last recorded.
    #[serde(flatten)]
    pub details: BookingSnapshot,
    /// The prospect it created or enriched (`None` when the filter left it out).
    pub prospect_id: Option<ProspectId>,
    /// Whether the no-show note was written (it is written once, even if the flag flips again).
    pub no_show_noted: bool,
    /// The guests (e-mail keys) whose prospects got their note: each once, in the booking's
    /// own guarded write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guests_noted: Vec<String>,
    /// Bumped on every write: the optimistic-concurrency guard.
    pub revision: u64,
    /// When first recorded.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When the organization's retention removes it (its event's end plus the retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Booking {
    /// The key of a booking within its organization (the invitee's UUID).
    pub fn id(&self) -> &str {
        &self.details.invitee_uuid
    }

    /// Takes the guest with this address key out (their erasure); whether they were in.
    pub fn drop_guest(&mut self, key: &str) -> bool {
        let before = (self.details.guests.len(), self.guests_noted.len());
        let other = |email: &str| super::PersonAddress::parse(email).map_or(true, |a| a.key() != key);
        self.details.guests.retain(|g| other(&g.email));
        self.guests_noted.retain(|noted| noted != key);
        before != (self.details.guests.len(), self.guests_noted.len())
    }
}

/// What happens to the prospect in the same all-or-nothing write as the booking.
#[derive(Clone, Debug, PartialEq)]
pub enum ProspectChange {
    /// Nothing (e.g. the old half of a reschedule).
    None,
    /// A new prospect, with its email claim; fails if the email was claimed meanwhile.
    Create(Prospect),
    /// Notes appended to an existing prospect; fails if the prospect is gone, or if its
    /// inline notes would pass `bounds::MAX_INLINE_NOTES` (then it is re-planned as a rewrite).
    Append {
        /// The prospect appended to.
        prospect_id: ProspectId,
        /// The entries appended, in order.
        notes: Vec<String>,
    },
    /// A prospect's whole note list written anew (its oldest entries summed up, so it stays
    /// within `bounds::MAX_INLINE_NOTES`); fails if the notes changed since they were read.
    Rewrite {
        /// The prospect rewritten.
        prospect_id: ProspectId,
        /// The whole list, oldest first.
        notes: Vec<String>,
        /// How many entries the list had when read.
        expected_len: usize,
        /// The prospect's `updated_at` when read.
        expected_updated_at: DateTime<Utc>,
        /// Entries of `notes` that are this plan's (for counters).
        added: usize,
        /// The fields the booking's field map set, as a whole (`None`: fields untouched).
        fields: Option<ProspectFields>,
    },
}

impl ProspectChange {
    /// Notes onto `existing`: appended while within the bound, else its list rewritten.
    pub fn append_to_prospect(existing: &Prospect, notes: Vec<String>) -> Self {
        Self::append_to(existing, notes, None)
    }

    /// How many note entries it appends or creates.
    pub fn notes_added(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Create(p) => p.notes.len(),
            Self::Append { notes, .. } => notes.len(),
            Self::Rewrite { added, .. } => *added,
        }
    }

    /// The prospect it writes, if any.
    pub fn prospect_id(&self) -> Option<&ProspectId> {
        match self {
            Self::Create(p) => Some(&p.id),
            Self::Append { prospect_id, .. } | Self::Rewrite { prospect_id, .. } => Some(prospect_id),
            Self::None => None,
        }
    }

    /// Notes onto `existing`: appended while within the bound and no field changes, else the
    /// list rewritten with the fields, guarded by the prospect being as read (a salesperson's
    /// edit in between makes it a re-plan, never an overwrite).
    fn append_to(existing: &Prospect, notes: Vec<String>, fields: Option<ProspectFields>) -> Self {
        if fields.is_none() && existing.notes.len() + notes.len() <= bounds::MAX_INLINE_NOTES {
            return Self::Append { prospect_id: existing.id.clone(), notes };
        }
        Self::Rewrite {
            prospect_id: existing.id.clone(),
            notes: bounds::notes_after(&existing.notes, &notes),
            expected_len: existing.notes.len(),
            expected_updated_at: existing.updated_at,
            added: notes.len(),
            fields,
        }
    }
}

/// A guest of the booking made (or enriched as) a prospect in the booking's write.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestChange {
    /// The guest's e-mail key (what `Booking::guests_noted` records).
    pub email_key: String,
    /// Their prospect: created, or the note appended (or the list rewritten when full).
    pub prospect: ProspectChange,
}

/// A guest the organization takes as a lead (admitted by the filter, not the invitee), with
/// the prospect holding their e-mail as read.
#[derive(Clone, Debug)]
pub struct KnownGuest {
    /// The guest's e-mail, parsed.
    pub email: Email,
    /// The prospect holding it, if any.
    pub prospect: Option<Prospect>,
}

/// Which kind of change a plan records (for sync counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A booking seen for the first time.
    New,
    /// A known booking that changed.
    Changed,
}

/// Everything one booking change writes, at once.
#[derive(Clone, Debug)]
pub struct BookingPlan {
    /// The booking to write.
    pub booking: Booking,
    /// `None`: the booking must not exist yet; `Some(r)`: its stored revision must still be `r`.
    pub expected_revision: Option<u64>,
    /// What happens to the prospect.
    pub prospect: ProspectChange,
    /// The notification to record and push, if the change deserves one.
    pub notification: Option<Notification>,
    /// New or changed (for the sync's counters).
    pub kind: ChangeKind,
    /// The sync job whose report counts this commit: the store adds its counts in the same
    /// write, so the report says what was committed even when a worker dies mid-slice.
    pub counted_for: Option<String>,
    /// The invitee as the privacy index knows them (keyed hashes of the e-mail): a commit that
    /// records a new booking or a notification about them indexes it under these, in the same
    /// write, and fails if they are suppressed. `None` when the e-mail doesn't parse.
    pub person: Option<super::PersonKeys>,
    /// When the booking was made, if a sync saw it first though the webhook should have
    /// delivered it: the commit counts it in the delivery ledger.
    pub missed_delivery: Option<DateTime<Utc>>,
    /// Guests made or enriched as prospects with this write.
    pub guests: Vec<GuestChange>,
    /// The join with the routing form submission that led to the booking.
    pub submission_link: Option<super::submission_link::LinkWrite>,
    /// Every guest the booking names, by address key, as the privacy index knows them: the
    /// commit indexes the booking under each (`guest_of`) and fails if one is suppressed.
    pub guest_people: Vec<(String, super::PersonKeys)>,
}

impl BookingPlan {
    /// Whether this commit adds something the person index must name (a booking seen for the
    /// first time, or a notification): such commits are also the ones the suppression guards.
    pub fn indexes_person(&self) -> bool {
        self.person.is_some() && (self.expected_revision.is_none() || self.notification.is_some())
    }
}

impl BookingPlan {
    /// What this plan adds to its job's report once committed.
    pub fn counts(&self) -> CommittedCounts {
        CommittedCounts {
            bookings_new: u64::from(self.kind == ChangeKind::New),
            bookings_changed: u64::from(self.kind == ChangeKind::Changed),
            prospects_created: u64::from(matches!(self.prospect, ProspectChange::Create(_)))
                + self.guests.iter().filter(|g| matches!(g.prospect, ProspectChange::Create(_))).count() as u64,
            notes_added: (self.notes_added() + self.guests.iter().map(|g| g.prospect.notes_added()).sum::<usize>())
                as u64,
        }
    }

    /// How many note entries this plan appends or creates on the invitee's prospect.
    pub fn notes_added(&self) -> usize {
        self.prospect.notes_added()
    }

    /// Every note entry within `bounds::NOTE_ENTRY_BYTES`.
    fn with_bounded_notes(mut self) -> Self {
        let clip_all = |notes: &mut Vec<String>| {
            for n in notes.iter_mut() {
                if n.len() > bounds::NOTE_ENTRY_BYTES {
                    *n = clip(n, bounds::NOTE_ENTRY_BYTES);
                }
            }
        };
        let changes = std::iter::once(&mut self.prospect).chain(self.guests.iter_mut().map(|g| &mut g.prospect));
        for change in changes {
            match change {
                ProspectChange::Create(p) => clip_all(&mut p.notes),
                ProspectChange::Append { notes, .. } | ProspectChange::Rewrite { notes, .. } => clip_all(notes),
                ProspectChange::None => {}
            }
        }
        self
    }
}

/// What the store knows that the plan depends on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Known<'a> {
    /// The stored booking with this invitee URI.
    pub stored: Option<&'a Booking>,
    /// The prospect holding the invitee's email in this organization.
    pub prospect_with_email: Option<&'a Prospect>,
    /// For a replacement booking: the stored booking it replaces.
    pub replaced: Option<&'a Booking>,
    /// False once a write found the stored booking's prospect deleted.
    pub stored_prospect_missing: bool,
    /// The booking's prospect as read after a write found its notes full.
    pub full_prospect: Option<&'a Prospect>,
    /// The booking's guests the organization takes as leads (with `Rules::guests_as_prospects`).
    pub guests: &'a [KnownGuest],
    /// The join of the booking's routing form submission, when one was written (its prospect
    /// is then `prospect_with_email`, while it exists).
    pub submission: Option<&'a super::submission_link::SubmissionLink>,
}

/// Decides what to write for `snapshot`; `None` when nothing changed (or it is an old delivery).
/// Note entries are bounded (`bounds`).
/// The field map applies once, with the booking's first write.
pub fn plan(
    organization_id: &OrganizationId,
    integration_id: &IntegrationId,
    snapshot: &BookingSnapshot,
    known: Known<'_>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Option<BookingPlan> {
    plan_change(organization_id, integration_id, snapshot, known, rules, now).map(BookingPlan::with_bounded_notes)
}

/// How the organization writes what a booking brings: its notes' style and its field map.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// How notes are written.
    pub style: &'a NoteStyle,
    /// Which booking data fills which prospect field.
    pub fields: &'a FieldMap,
    /// Whether guests become prospects.
    pub guests_as_prospects: bool,
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A booking of John Doe on 16/01/2026 16:30 (Paris), with a phone, nothing else.
    pub(crate) fn snapshot(uuid: &str, email: &str) -> BookingSnapshot {
        BookingSnapshot {
            invitee_uri: format!("https://api.calendly.com/scheduled_events/E{uuid}/invitees/{uuid}"),
            invitee_uuid: uuid.to_string(),
            event_uri: format!("https://api.calendly.com/scheduled_events/E{uuid}"),
            event_uuid: format!("E{uuid}"),
            event_type_uri: None,
            event_name: Some("Découverte 30min".into()),
            start_time: "2026-01-16T15:30:00Z".parse().unwrap(),
            end_time: "2026-01-16T16:00:00Z".parse().unwrap(),
            status: BookingStatus::Active,
            invitee_email: email.to_string(),
            invitee_name: "John Doe".into(),
            invitee_first_name: None,
            invitee_last_name: None,
            invitee_phone: Some("+33 6 12 34 56 78".into()),
            invitee_timezone: Some("Europe/Paris".into()),
            location: None,
            rescheduled: false,
            old_invitee_uri: None,
            new_invitee_uri: None,
            no_show: false,
            no_show_changed_at: None,
            cancel_reason: None,
            canceled_by: None,
            canceled_at: None,
            invitee_updated_at: "2026-01-10T10:00:00Z".parse().unwrap(),
            invitee_created_at: None,
            routing_form_submission: None,
            questions: Vec::new(),
            tracking: Tracking::default(),
            join_url: None,
            host: None,
            call_phone: None,
            guests: Vec::new(),
            no_show_uri: None,
        }
    }
}

#[cfg(test)]
mod tests;
