use super::tests_support::snapshot;
use super::*;
use crate::domain::CalendlyScope;

fn rules() -> Rules<'static> {
    Rules {
        style: Box::leak(Box::new(NoteStyle::default())),
        fields: Box::leak(Box::new(FieldMap::default_for(CalendlyScope::User))),
        guests_as_prospects: false,
    }
}

fn guest(email: &str, prospect: Option<Prospect>) -> KnownGuest {
    KnownGuest { email: Email::parse(email).unwrap(), prospect }
}

#[test]
fn each_guest_gets_one_note_on_their_prospect_once_while_the_booking_holds() {
    let (org, int) = ids();
    let now = Utc::now();
    let taking = Rules { guests_as_prospects: true, ..rules() };
    let mut snap = snapshot("b1", "john@example.com");
    snap.event_name = Some("Découverte 30min".into());
    let known_ada = Prospect {
        notes: vec!["old".into()],
        ..new_prospect(&org, &snapshot("x", "ada@example.com"), vec![], now).unwrap()
    };
    let guests = [
        guest("ada@example.com", Some(known_ada.clone())),
        guest("new@example.com", None),
        guest("NEW@example.com", None),
        guest("john@example.com", None),
    ];
    let known = Known { guests: &guests, ..Known::default() };
    let plan = plan(&org, &int, &snap, known, taking, now).unwrap();
    assert_eq!(plan.guests.len(), 2, "the invitee and a repeated address are not guests: {:?}", plan.guests);
    let note = "Invité(e) au rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min (par John Doe)";
    assert_eq!(
        plan.guests[0].prospect,
        ProspectChange::Append { prospect_id: known_ada.id.clone(), notes: vec![note.into()] }
    );
    match &plan.guests[1].prospect {
        ProspectChange::Create(p) => {
            assert_eq!(p.email.as_ref().map(Email::key).as_deref(), Some("new@example.com"));
            assert_eq!((p.source.as_str(), p.notes.clone()), (crate::domain::SOURCE_CALENDLY, vec![note.to_string()]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.booking.guests_noted, vec!["ada@example.com".to_string(), "new@example.com".to_string()]);
    assert_eq!(plan.counts().prospects_created, 2, "the invitee and the new guest");

    // Written: the same guests are never noted again; one added later is.
    let stored = plan.booking.clone();
    let mut later = snap.clone();
    later.invitee_updated_at += chrono::Duration::minutes(1);
    later.guests.push(Guest { email: "late@example.com".into(), created_at: None });
    let guests = [guest("ada@example.com", None), guest("late@example.com", None)];
    let known = Known { stored: Some(&stored), guests: &guests, ..Known::default() };
    let again = super::plan(&org, &int, &later, known, taking, now).unwrap();
    assert_eq!(again.guests.iter().map(|g| g.email_key.as_str()).collect::<Vec<_>>(), ["late@example.com"]);

    // Off, or a canceled meeting: no guest is taken.
    let known = Known { guests: &guests, ..Known::default() };
    assert!(super::plan(&org, &int, &snap, known, rules(), now).unwrap().guests.is_empty());
    let mut canceled = snap.clone();
    canceled.status = BookingStatus::Canceled;
    assert!(super::plan(&org, &int, &canceled, known, taking, now).unwrap().guests.is_empty());
}

fn ids() -> (OrganizationId, IntegrationId) {
    (OrganizationId::new("org"), IntegrationId::new("int"))
}

fn now() -> DateTime<Utc> {
    "2026-01-10T12:00:00Z".parse().unwrap()
}

#[test]
fn unknown_email_creates_a_calendly_prospect_with_one_note() {
    let (org, int) = ids();
    let plan = plan(&org, &int, &snapshot("a", "john@example.com"), Known::default(), rules(), now()).unwrap();
    let ProspectChange::Create(prospect) = &plan.prospect else { panic!("expected a new prospect") };
    assert_eq!(prospect.source, "calendly");
    assert_eq!(prospect.status, "new");
    assert_eq!(prospect.firstname.as_deref(), Some("John"));
    assert_eq!(prospect.lastname.as_deref(), Some("Doe"));
    assert_eq!(prospect.phone.as_deref(), Some("+33 6 12 34 56 78"));
    assert_eq!(prospect.notes, vec!["Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min"]);
    assert_eq!(plan.notification.unwrap().kind, NotificationKind::CalendlyProspectCreated);
    assert_eq!(plan.expected_revision, None);
}

#[test]
fn unchanged_booking_plans_nothing() {
    let (org, int) = ids();
    let snap = snapshot("a", "john@example.com");
    let first = plan(&org, &int, &snap, Known::default(), rules(), now()).unwrap();
    let known = Known { stored: Some(&first.booking), ..Known::default() };
    assert!(plan(&org, &int, &snap, known, rules(), now()).is_none());
}

#[test]
fn cancellation_appends_one_note_and_a_stale_delivery_changes_nothing() {
    let (org, int) = ids();
    let snap = snapshot("a", "john@example.com");
    let first = plan(&org, &int, &snap, Known::default(), rules(), now()).unwrap();
    let mut canceled = snap.clone();
    canceled.status = BookingStatus::Canceled;
    canceled.invitee_updated_at = "2026-01-11T10:00:00Z".parse().unwrap();
    let known = Known { stored: Some(&first.booking), ..Known::default() };
    let second = plan(&org, &int, &canceled, known, rules(), now()).unwrap();
    assert_eq!(second.expected_revision, Some(1));
    assert_eq!(second.notes_added(), 1);
    assert_eq!(second.notification.as_ref().unwrap().kind, NotificationKind::CalendlyAppointmentCanceled);
    // The older "created" delivery arriving after the cancellation is ignored.
    let known = Known { stored: Some(&second.booking), ..Known::default() };
    assert!(plan(&org, &int, &snap, known, rules(), now()).is_none());
}

#[test]
fn reschedule_writes_no_cancellation_and_one_reported_note() {
    let (org, int) = ids();
    let old = snapshot("old", "john@example.com");
    let first = plan(&org, &int, &old, Known::default(), rules(), now()).unwrap();
    let ProspectChange::Create(prospect) = first.prospect.clone() else { panic!() };

    let mut old_canceled = old.clone();
    old_canceled.status = BookingStatus::Canceled;
    old_canceled.rescheduled = true;
    old_canceled.invitee_updated_at = "2026-01-11T10:00:00Z".parse().unwrap();
    let known = Known { stored: Some(&first.booking), prospect_with_email: Some(&prospect), ..Known::default() };
    let cancel = plan(&org, &int, &old_canceled, known, rules(), now()).unwrap();
    assert_eq!(cancel.notes_added(), 0);
    assert!(cancel.notification.is_none());

    let mut new = snapshot("new", "john@example.com");
    new.start_time = "2026-01-17T09:00:00Z".parse().unwrap();
    new.old_invitee_uri = Some(old.invitee_uri.clone());
    let known = Known { prospect_with_email: Some(&prospect), replaced: Some(&first.booking), ..Known::default() };
    let created = plan(&org, &int, &new, known, rules(), now()).unwrap();
    let ProspectChange::Append { notes, .. } = &created.prospect else { panic!() };
    assert_eq!(
            notes,
            &vec!["Rendez-vous Calendly reporté au 17/01/2026 10:00:00 (initialement le 16/01/2026 16:30:00) - Découverte 30min".to_string()]
        );
    assert_eq!(created.notification.unwrap().kind, NotificationKind::CalendlyAppointmentRescheduled);
}

#[test]
fn no_show_is_noted_once_even_when_toggled() {
    let (org, int) = ids();
    let snap = snapshot("a", "john@example.com");
    let first = plan(&org, &int, &snap, Known::default(), rules(), now()).unwrap();
    let mut absent = snap.clone();
    absent.no_show = true;
    absent.invitee_updated_at = "2026-01-17T10:00:00Z".parse().unwrap();
    let second =
        plan(&org, &int, &absent, Known { stored: Some(&first.booking), ..Known::default() }, rules(), now()).unwrap();
    assert_eq!(second.notes_added(), 1);
    let mut present = absent.clone();
    present.no_show = false;
    present.invitee_updated_at = "2026-01-17T11:00:00Z".parse().unwrap();
    let third = plan(&org, &int, &present, Known { stored: Some(&second.booking), ..Known::default() }, rules(), now())
        .unwrap();
    assert_eq!(third.notes_added(), 0);
    let mut again = present.clone();
    again.no_show = true;
    again.invitee_updated_at = "2026-01-17T12:00:00Z".parse().unwrap();
    let fourth =
        plan(&org, &int, &again, Known { stored: Some(&third.booking), ..Known::default() }, rules(), now()).unwrap();
    assert_eq!(fourth.notes_added(), 0);
}

#[test]
fn separate_first_and_last_names_win_over_splitting() {
    let mut snap = snapshot("a", "x@example.com");
    snap.invitee_name = "Jean Pierre Martin".into();
    assert_eq!(snap.names(), (Some("Jean".into()), Some("Pierre Martin".into())));
    snap.invitee_first_name = Some("Jean-Pierre".into());
    snap.invitee_last_name = Some("Martin".into());
    assert_eq!(snap.names(), (Some("Jean-Pierre".into()), Some("Martin".into())));
}
