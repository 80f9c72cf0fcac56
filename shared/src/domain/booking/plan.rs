//! How `booking::plan` decides: a booking seen again, a booking seen first, its guests, its
//! notes and its notification.

use super::*;

pub(super) fn plan_change(
    organization_id: &OrganizationId,
    integration_id: &IntegrationId,
    snapshot: &BookingSnapshot,
    known: Known<'_>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Option<BookingPlan> {
    let style = rules.style;
    let name = snapshot.event_name.as_deref();
    let start = snapshot.start_time;
    let who = snapshot.invitee_name.trim();

    let Some(stored) = known.stored else {
        return Some(plan_first_sight(organization_id, integration_id, snapshot, known, rules, now));
    };

    // A delivery older than what is stored (Calendly retries for 24 h, in no order) changes nothing.
    if snapshot.invitee_updated_at < stored.details.invitee_updated_at {
        return None;
    }
    let reconciled = reconcile(snapshot, &stored.details);
    let snapshot = &reconciled;
    if *snapshot == stored.details {
        return None;
    }

    let mut notes = Vec::new();
    let mut notification = None;
    let became_canceled = stored.details.status == BookingStatus::Active && snapshot.status == BookingStatus::Canceled;
    if became_canceled && !snapshot.rescheduled {
        notes.push(style.with_cancel_reason(style.canceled(start, name), snapshot));
        notification = Some((
            NotificationKind::CalendlyAppointmentCanceled,
            "Rendez-vous Calendly annulé",
            style.canceled_message(who, start, name),
        ));
    }
    let no_show_note_due = snapshot.no_show && !stored.no_show_noted;
    if no_show_note_due {
        notes.push(style.no_show(start, name));
        notification.get_or_insert((
            NotificationKind::CalendlyNoShow,
            "Absence au rendez-vous Calendly",
            style.no_show_message(who, start, name),
        ));
    }

    let prospect_id = stored.prospect_id.clone().filter(|_| !known.stored_prospect_missing);
    let prospect = match (&prospect_id, notes.is_empty(), known.full_prospect) {
        (Some(_), false, Some(full)) => ProspectChange::append_to(full, notes, None),
        (Some(id), false, None) => ProspectChange::Append { prospect_id: id.clone(), notes },
        _ => ProspectChange::None,
    };
    let guests = plan_guests(organization_id, snapshot, &stored.guests_noted, &known, rules, prospect_id.as_ref(), now);
    let booking = Booking {
        details: snapshot.clone(),
        prospect_id: prospect_id.clone(),
        no_show_noted: stored.no_show_noted || no_show_note_due,
        guests_noted: noted_with(&stored.guests_noted, &guests),
        revision: stored.revision + 1,
        updated_at: now,
        ..stored.clone()
    };
    let notification = notification.map(|(kind, title, message)| {
        notification_for(organization_id, kind, title, message, prospect_id.as_ref(), snapshot, now)
    });
    Some(BookingPlan {
        booking,
        expected_revision: Some(stored.revision),
        prospect,
        notification,
        kind: ChangeKind::Changed,
        counted_for: None,
        person: None,
        missed_delivery: None,
        guests,
        submission_link: None,
        guest_people: Vec::new(),
    })
}

/// The guests' prospect changes this write brings: each guest taken as a lead (`known.guests`)
/// and not yet noted gets one note, on their prospect or a new one, while the booking holds
/// (a canceled meeting invites nobody). Never the invitee's own prospect (one item is written
/// once per transaction).
pub(super) fn plan_guests(
    organization_id: &OrganizationId,
    snapshot: &BookingSnapshot,
    noted: &[String],
    known: &Known<'_>,
    rules: Rules<'_>,
    invitee_prospect: Option<&ProspectId>,
    now: DateTime<Utc>,
) -> Vec<GuestChange> {
    if !rules.guests_as_prospects || snapshot.status != BookingStatus::Active {
        return Vec::new();
    }
    let invitee_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
    let note = rules.style.guest(snapshot.start_time, snapshot.event_name.as_deref(), snapshot.invitee_name.trim());
    let mut changes: Vec<GuestChange> = Vec::new();
    for guest in known.guests {
        let key = guest.email.key();
        let own = guest.prospect.as_ref().is_some_and(|p| Some(&p.id) == invitee_prospect);
        if noted.contains(&key)
            || invitee_key.as_ref() == Some(&key)
            || own
            || changes.iter().any(|c| c.email_key == key)
        {
            continue;
        }
        let prospect = match &guest.prospect {
            Some(existing) => ProspectChange::append_to(existing, vec![note.clone()], None),
            None => ProspectChange::Create(Prospect::from_calendly(
                organization_id,
                guest.email.clone(),
                (None, None),
                vec![note.clone()],
                now,
            )),
        };
        changes.push(GuestChange { email_key: key, prospect });
    }
    changes
}

