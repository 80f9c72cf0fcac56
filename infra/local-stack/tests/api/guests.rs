//! Guests as prospects: with `guests_as_prospects`, each guest an invitee adds becomes (or
//! enriches) a prospect with one note, exactly once whatever delivers or syncs it, the ignore
//! list and the host rule applying, and an erased guest stays erased.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::BookingSpec;
use serde_json::{Value, json};

const GUEST_NOTE: &str = "Invité(e) au rendez-vous Calendly prévu le ";

fn guest_notes(prospect: &Value) -> usize {
    prospect["notes"].as_str().unwrap_or_default().matches(GUEST_NOTE).count()
}

fn with_guests(name: &str, email: &str, start_in_days: i64, guests: &[&str]) -> BookingSpec {
    let mut spec = BookingSpec::new(name, email, "Découverte 30min", in_days(start_in_days));
    spec.guests = guests.iter().map(|g| g.to_string()).collect();
    spec
}

async fn each_guest_becomes_a_prospect_once_whatever_delivers_it(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;

    // Off by default: guests are carried on the booking, not made prospects.
    app.sim.book(&host, with_guests("John Doe", "john@example.com", 2, &["early@example.com"])).await;
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());
    assert!(app.prospect_by_email("org-a", "early@example.com").await.is_none());
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["guests_as_prospects"], false);

    let settings = json!({ "guests_as_prospects": true, "ignore_emails": ["@blocked.example"] });
    let status = app.patch("/calendly/settings", "org-a", settings).await.expect(200);
    assert_eq!(status["guests_as_prospects"], true, "{status}");
    let known = app.post("/prospects", "org-a", json!({ "email": "known@example.com", "notes": "Salon 2025" }));
    known.await.expect(201);

    // Every delivery twice and out of order, a sync running at the same time, then another.
    app.sim.set_chaotic_deliveries(true);
    let guests = ["Known@Example.com", "new@example.com", "new@example.com", "x@blocked.example", &host.email];
    let booking = with_guests("Jane Roe", "jane@example.com", 3, &guests);
    let (_, _) = tokio::join!(app.sim.book(&host, booking), app.sync("org-a"));
    app.sync("org-a").await;

    let new = app.prospect_by_email("org-a", "new@example.com").await.expect("the new guest is a prospect");
    assert_eq!(new["source"], "calendly");
    assert_eq!(guest_notes(&new), 1, "{new}");
    let note = new["notes"].as_str().unwrap();
    assert!(note.ends_with(" - Découverte 30min (par Jane Roe)"), "{note}");
    let known = app.prospect_by_email("org-a", "known@example.com").await.unwrap();
    assert_eq!(guest_notes(&known), 1, "{known}");
    assert!(known["notes"].as_str().unwrap().starts_with("Salon 2025"), "appended to what was there: {known}");
    assert!(app.prospect_by_email("org-a", "x@blocked.example").await.is_none(), "the ignore list applies");
    assert!(app.prospect_by_email("org-a", &host.email).await.is_none(), "the host is no lead");
    let jane = app.prospect_by_email("org-a", "jane@example.com").await.unwrap();
    assert_eq!(guest_notes(&jane), 0, "the invitee's own note only: {jane}");
    assert!(app.prospect_by_email("org-a", "early@example.com").await.is_none(), "taken from now on");

    // A guest at another booking: one more note, on the same prospect.
    app.sim.set_chaotic_deliveries(false);
    app.sim.book(&host, with_guests("Paul Durand", "paul@example.com", 4, &["new@example.com"])).await;
    let new = app.prospect_by_email("org-a", "new@example.com").await.unwrap();
    assert_eq!(guest_notes(&new), 2, "{new}");
    let with_email = app.prospects("org-a").await.into_iter().filter(|p| p["email"] == "new@example.com").count();
    assert_eq!(with_email, 1, "one prospect per e-mail");

    // Their export holds the bookings that name them as a guest.
    let export = app.get("/privacy/export?email=new%40example.com", "org-a").await.expect(200);
    let exported: Vec<&str> =
        export["bookings"].as_array().unwrap().iter().map(|b| b["invitee_email"].as_str().unwrap()).collect();
    assert_eq!(exported.len(), 2, "Jane's and Paul's: {export}");

    // Erased, a guest is taken out of the bookings that named them and stays erased; those
    // bookings, and the next one naming them, are still recorded.
    app.post("/privacy/erasures", "org-a", json!({ "email": "new@example.com", "calendly": false })).await.expect(200);
    app.sim
        .book(&host, with_guests("Lea Petit", "lea@example.com", 5, &["new@example.com", "other@example.com"]))
        .await;
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "new@example.com").await.is_none(), "erased stays erased");
    assert!(app.prospect_by_email("org-a", "lea@example.com").await.is_some(), "the booking is not lost");
    let events = app.get("/calendly/events?limit=100", "org-a").await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 4, "{events}");
    assert!(!events.to_string().to_lowercase().contains("new@example.com"), "no trace of the guest: {events}");
    let lea = events["items"].as_array().unwrap().iter().find(|b| b["invitee_email"] == "lea@example.com").unwrap();
    assert_eq!(lea["guests"].as_array().unwrap().len(), 1, "the other guest stays: {lea}");
}

crate::helpers::on_both_stores!(each_guest_becomes_a_prospect_once_whatever_delivers_it, kind);
