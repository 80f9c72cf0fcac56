use crate::helpers::{TestApp, in_days};
use calendly_sim::BookingSpec;
use serde_json::{Value, json};

async fn connected_app() -> (TestApp, calendly_sim::SimUser, String) {
    connected(TestApp::spawn().await).await
}

async fn connected(app: TestApp) -> (TestApp, calendly_sim::SimUser, String) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    (app, host, url)
}

#[tokio::test]
async fn a_signed_delivery_records_the_booking_without_calling_calendly() {
    let (app, host, _) = connected_app().await;
    let api_calls = app.sim.api_request_count();
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    assert_eq!(app.sim.api_request_count(), api_calls, "processed from the payload alone");
    let p = app.prospect_by_email("org-a", "john@example.com").await.expect("the delivery created the prospect");
    assert_eq!(p["source"], "calendly");
    // The next sync sees the same booking and adds nothing.
    let report = app.sync("org-a").await;
    assert_eq!(report["bookings_new"], 0);
    assert_eq!(report["notes_added"], 0);
}

#[tokio::test]
async fn forged_stale_and_unsigned_deliveries_are_401_and_write_nothing() {
    let (app, host, url) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    let now = chrono::Utc::now();
    let (body, _) = app.sim.signed_delivery("invitee.created", &booked, now);
    let forged = calendly_sim::sign_header("not-the-key", now.timestamp(), &body);
    let stale = calendly_sim::sign_header(
        &app.sim.config().webhook_signing_key,
        (now - chrono::Duration::hours(26)).timestamp(),
        &body,
    );
    for header in [Some(forged), Some(stale), Some("t=abc".to_string()), None] {
        let mut request = app.http.post(&url).header("content-type", "application/json").body(body.clone());
        if let Some(h) = &header {
            request = request.header("calendly-webhook-signature", h);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 401, "{header:?}");
    }
    assert!(app.prospects("org-a").await.is_empty());
}

/// Posts `body` signed with the app's key; the status and the answer.
async fn post_signed(app: &TestApp, url: &str, body: Vec<u8>) -> (u16, Value) {
    let header =
        calendly_sim::sign_header(&app.sim.config().webhook_signing_key, chrono::Utc::now().timestamp(), &body);
    let reply = app.http.post(url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_signed_body_we_cannot_use_is_acknowledged_so_calendly_keeps_the_subscription() {
    let (app, host, url) = connected_app().await;
    for body in [
        b"{\"hello\": \"world\"}".to_vec(),
        b"not json at all".to_vec(),
        serde_json::to_vec(&json!({ "event": "invitee.created", "created_by": host.uri, "payload": { "odd": 1 } }))
            .unwrap(),
    ] {
        let (status, answer) = post_signed(&app, &url, body).await;
        assert_eq!(status, 200, "a 4xx would make Calendly disable the subscription");
        assert_eq!(answer["status"], "ignored", "{answer}");
    }
    assert!(app.prospects("org-a").await.is_empty());
}

#[tokio::test]
async fn a_no_show_naming_only_its_invitee_and_a_cancel_without_its_event_are_applied() {
    let (app, host, url) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    deliver(&app, &url, "invitee.created", &booked).await;

    // The no-show resource as Calendly documents it: `{uri, invitee: "<invitee uri>", created_at}`.
    app.sim.set_no_show(&booked, true).await;
    let no_show = json!({
        "event": "invitee_no_show.created",
        "created_at": chrono::Utc::now(),
        "created_by": host.uri,
        "payload": { "uri": "https://api.calendly.com/invitee_no_shows/NS1", "invitee": booked.invitee_uri(), "created_at": chrono::Utc::now() },
    });
    let (status, answer) = post_signed(&app, &url, serde_json::to_vec(&no_show).unwrap()).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("processed")), "{answer}");
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["no_show"], true);

    // A cancellation whose payload lacks `scheduled_event`: the event is read from Calendly.
    app.sim.cancel(&booked, "Empêchement").await;
    let (body, _) = app.sim.signed_delivery("invitee.canceled", &booked, chrono::Utc::now());
    let mut cancel: Value = serde_json::from_slice(&body).unwrap();
    let created_by = cancel["payload"]["scheduled_event"]["event_memberships"].clone();
    cancel["payload"].as_object_mut().unwrap().remove("scheduled_event");
    assert!(created_by.is_array());
    let (status, answer) = post_signed(&app, &url, serde_json::to_vec(&cancel).unwrap()).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("processed")), "{answer}");
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["event_status"], "canceled", "{events}");
}

