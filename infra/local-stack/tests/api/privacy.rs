//! Privacy through HTTP: erasure everywhere (and nothing brought back by a sync or a delivery),
//! suppression lifted, export, audit, Calendly-side deletion; both stores where a store is
//! involved, and an erasure racing deliveries and a running sync.

use crate::helpers::{StoreKind, TestApp, in_days, on_both_stores};
use calendly_sim::{BookingSpec, SimUser};
use reqwest::Method;
use serde_json::{Value, json};

const JOHN: &str = "john.doe@example.com";

/// `org-a` connected to a host, with John booked twice (one with answers and UTMs, by a
/// delivery; one seen by a sync) and Jane once.
async fn with_john_and_jane(app: &TestApp) -> SimUser {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let mut spec = BookingSpec::new("John Doe", JOHN, "Découverte 30min", in_days(2));
    spec.questions = vec![("Votre besoin ?".into(), "Un CRM pour 12 agents".into())];
    spec.utm = Some(("newsletter".into(), "email".into(), "rentree".into()));
    app.sim.book(&host, spec).await;
    app.seed(&host, "John Doe", "John.Doe@Example.com", "Suivi 15min", in_days(5));
    app.sim.book(&host, BookingSpec::new("Jane Roe", "jane@example.com", "Découverte 30min", in_days(3))).await;
    app.sync("org-a").await;
    host
}

async fn erase(app: &TestApp, org: &str, email: &str, calendly: bool) -> Value {
    app.post("/privacy/erasures", org, json!({ "email": email, "calendly": calendly })).await.expect(200)
}

/// Every trace of John in what the organization's API answers.
async fn traces_of_john(app: &TestApp, org: &str) -> Vec<String> {
    let mut traces = Vec::new();
    for path in ["/prospects?limit=100", "/calendly/events?limit=100", "/notifications?limit=100"] {
        let body = app.get(path, org).await.expect(200).to_string().to_lowercase();
        if body.contains("john") {
            traces.push(format!("{path}: {body}"));
        }
    }
    traces
}

async fn erasure_removes_the_person_everywhere(app: TestApp) {
    with_john_and_jane(&app).await;
    assert!(!traces_of_john(&app, "org-a").await.is_empty(), "John was recorded");
    let mut browser = app.browser("org-a").await;
    let john = app.prospect_by_email("org-a", JOHN).await.unwrap();

    let erased = erase(&app, "org-a", "  JOHN.Doe@example.COM ", false).await;
    assert_eq!(erased["prospects"], 1, "{erased}");
    assert_eq!(erased["bookings"], 2, "{erased}");
    assert!(erased["notifications"].as_u64().unwrap() >= 2, "the created and booked notifications: {erased}");
    assert_eq!(erased["calendly"], "not_requested");
    assert_eq!(erased["requested_by"], "user-of-org-a");
    assert_eq!(erased["person"].as_str().unwrap().len(), 40, "a keyed hash");
    assert!(!erased.to_string().to_lowercase().contains("john"), "the answer holds no personal data: {erased}");

    let deleted = browser.expect_event("prospect:deleted", std::time::Duration::from_secs(5)).await;
    assert_eq!(deleted["id"], john["id"]);
    assert_eq!(traces_of_john(&app, "org-a").await, Vec::<String>::new());
    assert!(app.prospect_by_email("org-a", "jane@example.com").await.is_some(), "Jane is untouched");
    let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "Jane's booking stays");

    let again = erase(&app, "org-a", JOHN, false).await;
    assert_eq!((&again["prospects"], &again["bookings"], &again["notifications"]), (&json!(0), &json!(0), &json!(0)));
    // The e-mail is free again for a prospect typed by hand.
    app.post("/prospects", "org-a", json!({ "email": JOHN, "firstname": "John" })).await.expect(201);
}
on_both_stores!(erasure_removes_the_person_everywhere);

