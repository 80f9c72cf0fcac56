//! Routing-form leads (organization scope, `routing_forms:read`): a submission with an e-mail
//! creates or enriches a prospect with one note; the booking that follows it joins that
//! prospect whatever e-mail it was made with, whichever arrives first, exactly once through
//! deliveries (duplicated, reversed) and the scheduled sync's poll.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::{BookingSpec, SimUser};
use serde_json::{Value, json};

const FORM_NOTE: &str = "Formulaire Calendly « Qualification » envoyé le ";
const BOOKED_NOTE: &str = "Rendez-vous Calendly prévu le ";

fn count(prospect: &Value, line: &str) -> usize {
    prospect["notes"].as_str().unwrap_or_default().matches(line).count()
}

/// `org-a` connected in organization scope by an admin; the admin and the form's URI.
async fn organization_with_a_form(kind: StoreKind) -> (TestApp, SimUser, String) {
    organization_with_a_form_on(TestApp::spawn_on(kind).await).await
}

async fn organization_with_a_form_on(app: TestApp) -> (TestApp, SimUser, String) {
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    let start = app.post("/calendly/connect", "org-a", json!({ "scope": "organization" })).await.expect(200);
    let code = app.sim.approve(&admin, start["authorize_url"].as_str().unwrap()).expect("approved");
    let state = start["state"].as_str().unwrap();
    let answer = app.post("/auth/calendly/callback", "org-a", json!({ "code": code, "state": state })).await;
    assert_eq!(answer.expect(200)["scope"], "organization");
    app.wait_for_sync("org-a").await;
    let form = app.sim.add_routing_form(&admin, "Qualification", &["Entreprise", "Votre e-mail"]);
    (app, admin, form)
}

/// The scheduled sync, as the schedule runs it (it polls the forms); the ended job.
async fn scheduled_sync(app: &TestApp) -> Value {
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1, "{run}");
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!((ended["trigger"].as_str(), ended["state"].as_str()), (Some("scheduled"), Some("succeeded")), "{ended}");
    ended
}

async fn a_submission_makes_a_lead_and_its_booking_joins_it(kind: StoreKind) {
    let (app, admin, form) = organization_with_a_form(kind).await;
    app.sim.set_chaotic_deliveries(true);
    let submission = app.sim.submit_form(&form, &[("Entreprise", "Acme"), ("Votre e-mail", "Ada@Acme.example")]).await;
    let ada = app.prospect_by_email("org-a", "ada@acme.example").await.expect("the submission made a lead");
    assert_eq!(ada["source"], "calendly");
    assert_eq!(count(&ada, FORM_NOTE), 1, "{ada}");
    assert!(ada["notes"].as_str().unwrap().contains("Entreprise : Acme"), "with its answers: {ada}");

    // She books with another address: the booking joins her prospect, no second one.
    let spec = BookingSpec::new("Ada Lovelace", "ada.perso@mail.example", "Découverte 30min", in_days(2));
    app.sim.book_after_form(&admin, spec, &submission).await;
    app.sync("org-a").await;
    scheduled_sync(&app).await;
    let ada = app.prospect_by_email("org-a", "ada@acme.example").await.unwrap();
    assert_eq!((count(&ada, FORM_NOTE), count(&ada, BOOKED_NOTE)), (1, 1), "{ada}");
    assert!(app.prospect_by_email("org-a", "ada.perso@mail.example").await.is_none(), "joined, not a second lead");
    let events = app.get("/calendly/events?limit=10", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["prospect_id"], ada["id"], "{events}");
}

crate::helpers::on_both_stores!(a_submission_makes_a_lead_and_its_booking_joins_it, kind);

async fn a_booking_first_then_its_missed_submission_from_the_poll_is_noted_on_its_prospect(kind: StoreKind) {
    let (app, admin, form) = organization_with_a_form(kind).await;
    // Calendly delivers nothing: the manual sync reads the booking, the poll the submission.
    app.sim.set_webhook_deliveries(false);
    let submission = app.sim.submit_form(&form, &[("Entreprise", "Corp"), ("Votre e-mail", "bob@corp.example")]).await;
    let spec = BookingSpec::new("Bob Martin", "bob.other@mail.example", "Découverte 30min", in_days(3));
    app.sim.book_after_form(&admin, spec, &submission).await;
    // Someone filled the form without giving an e-mail: counted, left out.
    app.sim.submit_form(&form, &[("Entreprise", "Anonymous Ltd")]).await;
    app.sync("org-a").await;
    let bob = app.prospect_by_email("org-a", "bob.other@mail.example").await.expect("the booking's lead");
    assert_eq!(count(&bob, FORM_NOTE), 0);

    let first = scheduled_sync(&app).await;
    assert_eq!(
        (first["form_submissions"].as_u64(), first["form_submissions_without_email"].as_u64()),
        (Some(1), Some(1)),
        "{first}"
    );
    let second = scheduled_sync(&app).await;
    assert_eq!(second["form_submissions"], 0, "recorded once: {second}");
    let bob = app.prospect_by_email("org-a", "bob.other@mail.example").await.unwrap();
    assert_eq!((count(&bob, FORM_NOTE), count(&bob, BOOKED_NOTE)), (1, 1), "{bob}");
    assert!(app.prospect_by_email("org-a", "bob@corp.example").await.is_none(), "joined the booking's lead");
    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 1, "no lead without an e-mail: {prospects:?}");
    assert!(!prospects[0]["notes"].as_str().unwrap().contains("Anonymous"));

    // The delivery Calendly makes late (a retry) adds nothing.
    app.sim.set_webhook_deliveries(true);
    let late = app.sim.submit_form(&form, &[("Votre e-mail", "carla@corp.example")]).await;
    assert!(!late.is_empty());
    let carla = app.prospect_by_email("org-a", "carla@corp.example").await.expect("delivered");
    scheduled_sync(&app).await;
    let again = app.prospect_by_email("org-a", "carla@corp.example").await.unwrap();
    assert_eq!((count(&carla, FORM_NOTE), count(&again, FORM_NOTE)), (1, 1), "{again}");
}

