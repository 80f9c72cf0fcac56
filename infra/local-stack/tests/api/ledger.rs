//! The delivery ledger: `webhook_health` in the status counts the deliveries that arrived and
//! the bookings a sync found that no delivery brought (once each), and the organization hears
//! of such gaps once a day.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::BookingSpec;
use chrono::Duration;
use serde_json::Value;

fn gaps_notices(notifications: &[Value]) -> Vec<Value> {
    notifications.iter().filter(|n| n["type"] == "calendly_webhook_gaps").cloned().collect()
}

async fn the_ledger_counts_deliveries_and_the_bookings_only_a_sync_found(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    // The notice is once per UTC day: the story starts at 01:00 UTC so its 10-minute steps
    // never cross midnight, whatever the hour the suite runs at.
    let now = shared::clock::Clock::now(app.stack.clock.as_ref());
    let one_am = (now.date_naive() + chrono::Days::new(1)).and_hms_opt(1, 0, 0).unwrap().and_utc();
    app.advance_clocks(one_am - now);
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["deliveries_24h"], 0, "{health}");
    assert_eq!(health["missed_24h"], 0);
    assert!(health["last_delivery_at"].is_null());

    // Delivered: counted as a delivery, never as a miss, whatever syncs later.
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    app.advance_clocks(Duration::minutes(10));
    app.sync("org-a").await;
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["deliveries_24h"], 1, "{health}");
    assert_eq!(health["missed_24h"], 0, "{health}");
    assert!(health["last_delivery_at"].is_string());

    // Booked while the subscription was active, but Calendly never delivered it: the sync that
    // finds it ten minutes later counts it missed and tells the organization.
    app.seed(&host, "Jane Roe", "jane@example.com", "Découverte 30min", in_days(3));
    let missed_booked_at = shared::clock::Clock::now(app.stack.clock.as_ref());
    app.advance_clocks(Duration::minutes(10));
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "jane@example.com").await.is_some(), "the sync brought it");
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["missed_24h"], 1, "{health}");
    let since: chrono::DateTime<chrono::Utc> = health["missed_since"].as_str().unwrap().parse().unwrap();
    assert!((since - missed_booked_at).num_seconds().abs() < 60, "since the missed booking: {since}");
    let notices = gaps_notices(&app.notifications("org-a").await);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["meta"]["missed_24h"], 1);
    let message = notices[0]["message"].as_str().unwrap();
    assert!(message.starts_with("1 rendez-vous Calendly depuis le "), "{message}");
    assert!(!message.contains("jane"), "no personal data in the notice: {message}");

    // A second miss the same day: counted, no second notice; syncing again counts nothing twice.
    app.seed(&host, "Paul Durand", "paul@example.com", "Découverte 30min", in_days(4));
    app.advance_clocks(Duration::minutes(10));
    app.sync("org-a").await;
    app.sync("org-a").await;
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["missed_24h"], 2, "{health}");
    assert_eq!(gaps_notices(&app.notifications("org-a").await).len(), 1, "one notice a day");

    // A booking found within five minutes may still have its delivery on the way: no miss.
    app.seed(&host, "Lea Petit", "lea@example.com", "Découverte 30min", in_days(5));
    app.advance_clocks(Duration::minutes(2));
    app.sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "lea@example.com").await.is_some());
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["missed_24h"], 2, "{health}");

    // A day later the misses are out of the window, and the next one is the next day's notice.
    app.advance_clocks(Duration::hours(25));
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["missed_24h"], 0, "{health}");
    assert_eq!(health["deliveries_24h"], 0, "{health}");
    assert!(health["last_delivery_at"].is_string(), "the latest delivery is still known");
    app.seed(&host, "Marc Blanc", "marc@example.com", "Découverte 30min", in_days(3));
    app.advance_clocks(Duration::minutes(10));
    app.sync("org-a").await;
    assert_eq!(gaps_notices(&app.notifications("org-a").await).len(), 2, "the next day's notice");
}

crate::helpers::on_both_stores!(the_ledger_counts_deliveries_and_the_bookings_only_a_sync_found, kind);

/// Bookings made before the subscription existed (the initial sync's backfill) or while
/// Calendly had no subscription for us are no misses.
async fn bookings_from_before_the_subscription_are_no_misses(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.advance_clocks(Duration::hours(1));
    app.connect("org-a", &host).await;
    app.wait_for_sync("org-a").await;
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some());
    let health = app.get("/calendly/status", "org-a").await.expect(200)["webhook_health"].clone();
    assert_eq!(health["missed_24h"], 0, "{health}");
    assert!(gaps_notices(&app.notifications("org-a").await).is_empty());
    // Not connected: no health to show.
    let other = app.get("/calendly/status", "org-b").await.expect(200);
    assert!(other["webhook_health"].is_null(), "{other}");
}

crate::helpers::on_both_stores!(bookings_from_before_the_subscription_are_no_misses, kind);