async fn an_erased_person_is_not_brought_back_until_the_suppression_is_lifted(app: TestApp) {
    let host = with_john_and_jane(&app).await;
    erase(&app, "org-a", JOHN, false).await;

    // The scheduled sync sees John's bookings again (their events' fingerprints are gone with
    // nothing: the first booking's event changed since), a new booking is delivered, another
    // one is only polled.
    app.seed(&host, "John Doe", JOHN, "Démo 45min", in_days(7));
    app.sim.book(&host, BookingSpec::new("John Doe", JOHN, "Démo 45min", in_days(8))).await;
    let report = app.sync("org-a").await;
    assert!(report["suppressed"].as_u64().unwrap() >= 1, "counted as suppressed: {report}");
    assert_eq!(report["bookings_new"], 0, "{report}");
    assert_eq!(traces_of_john(&app, "org-a").await, Vec::<String>::new());

    let lifted = app.request(Method::DELETE, "/privacy/suppressions", Some("org-a"), Some(json!({ "email": JOHN })));
    assert_eq!(lifted.await.expect(200)["lifted"], true);
    let again = app.request(Method::DELETE, "/privacy/suppressions", Some("org-a"), Some(json!({ "email": JOHN })));
    assert_eq!(again.await.expect(200)["lifted"], false, "idempotent");
    app.sim.book(&host, BookingSpec::new("John Doe", JOHN, "Démo 45min", in_days(9))).await;
    assert!(app.prospect_by_email("org-a", JOHN).await.is_some(), "he came back and consented");
}
on_both_stores!(an_erased_person_is_not_brought_back_until_the_suppression_is_lifted);

async fn a_delivery_about_an_erased_person_is_acknowledged_and_records_nothing(app: TestApp) {
    let host = with_john_and_jane(&app).await;
    erase(&app, "org-a", JOHN, false).await;
    app.sim.set_webhook_deliveries(false);
    let booked = app.seed(&host, "John Doe", JOHN, "Démo 45min", in_days(7));
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    let (body, header) = app.sim.signed_delivery("invitee.created", &booked, chrono::Utc::now());
    let reply = app.http.post(&url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200, "acknowledged: Calendly must not retry it");
    assert_eq!(traces_of_john(&app, "org-a").await, Vec::<String>::new());
}
on_both_stores!(a_delivery_about_an_erased_person_is_acknowledged_and_records_nothing);

/// Which key a roll test rolls, as "Rolling secrets" in docs/SECURITY.md says: the new key with the old
/// one as the previous, a while (tokens and the person-hash key sealed again), then the
/// previous key removed.
#[derive(Clone, Copy)]
enum Rolled {
    EncryptionKey,
    PrivacyKey,
}

/// The stack of `first`'s store and Calendly, restarted with `keys`.
async fn restarted(first: &TestApp, keys: &[(&str, String)]) -> TestApp {
    let mut env: std::collections::HashMap<String, String> =
        keys.iter().map(|(name, value)| (name.to_string(), value.clone())).collect();
    if first.stack.dynamo.is_some() {
        env.insert("STORE".into(), "dynamodb".into());
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), local_stack::dynamo::test_endpoint().await);
        env.insert("TABLE_NAME".into(), first.stack.config.table_name.clone());
    }
    let options = local_stack::StackOptions {
        env,
        running_simulator: Some(first.sim.clone()),
        embedded_store: first.stack.dynamo.is_none().then(|| first.stack.store.clone()),
        ..Default::default()
    };
    TestApp::spawn_with(options).await
}

/// A signed `invitee.created` for `booked`, posted to `app`'s webhook route of the subscription.
async fn deliver(app: &TestApp, host: &SimUser, booked: &calendly_sim::Booked) -> u16 {
    let subscribed = app.sim.webhook_subscriptions(host)[0].1.clone();
    let path = &subscribed[subscribed.find("/calendly/webhook").unwrap()..];
    let (body, header) = app.sim.signed_delivery("invitee.created", booked, chrono::Utc::now());
    let reply = app.http.post(app.url(path)).header("calendly-webhook-signature", header).body(body).send();
    reply.await.unwrap().status().as_u16()
}

