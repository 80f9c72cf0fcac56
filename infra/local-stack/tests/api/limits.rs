//! No invitee can break an organization's sync: what Calendly hands over is bounded before it
//! is stored, a prospect's inline notes are bounded whatever its history, and a booking the
//! store refuses is that booking's failure only.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::BookingSpec;
use shared::domain::bounds;

/// A booking whose answer is 100 KB and whose `utm_source` is 20 KB.
fn huge(email: &str, days: i64) -> BookingSpec {
    let mut spec = BookingSpec::new("Mallory Long", email, "Découverte 30min", in_days(days));
    spec.questions = vec![("Votre besoin ?".into(), "A".repeat(100 * 1024))];
    spec.utm = Some(("s".repeat(20 * 1024), "cpc".into(), "hiver".into()));
    spec
}

async fn huge_answers_delivered_six_times_leave_bounded_notes_and_a_working_sync(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let accepted = app.sim.request_count("delivery_accepted");
    for day in 0..3 {
        let booked = app.sim.book(&host, huge("mallory@example.com", 2 + day)).await;
        app.sim.cancel(&booked, &"R".repeat(50 * 1024)).await;
    }
    assert_eq!(app.sim.request_count("delivery_accepted"), accepted + 6, "every delivery answered 2xx");
    assert_eq!(app.sim.request_count("delivery_refused"), 0);
    let p = app.prospect_by_email("org-a", "mallory@example.com").await.unwrap();
    let notes = p["notes"].as_str().unwrap();
    assert!(notes.len() < 64 * 1024, "{} bytes of notes", notes.len());
    assert!(notes.contains("Votre besoin ? : AAAA"), "the answer is kept, cut");
    let events = app.get("/calendly/events?limit=10", "org-a").await.expect(200);
    let answer = events["items"][0]["invitee_questions"][0]["answer"].as_str().unwrap();
    assert!(answer.len() <= bounds::ANSWER_BYTES && answer.ends_with('…'), "{} bytes", answer.len());
    // Everyone else's bookings still come in, and the sync succeeds.
    app.seed(&host, "Jane Roe", "jane@example.com", "Démo", in_days(5));
    let ended = app.sync("org-a").await;
    assert_eq!(ended["events_failed"], 0, "{ended}");
    assert!(app.prospect_by_email("org-a", "jane@example.com").await.is_some());
}

crate::helpers::on_both_stores!(huge_answers_delivered_six_times_leave_bounded_notes_and_a_working_sync, kind);

async fn a_prospect_with_a_long_history_keeps_its_newest_notes_inline(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.set_webhook_deliveries(false);
    let specs =
        (0..40).map(|i| BookingSpec::new("Fidèle Client", "loyal@example.com", "Suivi", in_days(1 + i))).collect();
    app.sim.seed_bookings(&host, specs);
    let ended = app.sync("org-a").await;
    assert_eq!((ended["bookings_new"].as_u64(), ended["events_failed"].as_u64()), (Some(40), Some(0)), "{ended}");
    // And by webhook, one at a time, past the bound again.
    app.sim.set_webhook_deliveries(true);
    for i in 0..20 {
        app.sim.book(&host, BookingSpec::new("Fidèle Client", "loyal@example.com", "Suivi", in_days(60 + i))).await;
    }
    let p = app.prospect_by_email("org-a", "loyal@example.com").await.unwrap();
    let notes: Vec<&str> = p["notes"].as_str().unwrap().split("\n\n").collect();
    assert!(notes.len() <= bounds::MAX_INLINE_NOTES, "{} notes", notes.len());
    assert!(notes[0].starts_with("Notes Calendly plus anciennes : "), "{}", notes[0]);
    let dropped: usize = notes[0].split(' ').nth(5).unwrap().parse().unwrap();
    assert_eq!(dropped + notes.len() - 1, 60, "every note is kept inline or counted: {notes:?}");
    assert_eq!(app.get("/calendly/events?limit=100", "org-a").await.expect(200)["items"].as_array().unwrap().len(), 60);
}

crate::helpers::on_both_stores!(a_prospect_with_a_long_history_keeps_its_newest_notes_inline, kind);