crate::helpers::on_both_stores!(
    a_booking_first_then_its_missed_submission_from_the_poll_is_noted_on_its_prospect,
    kind
);

async fn a_submission_delivered_after_its_booking_joins_the_bookings_prospect(kind: StoreKind) {
    let (app, admin, form) = organization_with_a_form(kind).await;
    // The submission's delivery is lost at first; the booking's arrives; then Calendly's retry
    // of the submission, twice.
    app.sim.set_webhook_deliveries(false);
    let submission = app.sim.submit_form(&form, &[("Votre e-mail", "eve@corp.example")]).await;
    app.sim.set_webhook_deliveries(true);
    let spec = BookingSpec::new("Eve Martin", "eve.home@mail.example", "Découverte 30min", in_days(2));
    app.sim.book_after_form(&admin, spec, &submission).await;
    let eve = app.prospect_by_email("org-a", "eve.home@mail.example").await.expect("the booking's lead");
    assert_eq!((count(&eve, FORM_NOTE), count(&eve, BOOKED_NOTE)), (0, 1), "{eve}");
    app.sim.redeliver_submission(&submission).await;
    app.sim.redeliver_submission(&submission).await;
    scheduled_sync(&app).await;
    let eve = app.prospect_by_email("org-a", "eve.home@mail.example").await.unwrap();
    assert_eq!((count(&eve, FORM_NOTE), count(&eve, BOOKED_NOTE)), (1, 1), "{eve}");
    assert!(app.prospect_by_email("org-a", "eve@corp.example").await.is_none(), "no second lead");
    assert_eq!(app.prospects("org-a").await.len(), 1);
}

crate::helpers::on_both_stores!(a_submission_delivered_after_its_booking_joins_the_bookings_prospect, kind);

async fn a_submission_and_its_booking_racing_make_one_lead(kind: StoreKind) {
    let (app, admin, form) = organization_with_a_form(kind).await;
    for i in 0..5 {
        app.sim.set_webhook_deliveries(false);
        let email = format!("lead{i}@corp.example");
        let submission = app.sim.submit_form(&form, &[("Votre e-mail", email.as_str())]).await;
        app.sim.set_webhook_deliveries(true);
        let spec = BookingSpec::new("Racing Lead", &format!("other{i}@mail.example"), "Découverte 30min", in_days(2));
        tokio::join!(app.sim.book_after_form(&admin, spec, &submission), app.sim.redeliver_submission(&submission));
    }
    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 5, "one lead per submission and booking: {prospects:?}");
    for p in &prospects {
        assert_eq!((count(p, FORM_NOTE), count(p, BOOKED_NOTE)), (1, 1), "{p}");
    }
}

crate::helpers::on_both_stores!(a_submission_and_its_booking_racing_make_one_lead, kind);

/// In user scope (or without `routing_forms:read`) submissions are neither asked for nor read.
#[tokio::test]
async fn user_scope_reads_no_routing_forms() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let form = app.sim.add_routing_form(&host, "Qualification", &["Votre e-mail"]);
    app.sim.submit_form(&form, &[("Votre e-mail", "dan@corp.example")]).await;
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "dan@corp.example").await.is_none());
    assert_eq!(app.sim.request_count("routing_form_submissions"), 0, "never polled in user scope");
}

/// Organization scope, but the app is not granted `routing_forms:read` (Calendly refuses a
/// family's events and lists without it): the subscription does not ask for submissions, no
/// routing form endpoint is called, the status says the scope is missing, bookings still sync.
#[tokio::test]
async fn without_routing_forms_read_no_submission_is_asked_for_or_read() {
    let app = TestApp::spawn().await;
    app.sim.set_app_scopes(&[
        "users:read",
        "organizations:read",
        "event_types:read",
        "scheduled_events:read",
        "webhooks:write",
    ]);
    let (app, admin, form) = organization_with_a_form_on(app).await;
    app.sim.submit_form(&form, &[("Votre e-mail", "fay@corp.example")]).await;
    app.sim.book(&admin, BookingSpec::new("Gil Lead", "gil@corp.example", "Découverte 30min", in_days(2))).await;
    scheduled_sync(&app).await;
    assert!(app.prospect_by_email("org-a", "gil@corp.example").await.is_some(), "bookings still arrive");
    assert!(app.prospect_by_email("org-a", "fay@corp.example").await.is_none());
    for endpoint in ["routing_forms", "routing_form", "routing_form_submissions", "scope_refused"] {
        assert_eq!(app.sim.request_count(endpoint), 0, "{endpoint}: nothing Calendly would refuse was asked");
    }
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert!(status["missing_scopes"].as_array().unwrap().contains(&json!("routing_forms:read")), "{status}");
}