async fn an_erasure_outlives_a_key_roll(kind: StoreKind, rolled: Rolled) {
    let (old_key, new_key) = ("a1".repeat(32), "b2".repeat(32));
    let name = match rolled {
        Rolled::EncryptionKey => "ENCRYPTION_KEY",
        Rolled::PrivacyKey => "PRIVACY_KEY",
    };
    let previous = format!("{name}_PREVIOUS");
    let before_env =
        local_stack::StackOptions { env: [(name.to_string(), old_key.clone())].into(), ..Default::default() };
    let before = TestApp::spawn_on_with(kind, before_env).await;
    let host = with_john_and_jane(&before).await;
    assert_eq!(erase(&before, "org-a", JOHN, false).await["bookings"], 2);

    // The roll: the new key, the old one as the previous, for a while: tokens refresh (two hours
    // on), a sync runs.
    let rolling = restarted(&before, &[(name, new_key.clone()), (&previous, old_key.clone())]).await;
    rolling.stack.clock.advance(chrono::Duration::hours(2));
    rolling.sim.advance_clock(chrono::Duration::hours(2));
    rolling.sync("org-a").await;

    // The previous key removed.
    let after = restarted(&before, &[(name, new_key.clone())]).await;
    after.sim.set_webhook_deliveries(false);
    let john = after.seed(&host, "John Doe", JOHN, "Démo 45min", in_days(9));
    assert_eq!(deliver(&after, &host, &john).await, 200);
    let lea = after.seed(&host, "Léa Dupont", "lea@example.com", "Démo 45min", in_days(10));
    assert_eq!(deliver(&after, &host, &lea).await, 200);
    assert!(after.prospect_by_email("org-a", "lea@example.com").await.is_some(), "deliveries are recorded");
    assert_eq!(traces_of_john(&after, "org-a").await, Vec::<String>::new(), "the erased person stays erased");

    // Jane, booked before the roll, is found by her erasure and her export.
    let export = after.get("/privacy/export?email=jane%40example.com", "org-a").await.expect(200);
    assert_eq!(export["bookings"].as_array().unwrap().len(), 1, "{export}");
    let erased = erase(&after, "org-a", "jane@example.com", false).await;
    assert_eq!((&erased["prospects"], &erased["bookings"]), (&json!(1), &json!(1)), "{erased}");
    let events = after.get("/calendly/events?limit=100", "org-a").await.expect(200).to_string();
    assert!(!events.contains("jane@example.com"), "no booking of Jane is left: {events}");
}

async fn an_erasure_outlives_a_roll_of_the_token_key(kind: StoreKind) {
    an_erasure_outlives_a_key_roll(kind, Rolled::EncryptionKey).await;
}
on_both_stores!(an_erasure_outlives_a_roll_of_the_token_key, kind);

async fn an_erasure_outlives_a_roll_of_the_privacy_key(kind: StoreKind) {
    an_erasure_outlives_a_key_roll(kind, Rolled::PrivacyKey).await;
}
on_both_stores!(an_erasure_outlives_a_roll_of_the_privacy_key, kind);

async fn a_person_stored_under_an_address_the_parser_refuses_is_found_and_erased(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // Addresses Calendly takes and the e-mail parser refuses (no prospect is made for them, but
    // the booking holds the name and the answers).
    let odd = ["taro..yamada@docomo.ne.jp", "trailing.dot@example.com.", "zero\u{200B}width@example.com"];
    for (i, address) in odd.iter().enumerate() {
        let mut spec = BookingSpec::new(&format!("Odd Person {i}"), address, "Découverte 30min", in_days(2 + i as i64));
        spec.questions = vec![("Votre besoin ?".into(), format!("Réponse privée {i}"))];
        app.sim.book(&host, spec).await;
    }
    app.sync("org-a").await;
    let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "stored: {events}");
    for (i, address) in odd.iter().enumerate() {
        let query = url::form_urlencoded::byte_serialize(address.as_bytes()).collect::<String>();
        let export = app.get(&format!("/privacy/export?email={query}"), "org-a").await.expect(200);
        assert_eq!(export["bookings"].as_array().unwrap().len(), 1, "{address:?}: {export}");
        let erased = erase(&app, "org-a", address, false).await;
        assert_eq!(erased["bookings"], 1, "{address:?}: {erased}");
        let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200).to_string();
        assert!(!events.contains(&format!("Réponse privée {i}")), "{address:?} left a booking: {events}");
    }
    // A delivery about one of them afterwards records nothing.
    app.sim.book(&host, BookingSpec::new("Taro Yamada", odd[0], "Suivi", in_days(9))).await;
    let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 0, "{events}");
}
on_both_stores!(a_person_stored_under_an_address_the_parser_refuses_is_found_and_erased);

