//! Webhook deliveries answered for Calendly's retry machine: 2xx when processed, ignored or
//! hopeless, 410 when no active integration of ours has the subscription, 5xx only for a
//! transient failure of ours; retries hours later with their first `t`; a key roll; order.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::{BookingSpec, DeliveryRetry, SimConfig};
use local_stack::StackOptions;
use serde_json::{Value, json};
use std::time::Duration;

/// Calendly's retries compressed: the first after 100 ms, doubling, for 2 s in all.
fn compressed_retries() -> SimConfig {
    SimConfig {
        delivery_retry: DeliveryRetry {
            first_delay: Duration::from_millis(100),
            window: Duration::from_secs(2),
            resign: false,
        },
        ..SimConfig::default()
    }
}

async fn spawn(kind: StoreKind, simulator: SimConfig) -> TestApp {
    TestApp::spawn_on_with(kind, StackOptions { simulator, ..Default::default() }).await
}

/// `kind`'s stack with Camille connected and live deliveries off (the tests deliver by hand):
/// the app, Camille, and her subscription's URL.
async fn connected_quietly(kind: StoreKind) -> (TestApp, calendly_sim::SimUser, String) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    app.sim.set_webhook_deliveries(false);
    (app, host, url)
}

async fn post_signed(app: &TestApp, url: &str, body: &[u8], signed_at: chrono::DateTime<chrono::Utc>) -> (u16, Value) {
    let header = calendly_sim::sign_header(&app.sim.signing_key(), signed_at.timestamp(), body);
    let reply =
        app.http.post(url).header("calendly-webhook-signature", header).body(body.to_vec()).send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap_or(Value::Null))
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_retry_hours_later_with_its_first_signature_is_processed(kind: StoreKind) {
    let app = spawn(kind, compressed_retries()).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // The first attempt times out on Calendly's side; the retry keeps the first `t`, and by
    // then six hours have passed.
    app.sim.fail_next_deliveries(1);
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_none());
    app.advance_clocks(chrono::Duration::hours(6));
    wait_until("the retry", async || app.sim.request_count("delivery_accepted") == 1).await;
    assert_eq!(app.sim.request_count("delivery_retried"), 1);
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some(), "the retry was processed");
    // A day and more is past the tolerance: refused, and a forged body always is.
    let (body, _) = app.sim.signed_delivery(
        "invitee.created",
        &calendly_sim::Booked { event_uuid: "e".into(), invitee_uuid: "i".into() },
        chrono::Utc::now(),
    );
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    let now = shared::clock::Clock::now(app.stack.clock.as_ref());
    assert_eq!(post_signed(&app, &url, &body, now - chrono::Duration::hours(26)).await.0, 401);
    let forged = calendly_sim::sign_header("not-the-key", now.timestamp(), &body);
    let reply = app.http.post(&url).header("calendly-webhook-signature", forged).body(body).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 401);
}

crate::helpers::on_both_stores!(a_retry_hours_later_with_its_first_signature_is_processed, kind);

#[tokio::test]
async fn deliveries_refused_for_the_whole_retry_window_disable_the_subscription() {
    let app = spawn(StoreKind::Embedded, compressed_retries()).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.fail_next_deliveries(1_000);
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    wait_until("giving up", async || app.sim.request_count("delivery_given_up") == 1).await;
    assert!(app.sim.request_count("delivery_retried") >= 3, "retried with back-off before giving up");
    assert_eq!(app.sim.webhook_subscriptions(&host)[0].2, "disabled");
    // The daily check of the schedule re-creates it, and the poll brings the booking.
    app.sim.fail_next_deliveries(0);
    app.advance_clocks(chrono::Duration::minutes(31));
    app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    app.wait_for_sync("org-a").await;
    let subscriptions = app.sim.webhook_subscriptions(&host);
    assert_eq!((subscriptions.len(), subscriptions[0].2.as_str()), (1, "active"));
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());
}

async fn a_delivery_that_can_never_succeed_is_acknowledged_and_left_to_the_sync(kind: StoreKind) {
    let (app, host, url) = connected_quietly(kind).await;
    let booked = app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Démo", in_days(2))).await;
    // A cancel without its event, of an event Calendly no longer shows us (404 when read).
    let (body, _) = app.sim.signed_delivery("invitee.canceled", &booked, chrono::Utc::now());
    let mut cancel: Value = serde_json::from_slice(&body).unwrap();
    cancel["payload"].as_object_mut().unwrap().remove("scheduled_event");
    cancel["payload"]["uri"] =
        json!(cancel["payload"]["uri"].as_str().unwrap().replace(&booked.event_uuid, "gone-event"));
    cancel["payload"]["event"] = json!("https://api.calendly.com/scheduled_events/gone-event");
    let (status, answer) = post_signed(&app, &url, &serde_json::to_vec(&cancel).unwrap(), chrono::Utc::now()).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("deferred")), "{answer}");
    // The sync still records the booking itself.
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());

    // An integration that needs reconnecting: 2xx too (retries can't help until it is).
    app.sim.revoke_grant(&host);
    app.advance_clocks(chrono::Duration::hours(3));
    app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "failed", "{ended}");
    let (body, _) =
        app.sim.signed_delivery("invitee.created", &booked, shared::clock::Clock::now(app.stack.clock.as_ref()));
    let (status, answer) = post_signed(&app, &url, &body, shared::clock::Clock::now(app.stack.clock.as_ref())).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("deferred")), "{answer}");
    // Its event is read again after the reconnect, though Calendly's copy did not change.
    let invitee_reads = app.sim.request_count("invitees");
    app.connect("org-a", &host).await;
    assert_eq!(app.sim.request_count("invitees"), invitee_reads + 1, "the deferred booking's event, and only it");
}