async fn twenty_copies_of_one_delivery_and_a_sync_give_one_note(app: TestApp) {
    let (app, host, url) = connected(app).await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    let (body, header) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    let deliveries = (0..20).map(|_| {
        app.http
            .post(&url)
            .header("calendly-webhook-signature", header.clone())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    let sync = app.sync("org-a");
    let (replies, _) = futures::join!(futures::future::join_all(deliveries), sync);
    for r in replies {
        assert_eq!(r.unwrap().status().as_u16(), 200);
    }
    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(p["notes"].as_str().unwrap().split("\n\n").count(), 1);
    assert_eq!(app.notifications("org-a").await.len(), 1);
}

async fn a_delivery_for_a_disconnected_or_unknown_integration_is_410_so_calendly_deletes_it(app: TestApp) {
    let (app, host, url) = connected(app).await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    app.post("/calendly/disconnect", "org-a", serde_json::json!({})).await.expect(200);
    let unknown = format!("{}/calendly/webhook/{}", app.stack.url(), "0c3e2f6a-5b4d-4e8f-9a1b-2c3d4e5f6a7b");
    let legacy = format!("{}/calendly/webhook", app.stack.url());
    for target in [&url, &unknown, &legacy] {
        let (body, header) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
        let reply = app.http.post(target).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 410, "{target}");
        let answer: Value = reply.json().await.unwrap();
        assert_eq!(answer["status"], "gone", "{answer}");
    }
    assert!(app.prospects("org-a").await.is_empty());
}

crate::helpers::on_both_stores!(a_delivery_for_a_disconnected_or_unknown_integration_is_410_so_calendly_deletes_it);

async fn deliver(app: &TestApp, url: &str, event: &str, booked: &calendly_sim::Booked) -> Value {
    let (body, header) = app.sim.signed_delivery(event, booked, chrono::Utc::now());
    let reply = app.http.post(url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    reply.json().await.unwrap()
}

/// John Doe books a "Découverte 30min" in two days (delivered or not, as the test set it).
async fn book_john(app: &TestApp, host: &calendly_sim::SimUser) -> calendly_sim::Booked {
    app.sim.book(host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await
}

fn notes(p: &Value) -> Vec<String> {
    p["notes"].as_str().unwrap().split("\n\n").map(String::from).collect()
}

#[tokio::test]
async fn a_delivery_without_an_integration_id_is_routed_by_its_host() {
    let (app, host, _) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    let answer = deliver(&app, &app.url("/calendly/webhook"), "invitee.created", &booked).await;
    assert_eq!(answer["status"], "processed");
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());
}

#[tokio::test]
async fn events_we_do_not_use_are_acknowledged_and_ignored() {
    let (app, host, url) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    let answer = deliver(&app, &url, "routing_form_submission.created", &booked).await;
    assert_eq!(answer["status"], "ignored");
    assert!(app.prospects("org-a").await.is_empty());
}

async fn a_reschedule_delivered_in_either_order_is_one_reported_note(store: crate::helpers::StoreKind) {
    for new_first in [false, true] {
        let (app, host, url) = connected(TestApp::spawn_on(store).await).await;
        app.sim.set_webhook_deliveries(false);
        let old =
            app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
        deliver(&app, &url, "invitee.created", &old).await;
        let new = app.sim.reschedule(&old, in_days(3)).await;
        if new_first {
            deliver(&app, &url, "invitee.created", &new).await;
            deliver(&app, &url, "invitee.canceled", &old).await;
        } else {
            deliver(&app, &url, "invitee.canceled", &old).await;
            deliver(&app, &url, "invitee.created", &new).await;
        }
        let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
        let notes = notes(&p);
        assert_eq!(notes.len(), 2, "new_first={new_first}: {notes:?}");
        assert!(notes[1].starts_with("Rendez-vous Calendly reporté au "), "{notes:?}");
        assert!(notes.iter().all(|n| !n.contains("annulé")), "{notes:?}");
        // The next sync agrees and adds nothing.
        assert_eq!(app.sync("org-a").await["notes_added"], 0);
    }
}

#[tokio::test]
async fn a_cancellation_delivered_before_its_creation_ends_canceled() {
    let (app, host, url) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    let (created_body, created_header) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    app.sim.cancel(&booked, "Empêchement").await;
    deliver(&app, &url, "invitee.canceled", &booked).await;
    let late = app
        .http
        .post(&url)
        .header("calendly-webhook-signature", created_header)
        .body(created_body)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status().as_u16(), 200);

    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["event_status"], "canceled");
    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    let notes = notes(&p);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].starts_with("Rendez-vous Calendly annulé"));
}