async fn an_export_holds_everything_about_the_person_and_nothing_else(app: TestApp) {
    with_john_and_jane(&app).await;
    let export = app.get("/privacy/export?email=JOHN.DOE%40example.com", "org-a").await.expect(200);
    assert_eq!(export["email"], JOHN);
    assert_eq!(export["prospects"].as_array().unwrap().len(), 1);
    let notes = export["prospects"][0]["notes"].as_str().unwrap();
    assert!(notes.contains("Découverte 30min") && notes.contains("Suivi 15min"), "{notes}");
    let bookings = export["bookings"].as_array().unwrap();
    assert_eq!(bookings.len(), 2, "{export}");
    assert_eq!(bookings[0]["invitee_questions"][0]["answer"], "Un CRM pour 12 agents");
    assert_eq!(bookings[0]["tracking"]["utm_campaign"], "rentree");
    assert!(!export["notifications"].as_array().unwrap().is_empty());
    assert!(!export.to_string().contains("jane@example.com"), "nobody else's data");

    let nobody = app.get("/privacy/export?email=nobody%40example.com", "org-a").await.expect(200);
    for list in ["prospects", "bookings", "notifications"] {
        assert_eq!(nobody[list], json!([]), "{nobody}");
    }
    let other_org = app.get("/privacy/export?email=john.doe%40example.com", "org-b").await.expect(200);
    assert_eq!(other_org["bookings"], json!([]), "another organization sees nothing of org-a's");
    let bad = app.get("/privacy/export?email=not-an-email", "org-a").await;
    assert_eq!((bad.status.as_u16(), bad.error_code()), (400, "invalid_email"));
    let missing = app.get("/privacy/export", "org-a").await;
    assert_eq!(missing.status.as_u16(), 400);

    erase(&app, "org-a", JOHN, false).await;
    let after = app.get("/privacy/export?email=john.doe%40example.com", "org-a").await.expect(200);
    for list in ["prospects", "bookings", "notifications"] {
        assert_eq!(after[list], json!([]), "{after}");
    }
}
on_both_stores!(an_export_holds_everything_about_the_person_and_nothing_else);