crate::helpers::on_both_stores!(a_delivery_that_can_never_succeed_is_acknowledged_and_left_to_the_sync, kind);

#[tokio::test]
async fn a_delivery_that_needs_more_than_calendly_waits_for_is_answered_503_in_time() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    app.sim.set_webhook_deliveries(false);
    let booked = app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Démo", in_days(2))).await;
    // A no-show naming only its invitee: completing it needs Calendly, which hangs.
    app.sim.set_latency(Duration::from_secs(30));
    let no_show = json!({
        "event": "invitee_no_show.created",
        "created_at": chrono::Utc::now(),
        "created_by": host.uri,
        "payload": { "uri": "https://api.calendly.com/invitee_no_shows/NS1", "invitee": booked.invitee_uri(), "created_at": chrono::Utc::now() },
    });
    let header = calendly_sim::sign_header(
        &app.sim.signing_key(),
        chrono::Utc::now().timestamp(),
        &serde_json::to_vec(&no_show).unwrap(),
    );
    // Calendly reads for 15 s at the most: the answer must come before.
    let reply = app
        .http
        .post(&url)
        .timeout(Duration::from_secs(10))
        .header("calendly-webhook-signature", header)
        .body(serde_json::to_vec(&no_show).unwrap())
        .send()
        .await
        .expect("answered within Calendly's timeout");
    assert!(reply.status().is_server_error(), "transient: Calendly retries it ({})", reply.status());
}

#[tokio::test]
async fn both_signing_keys_are_accepted_during_a_key_roll() {
    let old_key = SimConfig::default().webhook_signing_key;
    let env = std::collections::HashMap::from([
        ("CALENDLY_WEBHOOK_SIGNING_KEY".to_string(), "the-regenerated-key".to_string()),
        ("CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS".to_string(), old_key),
    ]);
    let app = TestApp::spawn_with(StackOptions { env, ..Default::default() }).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.book(&host, BookingSpec::new("Signed Old", "old@example.com", "Démo", in_days(2))).await;
    app.sim.regenerate_signing_key("the-regenerated-key");
    app.sim.book(&host, BookingSpec::new("Signed New", "new@example.com", "Démo", in_days(3))).await;
    assert!(app.prospect_by_email("org-a", "old@example.com").await.is_some(), "the previous key");
    assert!(app.prospect_by_email("org-a", "new@example.com").await.is_some(), "the current key");
    app.sim.regenerate_signing_key("a-third-key-nobody-configured");
    app.sim.set_webhook_deliveries(false);
    let booked = app.sim.book(&host, BookingSpec::new("Signed Other", "other@example.com", "Démo", in_days(4))).await;
    let (body, header) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    let reply = app.http.post(&url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 401);
}

async fn a_cancel_delivered_before_its_creation_stays_canceled(kind: StoreKind) {
    let (app, host, url) = connected_quietly(kind).await;
    let booked = app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Démo", in_days(2))).await;
    let (created, _) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    app.sim.cancel(&booked, "Empêchement").await;
    let (canceled, _) = app.sim.signed_delivery("invitee.canceled", &booked, chrono::Utc::now());
    // The creation, re-sent with a later `updated_at` (a copy read after the fact), still can't
    // bring the invitee back: Calendly never reactivates a canceled invitee.
    let mut late: Value = serde_json::from_slice(&created).unwrap();
    late["payload"]["updated_at"] = json!(chrono::Utc::now() + chrono::Duration::minutes(5));
    for body in [canceled, created, serde_json::to_vec(&late).unwrap()] {
        let (status, answer) = post_signed(&app, &url, &body, chrono::Utc::now()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["event_status"], "canceled", "{events}");
    // A sync afterwards agrees.
    app.sync("org-a").await;
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["event_status"], "canceled", "{events}");
}

crate::helpers::on_both_stores!(a_cancel_delivered_before_its_creation_stays_canceled, kind);

async fn no_show_toggles_delivered_out_of_order_end_as_the_last_one_says(kind: StoreKind) {
    let (app, host, url) = connected_quietly(kind).await;
    let booked = app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Démo", in_days(2))).await;
    let (created, _) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    post_signed(&app, &url, &created, chrono::Utc::now()).await;
    let envelope = |event: &str, at: chrono::DateTime<chrono::Utc>| {
        serde_json::to_vec(&json!({
            "event": event,
            "created_at": at,
            "created_by": host.uri,
            "payload": { "uri": "https://api.calendly.com/invitee_no_shows/NS1", "invitee": booked.invitee_uri(), "created_at": at - chrono::Duration::minutes(10) },
        }))
        .unwrap()
    };
    let marked = chrono::Utc::now() - chrono::Duration::minutes(2);
    let cleared = chrono::Utc::now() - chrono::Duration::minutes(1);
    // Cleared arrives first, then the mark it undid.
    for body in [envelope("invitee_no_show.deleted", cleared), envelope("invitee_no_show.created", marked)] {
        let (status, answer) = post_signed(&app, &url, &body, chrono::Utc::now()).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("processed")), "{answer}");
    }
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["no_show"], false, "{events}");
    // A later mark wins.
    let again = envelope("invitee_no_show.created", chrono::Utc::now());
    post_signed(&app, &url, &again, chrono::Utc::now()).await;
    let events = app.get("/calendly/events", "org-a").await.expect(200);
    assert_eq!(events["items"][0]["no_show"], true, "{events}");
}

crate::helpers::on_both_stores!(no_show_toggles_delivered_out_of_order_end_as_the_last_one_says, kind);
