//!
//! Long on purpose: each sync behaviour (concurrency, reschedules, cancellations, tokens,
//! outages) is one scenario here, run on both stores.
use crate::helpers::{TestApp, in_days, jan_16_1630_paris};
use calendly_sim::BookingSpec;
use local_stack::StackOptions;
use serde_json::json;
use std::collections::HashMap;

mod failures;

async fn long_window_app() -> TestApp {
    // Reach back far enough to see 16/01/2026, the date the product's examples use.
    let env = HashMap::from([("SYNC_DAYS_PAST".to_string(), "3650".to_string())]);
    TestApp::spawn_with(StackOptions { env, ..Default::default() }).await
}

#[tokio::test]
async fn a_booking_by_an_unknown_email_creates_a_calendly_prospect_with_its_note() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    let mut spec = BookingSpec::new("John Doe", "john.doe@example.com", "Découverte 30min", jan_16_1630_paris());
    spec.text_reminder_number = Some("+33 6 12 34 56 78".into());
    app.sim.seed_bookings(&host, vec![spec]);
    app.connect("org-a", &host).await;

    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 1);
    let p = &prospects[0];
    assert_eq!(p["source"], "calendly");
    assert_eq!(p["status"], "new");
    assert_eq!(p["firstname"], "John");
    assert_eq!(p["lastname"], "Doe");
    assert_eq!(p["email"], "john.doe@example.com");
    assert_eq!(p["phone"], "+33 6 12 34 56 78");
    assert_eq!(p["notes"], "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min");

    let notifications = app.notifications("org-a").await;
    assert_eq!(notifications.len(), 1);
    let n = &notifications[0];
    assert_eq!(n["type"], "calendly_prospect_created");
    assert_eq!(n["title"], "Nouveau prospect Calendly");
    assert_eq!(n["message"], "John Doe a réservé un rendez-vous \"Découverte 30min\" le 16/01/2026 16:30:00");
    assert_eq!(n["meta"]["prospect_id"], p["id"]);
    assert!(n["meta"]["calendly_event_uri"].as_str().unwrap().contains("/scheduled_events/"));
    assert_eq!(n["read"], false);
}