async fn the_audit_lists_erasures_newest_first_without_personal_data(app: TestApp) {
    with_john_and_jane(&app).await;
    erase(&app, "org-a", JOHN, false).await;
    erase(&app, "org-a", "jane@example.com", false).await;
    let first = app.get("/privacy/erasures?limit=1", "org-a").await.expect(200);
    assert_eq!(first["items"][0]["bookings"], 1, "Jane's, the newest: {first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/privacy/erasures?limit=1&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(second["items"][0]["bookings"], 2, "John's: {second}");
    // DynamoDB may hand a cursor for a page that turns out empty.
    if let Some(cursor) = second["next_cursor"].as_str() {
        let third = app.get(&format!("/privacy/erasures?limit=1&cursor={cursor}"), "org-a").await.expect(200);
        assert_eq!(third["items"], json!([]));
    }
    let all = app.get("/privacy/erasures", "org-a").await.expect(200).to_string().to_lowercase();
    assert!(!all.contains("john") && !all.contains("jane"), "{all}");
    let other = app.get("/privacy/erasures", "org-b").await.expect(200);
    assert_eq!(other["items"], json!([]));
    let forged = app.get(&format!("/privacy/erasures?cursor={cursor}"), "org-b").await;
    assert_eq!(forged.error_code(), "invalid_cursor");
}
on_both_stores!(the_audit_lists_erasures_newest_first_without_personal_data);

async fn calendly_side_deletion_is_requested_on_enterprise_plans_and_said_unavailable_otherwise(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = with_john_and_jane(&app).await;
    let refused = erase(&app, "org-a", JOHN, true).await;
    assert_eq!(refused["calendly"], "unavailable");
    assert!(refused["calendly_reason"].as_str().unwrap().contains("Enterprise"), "{refused}");
    assert_eq!(refused["bookings"], 2, "the CRM-side erasure completes anyway");

    app.sim.set_enterprise_plan(&host, true);
    let requested = erase(&app, "org-a", "jane@example.com", true).await;
    assert_eq!(requested["calendly"], "requested", "{requested}");
    assert_eq!(requested["calendly_reason"], Value::Null);
    assert_eq!(
        app.sim.invitee_deletions(),
        vec![(host.organization_uri.clone(), vec!["jane@example.com".to_string()])]
    );

    // An app not granted the scope: nothing asked of Calendly, and why.
    let other = TestApp::spawn_on(kind).await;
    other.sim.set_app_scopes(&["users:read", "scheduled_events:read", "webhooks:write"]);
    let host = other.host("Paul Durand");
    other.connect("org-c", &host).await;
    other.sim.set_enterprise_plan(&host, true);
    let calls = other.sim.request_count("data_compliance");
    let unscoped = erase(&other, "org-c", JOHN, true).await;
    assert_eq!(unscoped["calendly"], "unavailable");
    assert!(unscoped["calendly_reason"].as_str().unwrap().contains("data_compliance:write"), "{unscoped}");
    assert_eq!(other.sim.request_count("data_compliance"), calls);

    let not_connected = erase(&other, "org-d", JOHN, true).await;
    assert_eq!(not_connected["calendly"], "unavailable");
}
on_both_stores!(calendly_side_deletion_is_requested_on_enterprise_plans_and_said_unavailable_otherwise, kind);

#[tokio::test]
async fn bad_erasure_bodies_are_400_and_need_a_token() {
    let app = TestApp::spawn().await;
    for (body, code) in [
        (json!({}), "invalid_body"),
        (json!({ "email": "nope" }), "invalid_email"),
        (json!({ "email": JOHN, "extra": 1 }), "unknown_field"),
        (json!({ "email": 3 }), "invalid_field"),
    ] {
        let reply = app.post("/privacy/erasures", "org-a", body.clone()).await;
        assert_eq!((reply.status.as_u16(), reply.error_code()), (400, code), "{body}: {}", reply.body);
    }
    let anonymous = app.request(Method::POST, "/privacy/erasures", None, Some(json!({ "email": JOHN }))).await;
    assert_eq!(anonymous.status.as_u16(), 401);
}

/// An erasure racing 20 deliveries about the person and a running sync, for several people
/// in turn: whatever the order, nothing about any of them is stored once all is done.
async fn an_erasure_racing_deliveries_and_a_sync_leaves_nothing(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.set_webhook_deliveries(false);
    // The sync's reads take time, so its commits spread over the deliveries' and the erasure's.
    app.sim.set_latency(std::time::Duration::from_millis(40));
    let url = app.sim.webhook_subscriptions(&host)[0].1.clone();
    for round in 0..3usize {
        let email = format!("racer{round}@example.com");
        let booked: Vec<_> = (0..20)
            .map(|i| app.seed(&host, &format!("Racer{round} Person"), &email, "Découverte 30min", in_days(1 + i)))
            .collect();
        let queued = app.post("/calendly/sync", "org-a", json!({})).await;
        assert!(matches!(queued.status.as_u16(), 202 | 429), "{}", queued.body);
        let deliveries = booked.iter().map(|b| {
            let (body, header) = app.sim.signed_delivery("invitee.created", b, chrono::Utc::now());
            let request = app.http.post(&url).header("calendly-webhook-signature", header).body(body);
            async move { request.send().await.unwrap().status().as_u16() }
        });
        // Round 0 erases at once; the others once some of the person's bookings are stored,
        // while the rest of the deliveries and the sync are still in flight.
        let stored_first = [0, 1, 10][round];
        let erasure = async {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
            while stored_first > 0 && tokio::time::Instant::now() < deadline {
                let export = app.get(&format!("/privacy/export?email={email}"), "org-a").await.expect(200);
                if export["bookings"].as_array().unwrap().len() >= stored_first {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            erase(&app, "org-a", &email, false).await
        };
        let (statuses, erased) = tokio::join!(futures::future::join_all(deliveries), erasure);
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        let sync = app.wait_for_sync("org-a").await;
        // Which side won varies by round: shown, so a run that never raced can be told.
        eprintln!(
            "round {round}: the erasure deleted {} bookings; the sync left out {}",
            erased["bookings"], sync["suppressed"]
        );
        assert!(erased["bookings"].as_u64().unwrap() >= stored_first as u64, "round {round}: {erased}");
        let needle = format!("racer{round}");
        for path in ["/prospects?limit=100", "/calendly/events?limit=100", "/notifications?limit=100"] {
            let body = app.get(path, "org-a").await.expect(200).to_string().to_lowercase();
            assert!(!body.contains(&needle), "round {round}, {path}: {body}");
        }
        let export = app.get(&format!("/privacy/export?email={email}"), "org-a").await.expect(200);
        assert_eq!(export["bookings"], json!([]), "round {round}: {export}");
    }
}
on_both_stores!(an_erasure_racing_deliveries_and_a_sync_leaves_nothing, kind);

async fn retention_hides_then_deletes_what_came_from_calendly_and_keeps_prospects(app: TestApp) {
    with_john_and_jane(&app).await;
    for bad in [json!({ "retention_days": 29 }), json!({ "retention_days": 3651 }), json!({ "retention_days": "x" })] {
        let reply = app.patch("/calendly/settings", "org-a", bad.clone()).await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.body);
    }
    let status = app.patch("/calendly/settings", "org-a", json!({ "retention_days": 30 })).await.expect(200);
    assert_eq!(status["retention_days"], 30);
    assert_eq!(app.get("/calendly/events", "org-a").await.expect(200)["items"].as_array().unwrap().len(), 3);

    // 40 days on, every booking ended more than 30 days ago and every notification is older.
    app.advance_clocks(chrono::Duration::days(40));
    assert_eq!(app.get("/calendly/events", "org-a").await.expect(200)["items"], json!([]), "reads skip them at once");
    assert_eq!(app.notifications("org-a").await, Vec::<Value>::new());
    assert_eq!(app.prospects("org-a").await.len(), 2, "prospects and their notes are CRM records and stay");
    // The scheduled sync deletes what was written before the retention was set.
    app.stack.services.scheduler().tick(crate::helpers::tick_deadline()).await.unwrap();
    app.wait_for_sync("org-a").await;
    let export = app.get("/privacy/export?email=john.doe%40example.com", "org-a").await.expect(200);
    assert_eq!(export["bookings"], json!([]), "deleted, not only hidden: {export}");
    assert_eq!(export["notifications"], json!([]), "{export}");

    let kept = app.patch("/calendly/settings", "org-a", json!({ "retention_days": null })).await.expect(200);
    assert_eq!(kept["retention_days"], Value::Null);
}
on_both_stores!(retention_hides_then_deletes_what_came_from_calendly_and_keeps_prospects);

async fn a_new_booking_carries_the_retention_as_its_expiry(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.patch("/calendly/settings", "org-a", json!({ "retention_days": 30 })).await.expect(200);
    app.sim.book(&host, BookingSpec::new("John Doe", JOHN, "Découverte 30min", in_days(2))).await;
    let org = shared::domain::OrganizationId::new("org-a");
    let events = app.stack.services.store().list_bookings(&org, 10, None).await.unwrap();
    let booking = &events.items[0];
    assert_eq!(booking.expires_at, Some(booking.details.end_time + chrono::Duration::days(30)));
    let notifications = app.stack.services.store().list_notifications(&org, 10, None).await.unwrap();
    assert!(notifications.items.iter().all(|n| n.expires_at == Some(n.created_at + chrono::Duration::days(30))));
    // The organization's retention outlives a reconnect.
    app.connect("org-a", &host).await;
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["retention_days"], 30);
}
on_both_stores!(a_new_booking_carries_the_retention_as_its_expiry);

async fn disconnect_with_purge_deletes_what_came_from_calendly_and_keeps_prospects(app: TestApp) {
    let host = app.host("Camille Martin");
    let specs = (0..120)
        .map(|i| BookingSpec::new(&format!("Person {i}"), &format!("p{i}@example.com"), "Découverte 30min", in_days(1)))
        .collect();
    app.sim.seed_bookings(&host, specs);
    app.connect("org-a", &host).await;
    assert_eq!(app.prospects("org-a").await.len(), 100, "a page of them");
    let plain = app.post("/calendly/disconnect", "org-b", json!({})).await.expect(200);
    assert_eq!(plain["purge"], Value::Null);

    let mut totals = (0, 0, 0);
    loop {
        let answer = app.post("/calendly/disconnect", "org-a", json!({ "purge": true })).await.expect(200);
        assert_eq!(answer["connected"], false);
        let purge = &answer["purge"];
        totals.0 += purge["bookings"].as_u64().unwrap();
        totals.1 += purge["fingerprints"].as_u64().unwrap();
        totals.2 += purge["notifications"].as_u64().unwrap();
        if purge["complete"] == true {
            break;
        }
    }
    assert_eq!(totals.0, 120, "every booking");
    assert!(totals.1 >= 1, "the events' fingerprints");
    assert!(totals.2 >= 120, "a notification per new prospect");
    assert_eq!(app.get("/calendly/events", "org-a").await.expect(200)["items"], json!([]));
    assert_eq!(app.notifications("org-a").await, Vec::<Value>::new());
    assert_eq!(app.prospects("org-a").await.len(), 100, "prospects stay");
    let again = app.post("/calendly/disconnect", "org-a", json!({ "purge": true })).await.expect(200);
    assert_eq!(again["purge"]["bookings"], 0, "idempotent");
    let bad = app.post("/calendly/disconnect", "org-a", json!({ "purge": "yes" })).await;
    assert_eq!(bad.status.as_u16(), 400);
}
on_both_stores!(disconnect_with_purge_deletes_what_came_from_calendly_and_keeps_prospects);

async fn a_purge_wins_its_race_with_the_running_initial_sync(app: TestApp) {
    let host = app.host("Camille Martin");
    let specs = (0..600)
        .map(|i| BookingSpec::new(&format!("Person {i}"), &format!("p{i}@example.com"), "Découverte 30min", in_days(1)))
        .collect();
    app.sim.seed_bookings(&host, specs);
    // Calendly's latency spreads the job's commits over the disconnect.
    app.sim.set_latency(std::time::Duration::from_millis(3));
    app.connect_queued("org-a", &host).await;
    let org = shared::domain::OrganizationId::new("org-a");
    let job_of = async || app.stack.store.get_sync_job(&org).await.unwrap().unwrap();
    while app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"].as_array().unwrap().len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(job_of().await.state.is_active(), "the initial job still runs when the customer disconnects");
    let mut answer = app.post("/calendly/disconnect", "org-a", json!({ "purge": true })).await.expect(200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while job_of().await.state.is_active() {
        assert!(tokio::time::Instant::now() < deadline, "the job did not end after the disconnect");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Complete means nothing is left; otherwise a second call finishes.
    if answer["purge"]["complete"] != true {
        answer = app.post("/calendly/disconnect", "org-a", json!({ "purge": true })).await.expect(200);
        assert_eq!(answer["purge"]["complete"], true, "{answer}");
    }
    assert_eq!(app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"], json!([]));
    let notifications = app.notifications("org-a").await;
    assert_eq!(notifications, Vec::<Value>::new(), "no notification, no reconnect notice");
}
on_both_stores!(a_purge_wins_its_race_with_the_running_initial_sync);