async fn the_booking_filter_shares_one_byte_budget_and_keeps_the_status_small(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    app.connect("org-a", &app.host("Camille Martin")).await;
    let event_type = |i: usize| {
        let uri = format!("https://api.calendly.com/event_types/{i:04}-");
        format!("{uri}{}", "x".repeat(320 - uri.len()))
    };
    let ignored =
        |i: usize| format!("{i:04}{}@{}.{}.{}.example", "x".repeat(56), "d".repeat(50), "e".repeat(50), "f".repeat(50));
    let lists = |types: usize, emails: usize| {
        serde_json::json!({
            "event_types": (0..types).map(event_type).collect::<Vec<_>>(),
            "ignore_emails": (0..emails).map(ignored).collect::<Vec<_>>(),
        })
    };
    // Each list within its own bounds, together past the budget: refused, nothing written.
    let refused = app.patch("/calendly/settings", "org-a", lists(200, 200)).await;
    assert_eq!(refused.status.as_u16(), 400, "{}", refused.body);
    assert_eq!(refused.error_code(), "invalid_field");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("together"), "{}", refused.body);
    // Up to the budget: taken, and the status answer stays under 70 KB.
    app.patch("/calendly/settings", "org-a", lists(90, 60)).await.expect(200);
    let status = app.http.get(app.url("/calendly/status")).bearer_auth(app.token("org-a")).send().await.unwrap();
    let bytes = status.bytes().await.unwrap().len();
    assert!(bytes < 70 * 1024, "the status answer is {bytes} bytes");
    // One list changed alone is counted beside the other one as stored.
    let more_emails = serde_json::json!({ "ignore_emails": (0..110).map(ignored).collect::<Vec<_>>() });
    assert_eq!(app.patch("/calendly/settings", "org-a", more_emails).await.status.as_u16(), 400);
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["ignore_emails"].as_array().map(Vec::len), Some(60), "nothing of the refused change");
}

crate::helpers::on_both_stores!(the_booking_filter_shares_one_byte_budget_and_keeps_the_status_small, kind);

async fn a_settings_change_with_one_bad_part_changes_nothing(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let admin = app.host("Alice Admin");
    let member = app.sim.add_colleague(&admin, "Bob Sales", "bob@team.example");
    app.connect("org-a", &member).await;
    let before = app.get("/calendly/status", "org-a").await.expect(200);
    let bad_bodies = [
        // A plain member can't have organization scope: the 403 comes before anything is written.
        (
            serde_json::json!({ "sync_interval_minutes": 5, "event_types": ["https://api.calendly.com/event_types/X"], "scope": "organization" }),
            403,
        ),
        (serde_json::json!({ "sync_interval_minutes": 5, "ignore_emails": ["not an address"] }), 400),
        (serde_json::json!({ "auto_sync_enabled": false, "sync_interval_minutes": 2 }), 400),
        (serde_json::json!({ "sync_interval_minutes": 5, "event_types": vec!["https://x.example/t"; 201] }), 400),
        (
            serde_json::json!({ "sync_interval_minutes": 5, "ignore_emails": [format!("@{}.example", "d".repeat(400))] }),
            400,
        ),
        (serde_json::json!({ "sync_interval_minutes": 5, "auto_sync_enabled": "yes" }), 400),
    ];
    for (body, status) in bad_bodies {
        let reply = app.patch("/calendly/settings", "org-a", body.clone()).await;
        assert_eq!(reply.status.as_u16(), status, "{body} → {}", reply.body);
    }
    let after = app.get("/calendly/status", "org-a").await.expect(200);
    for field in ["sync_interval_minutes", "auto_sync_enabled", "event_types", "ignore_emails", "scope", "next_sync_at"]
    {
        assert_eq!(before[field], after[field], "{field} changed by a refused PATCH");
    }
    // A non-boolean note setting is refused too.
    let reply =
        app.patch("/organization", "org-a", serde_json::json!({ "settings": { "calendly_note_details": "no" } })).await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.body);
}

crate::helpers::on_both_stores!(a_settings_change_with_one_bad_part_changes_nothing, kind);

async fn concurrent_scope_changes_run_one_at_a_time_and_leave_the_true_webhook_state(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    app.sim.add_team(&admin, 3);
    app.connect("org-a", &admin).await;
    let flips = (0..12).map(|i| {
        let scope = if i % 2 == 0 { "organization" } else { "user" };
        app.patch("/calendly/settings", "org-a", serde_json::json!({ "scope": scope }))
    });
    let replies = futures::future::join_all(flips).await;
    for r in &replies {
        // Serialized (409), or past the pace of ten scope changes a minute (429).
        assert!(
            r.status.as_u16() == 200
                || (r.status.as_u16() == 409 && r.error_code() == "scope_change_in_progress")
                || (r.status.as_u16() == 429 && r.error_code() == "too_many_scope_changes"),
            "{} {}",
            r.status,
            r.body
        );
    }
    assert!(replies.iter().any(|r| r.error_code() == "scope_change_in_progress"), "some were serialized away");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["webhook_active"], true, "{status}");
    // Exactly one active subscription at our URL, in the status's scope.
    let url = format!("{}/calendly/webhook/", app.stack.url());
    let ours: Vec<_> =
        app.sim.all_webhook_subscriptions().into_iter().filter(|s| s.1.starts_with(&url) && s.2 == "active").collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].3, status["scope"].as_str().unwrap(), "{ours:?} vs {status}");
}

crate::helpers::on_both_stores!(concurrent_scope_changes_run_one_at_a_time_and_leave_the_true_webhook_state, kind);