#[tokio::test]
async fn a_further_booking_by_a_known_email_appends_one_note_line() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    app.post("/prospects", "org-a", json!({ "firstname": "John", "lastname": "Doe", "email": "John.Doe@Example.com", "notes": "Rencontré au salon" })).await.expect(201);
    app.sim.seed_bookings(
        &host,
        vec![BookingSpec::new("John Doe", "john.doe@example.com", "Découverte 30min", jan_16_1630_paris())],
    );
    app.connect("org-a", &host).await;
    app.sim.seed_bookings(
        &host,
        vec![BookingSpec::new(
            "John Doe",
            "JOHN.DOE@example.com",
            "Suivi 15min",
            "2026-01-17T09:00:00Z".parse().unwrap(),
        )],
    );
    let report = app.sync("org-a").await;
    assert_eq!(report["bookings_new"], 1);
    assert_eq!(report["prospects_created"], 0);
    assert_eq!(report["notes_added"], 1);

    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 1, "one prospect per email, whatever its case");
    assert_eq!(prospects[0]["source"], "manual", "an existing prospect keeps its source");
    assert_eq!(
        prospects[0]["notes"],
        "Rencontré au salon\n\nRendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min\n\nRendez-vous Calendly prévu le 17/01/2026 10:00:00 - Suivi 15min"
    );
    let kinds: Vec<String> =
        app.notifications("org-a").await.iter().map(|n| n["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["calendly_appointment_booked", "calendly_appointment_booked"]);
}

#[tokio::test]
async fn an_unchanged_resync_makes_no_invitee_calls_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let specs = (0..150)
        .map(|i| {
            BookingSpec::new(
                &format!("Invitee {i}"),
                &format!("i{i}@example.com"),
                "Découverte 30min",
                in_days(1 + i % 60),
            )
        })
        .collect();
    app.sim.seed_bookings(&host, specs);
    let first = app.connect("org-a", &host).await;
    assert_eq!(first["sync"]["events_seen"], 150);
    assert_eq!(first["sync"]["bookings_new"], 150);

    let invitee_calls = app.sim.request_count("invitees");
    let events_calls = app.sim.request_count("scheduled_events");
    let again = app.sync("org-a").await;
    assert_eq!(again["events_seen"], 150);
    assert_eq!(again["bookings_new"], 0);
    assert_eq!(again["bookings_changed"], 0);
    assert_eq!(again["notes_added"], 0);
    // Upcoming bookings first (two pages of 100), then the (empty) past part of the window.
    assert_eq!(again["calendly_requests"], 3, "three pages, nothing else");
    assert_eq!(app.sim.request_count("invitees"), invitee_calls);
    assert_eq!(app.sim.request_count("scheduled_events"), events_calls + 3);
    let first_page = app.get("/notifications?limit=100", "org-a").await.expect(200);
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let second_page = app.get(&format!("/notifications?limit=100&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(second_page["items"].as_array().unwrap().len(), 50, "150 notifications in all, one per booking");
}

#[tokio::test]
async fn a_cancellation_is_reflected_with_one_note_and_a_notification() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    app.sim.set_webhook_deliveries(false);
    let booked = app
        .sim
        .seed_bookings(
            &host,
            vec![BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", jan_16_1630_paris())],
        )
        .remove(0);
    app.connect("org-a", &host).await;
    app.sim.cancel(&booked, "Empêchement").await;
    let report = app.sync("org-a").await;
    assert_eq!(report["bookings_changed"], 1);
    app.sync("org-a").await;

    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(
        p["notes"],
        "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min\n\nRendez-vous Calendly annulé (16/01/2026 16:30:00) - Découverte 30min\nMotif : Empêchement"
    );
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["event_status"], "canceled");
    assert_eq!(events["items"][0]["cancel_reason"], "Empêchement");
    let notifications = app.notifications("org-a").await;
    assert_eq!(notifications[0]["type"], "calendly_appointment_canceled");
    assert_eq!(notifications.len(), 2);
}

#[tokio::test]
async fn a_reschedule_is_one_reported_note_and_no_cancellation() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    app.sim.set_webhook_deliveries(false);
    let booked = app
        .sim
        .seed_bookings(
            &host,
            vec![BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", jan_16_1630_paris())],
        )
        .remove(0);
    app.connect("org-a", &host).await;
    app.sim.reschedule(&booked, "2026-01-17T09:00:00Z".parse().unwrap()).await;
    app.sync("org-a").await;

    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(
        p["notes"],
        "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min\n\nRendez-vous Calendly reporté au 17/01/2026 10:00:00 (initialement le 16/01/2026 16:30:00) - Découverte 30min"
    );
    let kinds: Vec<String> =
        app.notifications("org-a").await.iter().map(|n| n["type"].as_str().unwrap().to_string()).collect();
    assert!(!kinds.contains(&"calendly_appointment_canceled".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"calendly_appointment_rescheduled".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn notes_follow_the_organization_timezone() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    app.patch("/organization", "org-a", json!({ "settings": { "timezone": "America/New_York" } })).await.expect(200);
    app.sim.seed_bookings(
        &host,
        vec![BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", jan_16_1630_paris())],
    );
    app.connect("org-a", &host).await;
    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(p["notes"], "Rendez-vous Calendly prévu le 16/01/2026 10:30:00 - Découverte 30min");
}

async fn twenty_concurrent_syncs_give_one_prospect_per_email_and_one_note_per_booking(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // Five people, two bookings each, one of them under two spellings of the same email.
    let mut specs = Vec::new();
    for i in 0..5 {
        specs.push(BookingSpec::new(
            &format!("P {i}"),
            &format!("p{i}@example.com"),
            "Découverte 30min",
            in_days(2 + i),
        ));
        specs.push(BookingSpec::new(&format!("P {i}"), &format!("P{i}@Example.com"), "Suivi 15min", in_days(10 + i)));
    }
    app.sim.seed_bookings(&host, specs);

    // Twenty clicks at once: one job stands for all of them, and each booking is new once.
    // (Calendly answering in 100 ms keeps the job running while the twenty requests land.)
    app.sim.set_latency(std::time::Duration::from_millis(100));
    let syncs = (0..20).map(|_| app.post("/calendly/sync", "org-a", json!({})));
    let replies = futures::future::join_all(syncs).await;
    app.sim.set_latency(std::time::Duration::ZERO);
    let ids: std::collections::BTreeSet<String> =
        replies.into_iter().map(|r| r.expect(202)["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "one job, whatever the number of requests");
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "succeeded");
    assert_eq!(ended["bookings_new"], 10, "each booking is new exactly once");
    // A second job over the same bookings, with duplicated deliveries of its message, adds nothing.
    let second = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let message = shared::domain::SyncJobMessage {
        organization_id: shared::domain::OrganizationId::new("org-a"),
        job_id: second["id"].as_str().unwrap().to_string(),
        turn: 0,
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let duplicates = (0..5).map(|_| app.stack.services.worker().run_sync_job(&message, deadline));
    for result in futures::future::join_all(duplicates).await {
        result.expect("a duplicate delivery is handled, not failed");
    }
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["id"], second["id"]);
    assert_eq!(ended["bookings_new"], 0);
    assert_eq!(ended["slices"], 1, "duplicated messages ran one slice");

    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), 5);
    for p in &prospects {
        assert_eq!(p["notes"].as_str().unwrap().split("\n\n").count(), 2, "{p}");
    }
    assert_eq!(app.notifications("org-a").await.len(), 10);
}

#[tokio::test]
async fn sync_without_a_connection_is_a_409() {
    let app = TestApp::spawn().await;
    let reply = app.post("/calendly/sync", "org-a", json!({})).await;
    assert_eq!(reply.status.as_u16(), 409);
    assert_eq!(reply.error_code(), "calendly_not_connected");
}

#[tokio::test]
async fn the_schedule_syncs_due_integrations_only() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.host("Host A"), app.host("Host B"));
    app.connect("org-a", &a).await;
    app.connect("org-b", &b).await;
    app.patch("/calendly/settings", "org-b", json!({ "auto_sync_enabled": false })).await.expect(200);
    app.seed(&a, "John Doe", "john@example.com", "Découverte 30min", in_days(3));
    app.seed(&b, "Jane Roe", "jane@example.com", "Découverte 30min", in_days(3));

    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 0, "nothing is due yet");
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 2, "B's job only checks its webhook subscription");
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["trigger"], "scheduled");
    assert_eq!(ended["state"], "succeeded");
    assert_eq!(app.prospects("org-a").await.len(), 1);
    let b_job = app.wait_for_sync("org-b").await;
    assert_eq!((b_job["state"].as_str(), b_job["events_seen"].as_u64()), (Some("succeeded"), Some(0)));
    // Queued once: the next tick finds nothing due until the next interval.
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 0);
    assert_eq!(app.prospects("org-b").await.len(), 0, "auto-sync is off for B");
}