/// The guests noted once `guests` are written.
pub(super) fn noted_with(noted: &[String], guests: &[GuestChange]) -> Vec<String> {
    noted.iter().cloned().chain(guests.iter().map(|g| g.email_key.clone())).collect()
}

/// What Calendly says, less what can't be true after what is stored, whatever the order in
/// which deliveries, syncs and polls arrive: a canceled invitee never becomes active again (a
/// reschedule makes a new invitee), and a no-show change older than the stored one is stale.
pub(super) fn reconcile(snapshot: &BookingSnapshot, stored: &BookingSnapshot) -> BookingSnapshot {
    let mut merged = snapshot.clone();
    // A booking is made once: what was first recorded stays (bookings stored before it was
    // kept are not rewritten for it).
    merged.invitee_created_at = stored.invitee_created_at;
    if stored.status == BookingStatus::Canceled && snapshot.status == BookingStatus::Active {
        merged.status = BookingStatus::Canceled;
        merged.rescheduled = stored.rescheduled;
        merged.new_invitee_uri = stored.new_invitee_uri.clone();
        merged.cancel_reason = stored.cancel_reason.clone();
        merged.canceled_by = stored.canceled_by.clone();
        merged.canceled_at = stored.canceled_at;
    }
    if let Some(stored_at) = stored.no_show_changed_at {
        let claimed_at = snapshot.no_show_changed_at.unwrap_or(snapshot.invitee_updated_at);
        if snapshot.no_show != stored.no_show && claimed_at < stored_at {
            merged.no_show = stored.no_show;
            merged.no_show_changed_at = stored.no_show_changed_at;
        }
    }
    merged
}

pub(super) fn plan_first_sight(
    organization_id: &OrganizationId,
    integration_id: &IntegrationId,
    snapshot: &BookingSnapshot,
    known: Known<'_>,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> BookingPlan {
    let style = rules.style;
    let booking = |prospect_id: Option<ProspectId>, no_show_noted: bool| Booking {
        organization_id: organization_id.clone(),
        integration_id: integration_id.clone(),
        details: snapshot.clone(),
        prospect_id,
        no_show_noted,
        guests_noted: Vec::new(),
        revision: 1,
        created_at: now,
        updated_at: now,
        expires_at: None,
    };

    // The old half of a reschedule: recorded (its start date is needed by the replacement's
    // note), but it is not a lost lead, so no note and no notification.
    if snapshot.status == BookingStatus::Canceled && snapshot.rescheduled {
        let prospect_id = known.prospect_with_email.map(|p| p.id.clone());
        return BookingPlan {
            booking: booking(prospect_id, false),
            expected_revision: None,
            prospect: ProspectChange::None,
            notification: None,
            kind: ChangeKind::New,
            counted_for: None,
            person: None,
            missed_delivery: None,
            guests: Vec::new(),
            submission_link: None,
            guest_people: Vec::new(),
        };
    }

    let notes = first_sight_notes(snapshot, known.replaced, style);
    let (kind, title, message) = first_sight_notice(snapshot, &known, style);
    let prospect = match known.prospect_with_email {
        Some(existing) => {
            let mut enriched = existing.clone();
            let fields = rules.fields.apply(snapshot, &mut enriched).then(|| ProspectFields::of(&enriched));
            ProspectChange::append_to(existing, notes, fields)
        }
        // Calendly validates emails, so `None` is a guard, not a path: keep the booking, skip the CRM.
        None => new_prospect(organization_id, snapshot, notes, now)
            .map(|mut p| {
                rules.fields.apply(snapshot, &mut p);
                p
            })
            .map_or(ProspectChange::None, ProspectChange::Create),
    };
    let prospect_id = match &prospect {
        ProspectChange::Create(p) => Some(p.id.clone()),
        ProspectChange::Append { prospect_id, .. } | ProspectChange::Rewrite { prospect_id, .. } => {
            Some(prospect_id.clone())
        }
        ProspectChange::None => None,
    };
    let notification =
        prospect_id.as_ref().map(|id| notification_for(organization_id, kind, title, message, Some(id), snapshot, now));
    let guests = plan_guests(organization_id, snapshot, &[], &known, rules, prospect_id.as_ref(), now);
    let submission_link = submission_link(snapshot, known.submission, prospect_id.as_ref());
    BookingPlan {
        booking: Booking { guests_noted: noted_with(&[], &guests), ..booking(prospect_id, snapshot.no_show) },
        expected_revision: None,
        prospect,
        notification,
        kind: ChangeKind::New,
        counted_for: None,
        person: None,
        missed_delivery: None,
        guests,
        submission_link,
        guest_people: Vec::new(),
    }
}