#[tokio::test]
async fn a_no_show_adds_one_note_and_clearing_it_adds_none() {
    let (app, host, url) = connected_app().await;
    app.sim.set_webhook_deliveries(false);
    let booked = book_john(&app, &host).await;
    deliver(&app, &url, "invitee.created", &booked).await;
    app.sim.set_no_show(&booked, true).await;
    deliver(&app, &url, "invitee_no_show.created", &booked).await;
    deliver(&app, &url, "invitee_no_show.created", &booked).await;
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["no_show"], true);
    app.sim.set_no_show(&booked, false).await;
    deliver(&app, &url, "invitee_no_show.deleted", &booked).await;
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["no_show"], false);

    let notes = notes(&app.prospect_by_email("org-a", "john@example.com").await.unwrap());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].starts_with("Absence au rendez-vous Calendly du "), "{notes:?}");
}

#[tokio::test]
async fn the_schedule_recreates_a_disabled_subscription_and_keeps_a_working_one() {
    let (app, host, _) = connected_app().await;
    let original = app.sim.webhook_subscriptions(&host)[0].0.clone();
    app.advance_clocks(chrono::Duration::minutes(31));
    // Each scheduled job checks the subscription before it syncs.
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1);
    assert_eq!(app.wait_for_sync("org-a").await["trigger"], "scheduled");
    assert_eq!(app.sim.webhook_subscriptions(&host)[0].0, original, "a working subscription is never replaced");

    app.sim.disable_webhook_subscriptions(&host);
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1);
    assert_eq!(app.wait_for_sync("org-a").await["state"], "succeeded");
    let subscriptions = app.sim.webhook_subscriptions(&host);
    assert_eq!(subscriptions.len(), 1);
    assert_ne!(subscriptions[0].0, original);
    assert_eq!(subscriptions[0].2, "active");
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["webhook_active"], true);
    // And deliveries flow again.
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());
}

crate::helpers::on_both_stores!(twenty_copies_of_one_delivery_and_a_sync_give_one_note);

crate::helpers::on_both_stores!(a_reschedule_delivered_in_either_order_is_one_reported_note, kind);

#[tokio::test]
async fn reconnecting_to_another_calendly_user_leaves_one_subscription_for_the_new_user() {
    let (app, a, _) = connected_app().await;
    let b = app.sim.add_colleague(&a, "Bea Host", "bea@host.example");
    app.connect("org-a", &b).await;
    assert!(app.sim.webhook_subscriptions(&a).is_empty(), "the previous user's subscription is deleted");
    assert_eq!(app.sim.webhook_subscriptions(&b).len(), 1);
    // A's bookings no longer reach org-a; B's do.
    app.sim.book(&a, BookingSpec::new("For A", "for-a@example.com", "Démo", in_days(2))).await;
    app.sim.book(&b, BookingSpec::new("For B", "for-b@example.com", "Démo", in_days(2))).await;
    assert!(app.prospect_by_email("org-a", "for-a@example.com").await.is_none());
    assert!(app.prospect_by_email("org-a", "for-b@example.com").await.is_some());
}

#[tokio::test]
async fn a_previous_users_subscription_left_on_our_url_is_deleted_by_its_first_delivery() {
    let (app, a, url) = connected_app().await;
    let b = app.sim.add_colleague(&a, "Bea Host", "bea@host.example");
    // A's access is gone, so its subscription can't be deleted with A's token at reconnect.
    app.sim.refuse_access_of(&a);
    app.connect("org-a", &b).await;
    assert_eq!(app.sim.webhook_subscriptions(&a).len(), 1, "A's subscription outlived the reconnect");
    let subscriptions = app.sim.webhook_subscriptions(&b);
    assert_eq!(
        (subscriptions.len(), subscriptions[0].1.as_str(), subscriptions[0].2.as_str()),
        (1, url.as_str(), "active")
    );
    // A's next booking reaches our URL through A's subscription: 410, and Calendly deletes it.
    app.sim.book(&a, BookingSpec::new("For A", "for-a@example.com", "Démo", in_days(2))).await;
    assert_eq!(app.sim.request_count("delivery_gone"), 1);
    assert!(app.sim.webhook_subscriptions(&a).is_empty(), "Calendly deleted the leftover on the 410");
    assert!(app.prospect_by_email("org-a", "for-a@example.com").await.is_none(), "a previous user's booking");
    // B's subscription is untouched and delivers.
    app.sim.book(&b, BookingSpec::new("For B", "for-b@example.com", "Démo", in_days(2))).await;
    assert!(app.prospect_by_email("org-a", "for-b@example.com").await.is_some());
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["webhook_active"], true);
}