#[tokio::test]
async fn events_are_listed_newest_start_first_with_a_cursor() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let specs = (0..5)
        .map(|i| BookingSpec::new(&format!("P {i}"), &format!("p{i}@example.com"), "Découverte 30min", in_days(1 + i)))
        .collect();
    app.sim.seed_bookings(&host, specs);
    app.connect("org-a", &host).await;
    let first = app.get("/calendly/events?limit=3", "org-a").await.expect(200);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(first["items"][0]["invitee_email"], "p4@example.com");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/calendly/events?limit=3&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"][1]["invitee_email"], "p0@example.com");
    assert!(second["next_cursor"].is_null());
    assert_eq!(app.get("/calendly/events?cursor=bogus!", "org-a").await.status.as_u16(), 400);
    assert_eq!(app.get("/calendly/events?limit=0", "org-a").await.status.as_u16(), 400);
}

crate::helpers::on_both_stores!(twenty_concurrent_syncs_give_one_prospect_per_email_and_one_note_per_booking);

#[tokio::test]
async fn a_no_show_marked_without_a_webhook_is_found_by_polling_for_a_week_after_the_event() {
    let app = TestApp::spawn().await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    let recent = app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(-1));
    let old = app.seed(&host, "Jane Roe", "jane@example.com", "Démo", in_days(-12));
    app.connect("org-a", &host).await;

    // The host marks both as no-shows in Calendly; no webhook reaches us.
    app.sim.set_no_show(&recent, true).await;
    app.sim.set_no_show(&old, true).await;
    let before = app.sim.request_count("invitees");
    app.sync("org-a").await;
    assert_eq!(app.sim.request_count("invitees"), before, "the same day, nothing is re-read");

    app.advance_clocks(chrono::Duration::days(1));
    let ended = app.sync("org-a").await;
    assert_eq!(app.sim.request_count("invitees") - before, 1, "only the event that ended this week");
    assert_eq!(ended["notes_added"], 1);
    let john = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    let notes: Vec<&str> = john["notes"].as_str().unwrap().split("\n\n").collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].starts_with("Absence au rendez-vous Calendly du "), "{notes:?}");
    let jane = app.prospect_by_email("org-a", "jane@example.com").await.unwrap();
    assert_eq!(jane["notes"].as_str().unwrap().split("\n\n").count(), 1, "past the week: not re-read");

    // Re-read daily, the same no-show adds nothing more.
    app.advance_clocks(chrono::Duration::days(1));
    assert_eq!(app.sync("org-a").await["notes_added"], 0);
}