/// The join a booking writes with its routing form submission: it names its prospect, or
/// finds it named (then it is written back as read, a guard), keeping whether the
/// submission's note was written.
pub(super) fn submission_link(
    snapshot: &BookingSnapshot,
    read: Option<&crate::domain::submission_link::SubmissionLink>,
    prospect_id: Option<&ProspectId>,
) -> Option<crate::domain::submission_link::LinkWrite> {
    use crate::domain::submission_link::{LinkWrite, SubmissionLink};
    let (submission_uuid, prospect_id) = (snapshot.routing_form_submission.clone()?, prospect_id?.clone());
    Some(match read {
        None => LinkWrite::Create { submission_uuid, link: SubmissionLink { prospect_id, noted: false } },
        Some(read) => LinkWrite::Update {
            submission_uuid,
            read: read.clone(),
            link: SubmissionLink { prospect_id, noted: read.noted },
        },
    })
}

/// The note lines of a booking seen for the first time: booked (or rescheduled from the booking
/// it replaced), then canceled and no-show when it already is.
pub(super) fn first_sight_notes(
    snapshot: &BookingSnapshot,
    replaced: Option<&Booking>,
    style: &NoteStyle,
) -> Vec<String> {
    let (name, start) = (snapshot.event_name.as_deref(), snapshot.start_time);
    let mut notes = vec![style.with_booking_details(
        match (&snapshot.old_invitee_uri, replaced) {
            (Some(_), Some(old)) => style.rescheduled(start, old.details.start_time, name),
            _ => style.booked(start, name),
        },
        snapshot,
    )];
    // Seen for the first time already canceled: the lead still booked, then canceled.
    if snapshot.status == BookingStatus::Canceled {
        notes.push(style.with_cancel_reason(style.canceled(start, name), snapshot));
    }
    if snapshot.no_show {
        notes.push(style.no_show(start, name));
    }
    notes
}

/// What the organization is told of a booking seen for the first time: a new prospect, or of a
/// known one a new, rescheduled or (already) canceled appointment.
pub(super) fn first_sight_notice(
    snapshot: &BookingSnapshot,
    known: &Known<'_>,
    style: &NoteStyle,
) -> (NotificationKind, &'static str, String) {
    let (name, start, who) = (snapshot.event_name.as_deref(), snapshot.start_time, snapshot.invitee_name.trim());
    let Some(_) = known.prospect_with_email else {
        return (
            NotificationKind::CalendlyProspectCreated,
            "Nouveau prospect Calendly",
            style.booked_message(who, start, name),
        );
    };
    if snapshot.status == BookingStatus::Canceled {
        return (
            NotificationKind::CalendlyAppointmentCanceled,
            "Rendez-vous Calendly annulé",
            style.canceled_message(who, start, name),
        );
    }
    if snapshot.old_invitee_uri.is_some() && known.replaced.is_some() {
        return (
            NotificationKind::CalendlyAppointmentRescheduled,
            "Rendez-vous Calendly reporté",
            style.rescheduled_message(who, start, name),
        );
    }
    (
        NotificationKind::CalendlyAppointmentBooked,
        "Nouveau rendez-vous Calendly",
        style.booked_message(who, start, name),
    )
}

/// The prospect an unknown invitee becomes (`source: calendly`), or `None` without a usable
/// e-mail; its other fields come from the field map.
pub(super) fn new_prospect(
    organization_id: &OrganizationId,
    snapshot: &BookingSnapshot,
    notes: Vec<String>,
    now: DateTime<Utc>,
) -> Option<Prospect> {
    let email = Email::parse(&snapshot.invitee_email).ok()?;
    Some(Prospect::from_calendly(organization_id, email, snapshot.names(), notes, now))
}

pub(super) fn notification_for(
    organization_id: &OrganizationId,
    kind: NotificationKind,
    title: &str,
    message: String,
    prospect_id: Option<&ProspectId>,
    snapshot: &BookingSnapshot,
    now: DateTime<Utc>,
) -> Notification {
    let meta = json!({
            "prospect_id": prospect_id,
            "calendly_event_uri": snapshot.event_uri,
            "calendly_invitee_uri": snapshot.invitee_uri,
            "event_name": snapshot.event_name,
            "start_time": snapshot.start_time,
            "host_name": snapshot.host.as_ref().and_then(|h| h.name.clone()),
            "host_email": snapshot.host.as_ref().and_then(|h| h.email.clone()),
            "host_user_uri": snapshot.host.as_ref().map(|h| h.user_uri.clone()),
    });
    Notification::new(organization_id.clone(), kind, title, message, meta, now)
}
