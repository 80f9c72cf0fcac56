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