#[tokio::test]
async fn a_booking_carries_its_answers_origin_and_link_into_the_event_and_the_note() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    let mut spec = BookingSpec::new("John Doe", "john.doe@example.com", "Découverte 30min", jan_16_1630_paris());
    spec.questions = vec![
        ("Votre entreprise ?".into(), "Acme".into()),
        ("Votre besoin ?".into(), "Un CRM\npour 12 commerciaux".into()),
    ];
    spec.utm = Some(("google".into(), "cpc".into(), "hiver".into()));
    spec.join_url = Some("https://zoom.us/j/81234567890".into());
    app.sim.seed_bookings(&host, vec![spec]);
    app.connect("org-a", &host).await;

    let note = app.prospects("org-a").await[0]["notes"].as_str().unwrap().to_string();
    assert_eq!(
        note,
        "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min\n\
         Votre entreprise ? : Acme\n\
         Votre besoin ? : Un CRM pour 12 commerciaux\n\
         Provenance : utm_source=google, utm_medium=cpc, utm_campaign=hiver\n\
         Lien de la réunion : https://zoom.us/j/81234567890"
    );
    let event = app.get("/calendly/events", "org-a").await.expect(200)["items"][0].clone();
    for key in [
        "id",
        "organization_id",
        "integration_id",
        "prospect_id",
        "calendly_event_uri",
        "calendly_event_type",
        "event_name",
        "event_start_time",
        "event_end_time",
        "event_status",
        "location",
        "invitee_name",
        "invitee_email",
        "invitee_timezone",
        "invitee_uri",
        "invitee_questions",
    ] {
        assert!(event.get(key).is_some(), "events carry the seed's {key}: {event}");
    }
    assert_eq!(event["organization_id"], "org-a");
    assert_eq!(event["event_status"], "active");
    assert_eq!(event["invitee_questions"][0], json!({ "question": "Votre entreprise ?", "answer": "Acme" }));
    assert_eq!(event["tracking"]["utm_campaign"], "hiver");
    assert_eq!(event["join_url"], "https://zoom.us/j/81234567890");
}

#[tokio::test]
async fn a_cancellation_note_says_why_and_the_details_can_be_turned_off() {
    let app = long_window_app().await;
    let host = app.host("Camille Martin");
    app.sim.set_webhook_deliveries(false);
    let mut spec = BookingSpec::new("John Doe", "john@example.com", "Démo", jan_16_1630_paris());
    spec.questions = vec![("Votre entreprise ?".into(), "Acme".into())];
    let booked = app.sim.seed_bookings(&host, vec![spec]).remove(0);
    app.patch("/organization", "org-a", json!({ "settings": { "calendly_note_details": false } })).await.expect(200);
    app.connect("org-a", &host).await;
    let first = app.prospects("org-a").await[0]["notes"].as_str().unwrap().to_string();
    assert_eq!(first, "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Démo", "details off: the seed's line only");

    app.patch("/organization", "org-a", json!({ "settings": { "calendly_note_details": null } })).await.expect(200);
    app.sim.cancel(&booked, "Budget gelé").await;
    app.sync("org-a").await;
    let notes = app.prospects("org-a").await[0]["notes"].as_str().unwrap().to_string();
    let last = notes.split("\n\n").last().unwrap();
    assert_eq!(last, "Rendez-vous Calendly annulé (16/01/2026 16:30:00) - Démo\nMotif : Budget gelé");
    let event = app.get("/calendly/events", "org-a").await.expect(200)["items"][0].clone();
    assert_eq!(event["cancel_reason"], "Budget gelé");
    assert!(event["canceled_by"].is_string(), "{event}");
}