#[tokio::test]
async fn a_plan_without_webhooks_shows_calendlys_refusal_and_polling_carries_on() {
    let app = TestApp::spawn().await;
    let host = app.host("Free Plan");
    app.sim.refuse_webhooks_of(&host, "Please upgrade your Calendly account to Standard");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    let connected = app.connect("org-a", &host).await;
    assert_eq!(connected["sync"]["bookings_new"], 1, "the initial sync ran anyway");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["webhook_active"], false);
    assert!(status["webhook_error"].as_str().unwrap().contains("upgrade"), "{status}");
    app.seed(&host, "Jane Roe", "jane@example.com", "Démo", in_days(3));
    assert_eq!(app.sync("org-a").await["bookings_new"], 1);
}

#[tokio::test]
async fn with_auto_sync_off_the_schedule_still_repairs_the_subscription_daily() {
    let (app, host, _) = connected_app().await;
    app.patch("/calendly/settings", "org-a", json!({ "auto_sync_enabled": false })).await.expect(200);
    app.sim.disable_webhook_subscriptions(&host);
    app.seed(&host, "Polled", "polled@example.com", "Démo", in_days(2));
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1);
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["events_seen"], 0, "no sync: auto-sync is off");
    assert!(app.prospect_by_email("org-a", "polled@example.com").await.is_none());
    let subscriptions = app.sim.webhook_subscriptions(&host);
    assert_eq!((subscriptions.len(), subscriptions[0].2.as_str()), (1, "active"), "re-created");
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 0, "next check in a day");
}

async fn duplicated_reversed_and_retried_deliveries_leave_one_note_per_change(app: TestApp) {
    let (app, host, _) = connected(app).await;
    app.sim.set_chaotic_deliveries(true);
    let booked = book_john(&app, &host).await;
    let moved = app.sim.reschedule(&booked, in_days(4)).await;
    app.sim.cancel(&moved, "Empêchement").await;
    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    let notes = notes(&p);
    assert_eq!(notes.len(), 3, "booked, rescheduled, canceled: {notes:?}");
    assert!(notes[0].starts_with("Rendez-vous Calendly prévu le "), "{notes:?}");
    assert!(notes[1].starts_with("Rendez-vous Calendly reporté au "), "{notes:?}");
    assert!(notes[2].starts_with("Rendez-vous Calendly annulé "), "{notes:?}");
    // And a sync afterwards agrees with what the deliveries did.
    assert_eq!(app.sync("org-a").await["notes_added"], 0);
}

crate::helpers::on_both_stores!(duplicated_reversed_and_retried_deliveries_leave_one_note_per_change);

#[tokio::test]
async fn a_delivery_arriving_after_the_sync_that_already_saw_its_booking_adds_nothing() {
    let (app, host, _) = connected_app().await;
    app.sim.set_delivery_delay(std::time::Duration::from_millis(800));
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    assert_eq!(app.sync("org-a").await["bookings_new"], 1, "the sync saw it first");
    // The delayed delivery lands afterwards.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.sim.request_count("delivery_accepted") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the delayed delivery never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let p = app.prospect_by_email("org-a", "john@example.com").await.unwrap();
    assert_eq!(notes(&p).len(), 1);
    assert_eq!(app.notifications("org-a").await.len(), 1);
}

/// A delivered new booking reads its integration (by the subscription's URL), then the
/// organization, the booking, the e-mail's claim and the browsers in one request, writes the
/// booking with its prospect and notification in one transaction, and counts the delivery in
/// the ledger: the request shape a webhook's cost rests on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_new_booking_is_two_reads_and_one_transaction() {
    let (app, host, url) = connected(TestApp::spawn_on(crate::helpers::StoreKind::DynamoDb).await).await;
    let mut browser = app.browser("org-a").await;
    app.sim.set_webhook_deliveries(false);
    // The first delivery of a process also reads what a process reads once.
    let first = book_john(&app, &host).await;
    deliver(&app, &url, "invitee.created", &first).await;
    browser.expect_event("prospect:created", std::time::Duration::from_secs(2)).await;
    let booked =
        app.sim.book(&host, BookingSpec::new("Jane Roe", "jane@example.com", "Découverte 30min", in_days(3))).await;
    let dynamo = app.stack.dynamo.as_ref().expect("on DynamoDB");
    let before = dynamo.metrics().snapshot();
    let outcome = deliver(&app, &url, "invitee.created", &booked).await;
    let after = dynamo.metrics().snapshot();
    assert_eq!(outcome["changed"], true, "{outcome}");
    let prospect = browser.expect_event("prospect:created", std::time::Duration::from_secs(2)).await;
    assert_eq!(prospect["email"], "jane@example.com");
    browser.expect_event("notification", std::time::Duration::from_secs(2)).await;
    let (reads, writes, transactions) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    assert_eq!(transactions, 1, "the booking, its prospect and its notification at once");
    assert_eq!(writes, 1, "the ledger's count of deliveries");
    assert_eq!(reads, 2, "the integration, then everything else the record and its pushes start from");
}