async fn filters_keep_other_event_types_ignored_addresses_and_the_host_out_of_the_crm(app: TestApp) {
    let host = app.host("Camille Martin");
    app.sim.set_webhook_deliveries(false);
    app.seed(&host, "Lead", "lead@example.com", "Découverte 30min", in_days(2));
    app.connect("org-a", &host).await;
    let types = app.get("/calendly/event-types", "org-a").await.expect(200);
    let discovery =
        types["items"].as_array().unwrap().iter().find(|t| t["name"] == "Découverte 30min").unwrap().clone();
    assert_eq!(discovery["selected"], true, "no filter: every type is taken");

    let bad = app.patch("/calendly/settings", "org-a", json!({ "ignore_emails": ["not an address"] })).await;
    assert_eq!(bad.status.as_u16(), 400);
    let status = app
        .patch(
            "/calendly/settings",
            "org-a",
            json!({ "event_types": [discovery["uri"]], "ignore_emails": ["spam@example.com", "@concurrent.fr"] }),
        )
        .await
        .expect(200);
    assert_eq!(status["ignore_emails"], json!(["spam@example.com", "@concurrent.fr"]));

    app.seed(&host, "Other Type", "other@example.com", "Démo produit", in_days(3));
    app.seed(&host, "Spam", "SPAM@example.com", "Découverte 30min", in_days(4));
    app.seed(&host, "Rival", "boss@concurrent.fr", "Découverte 30min", in_days(5));
    app.seed(&host, "Myself", &host.email, "Découverte 30min", in_days(6));
    app.seed(&host, "Second Lead", "second@example.com", "Découverte 30min", in_days(7));
    let ended = app.sync("org-a").await;
    assert_eq!(ended["bookings_new"], 1, "{ended}");
    let emails: std::collections::BTreeSet<String> =
        app.prospects("org-a").await.iter().map(|p| p["email"].as_str().unwrap().to_string()).collect();
    assert_eq!(emails, ["lead@example.com", "second@example.com"].into_iter().map(String::from).collect());
    // Event types are read from Calendly again once the cached list is five minutes old.
    app.advance_clocks(chrono::Duration::minutes(6));
    let types = app.get("/calendly/event-types", "org-a").await.expect(200);
    let demo = types["items"].as_array().unwrap().iter().find(|t| t["name"] == "Démo produit").unwrap().clone();
    assert_eq!(demo["selected"], false);

    // Back to every type: the other type's booking is taken at the next sync.
    app.patch("/calendly/settings", "org-a", json!({ "event_types": null })).await.expect(200);
    assert_eq!(app.sync("org-a").await["bookings_new"], 1);
    assert!(app.prospect_by_email("org-a", "other@example.com").await.is_some());
}

crate::helpers::on_both_stores!(filters_keep_other_event_types_ignored_addresses_and_the_host_out_of_the_crm);

#[tokio::test]
async fn a_group_event_with_more_invitees_than_a_page_syncs_every_one_of_them() {
    let app = TestApp::spawn().await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    let specs = (0..150)
        .map(|i| BookingSpec::new(&format!("Guest {i}"), &format!("guest{i}@example.com"), "Webinaire", in_days(3)))
        .collect();
    app.sim.seed_group_event(&host, specs);
    let ended = app.connect("org-a", &host).await["sync"].clone();
    assert_eq!(ended["events_seen"], 1);
    assert_eq!(ended["bookings_new"], 150);
    assert_eq!(app.sim.request_count("invitees"), 2, "two pages of invitees");
    let first = app.get("/prospects?limit=100", "org-a").await.expect(200);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = app.get(&format!("/prospects?limit=100&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(first["items"].as_array().unwrap().len() + second["items"].as_array().unwrap().len(), 150);
}
