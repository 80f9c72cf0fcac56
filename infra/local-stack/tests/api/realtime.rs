use crate::helpers::{Browser, TestApp, in_days};
use calendly_sim::BookingSpec;
use serde_json::json;
use shared::domain::{OrganizationId, UserId};
use shared::store::Connection;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);
const QUIET: Duration = Duration::from_millis(300);

async fn browsers(app: &TestApp, org: &str, n: usize) -> Vec<Browser> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(app.browser(org).await);
    }
    all
}

async fn a_booking_reaches_every_connection_of_its_organization_and_no_other(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let mut a = browsers(&app, "org-a", 3).await;
    let mut b = browsers(&app, "org-b", 2).await;

    // Delivered by Calendly's webhook, as in production.
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    for browser in &mut a {
        let prospect = browser.expect_event("prospect:created", SECOND).await;
        assert_eq!(prospect["email"], "john@example.com");
        assert_eq!(prospect["source"], "calendly");
        for field in ["id", "firstname", "lastname", "phone", "status", "notes", "created_at"] {
            assert!(prospect.get(field).is_some(), "prospect:created lacks {field}");
        }
        let notification = browser.expect_event("notification", SECOND).await;
        assert_eq!(notification["type"], "calendly_prospect_created");
        for field in ["id", "title", "message", "meta", "created_at"] {
            assert!(notification.get(field).is_some(), "notification lacks {field}");
        }
    }
    for browser in &mut b {
        assert_eq!(browser.next(QUIET).await, None, "organization B hears nothing of A");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_prospect_changes_are_pushed() {
    let app = TestApp::spawn().await;
    let mut a = app.browser("org-a").await;
    let mut b = app.browser("org-b").await;
    let created =
        app.post("/prospects", "org-a", json!({ "email": "ada@example.com", "firstname": "Ada" })).await.expect(201);
    let id = created["id"].as_str().unwrap();
    assert_eq!(a.expect_event("prospect:created", SECOND).await["id"], id);
    app.patch(&format!("/prospects/{id}"), "org-a", json!({ "status": "qualified" })).await.expect(200);
    let updated = a.expect_event("prospect:updated", SECOND).await;
    assert_eq!(updated["status"], "qualified");
    assert!(updated.get("updated_at").is_some());
    app.delete(&format!("/prospects/{id}"), "org-a").await.expect(204);
    assert_eq!(a.expect_event("prospect:deleted", SECOND).await, json!({ "id": id }));
    assert_eq!(b.next(QUIET).await, None);
}

#[tokio::test]
async fn an_invalid_token_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    for url in [format!("ws://{}/ws?token=forged", app.stack.addr), format!("ws://{}/ws", app.stack.addr)] {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{url}")
            }
            other => panic!("{url} should be refused, got {:?}", other.map(|_| ())),
        }
    }
    let live = app.stack.store.live_connections(&OrganizationId::new("org-a"), chrono::Utc::now()).await.unwrap();
    assert!(live.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_forgotten_and_a_gone_one_removed_on_the_next_push() {
    let app = TestApp::spawn().await;
    let org = OrganizationId::new("org-a");
    let mut kept = app.browser("org-a").await;
    let closed = app.browser("org-a").await;
    closed.close().await;
    // $disconnect is best-effort in API Gateway: a record can outlive its browser.
    let now = chrono::Utc::now();
    let stale = Connection {
        connection_id: "stale-connection".into(),
        organization_id: org.clone(),
        user_id: UserId::new("u"),
        connected_at: now,
        expires_at: now + chrono::Duration::hours(2),
    };
    app.stack.store.put_connection(&stale).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.stack.store.live_connections(&org, now).await.unwrap().len(), 2, "the closed one ran $disconnect");

    app.post("/prospects", "org-a", json!({ "email": "ada@example.com" })).await.expect(201);
    kept.expect_event("prospect:created", SECOND).await;
    let live = app.stack.store.live_connections(&org, now).await.unwrap();
    assert_eq!(live.len(), 1, "the management API answered 410 for the stale one, which was deleted");
    assert_ne!(live[0].connection_id, "stale-connection");
}

#[tokio::test]
async fn connections_past_their_ttl_are_ignored_before_they_are_deleted() {
    let app = TestApp::spawn().await;
    let org = OrganizationId::new("org-a");
    let _browser = app.browser("org-a").await;
    let now = chrono::Utc::now();
    assert_eq!(app.stack.store.live_connections(&org, now).await.unwrap().len(), 1);
    let later = now + chrono::Duration::hours(2) + chrono::Duration::minutes(1);
    assert!(app.stack.store.live_connections(&org, later).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_of_one_organization_all_receive_a_message() {
    let app = TestApp::spawn().await;
    let mut all = browsers(&app, "org-a", 200).await;
    let started = Instant::now();
    app.post("/prospects", "org-a", json!({ "email": "ada@example.com" })).await.expect(201);
    let mut received = 0;
    for browser in &mut all {
        browser.expect_event("prospect:created", Duration::from_secs(5)).await;
        received += 1;
    }
    assert_eq!(received, 200);
    // Reported, not asserted: timings belong to the benchmarks.
    eprintln!("fan-out to 200 connections: {:?} from request to last receipt", started.elapsed());
}

crate::helpers::on_both_stores!(a_booking_reaches_every_connection_of_its_organization_and_no_other);

/// One booking can be followed from the work that made it to the browser: each push carries
/// the correlation id of that work (the request's, the delivery's, the job's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_push_names_the_correlation_id_of_the_work_that_made_it() {
    let app = TestApp::spawn().await;
    let mut browser = app.browser("org-a").await;
    let answer = app
        .http
        .post(app.url("/prospects"))
        .bearer_auth(app.token("org-a"))
        .header("x-request-id", "req-push-7")
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let pushed = browser.next(SECOND).await.expect("prospect:created");
    assert_eq!(pushed["event"], "prospect:created");
    assert_eq!(pushed["correlation_id"], "req-push-7", "{pushed}");

    // A connect queues the first sync: its pushes carry the job's id, as its log lines do.
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let deadline = Instant::now() + 10 * SECOND;
    let job = loop {
        let message = browser.next(deadline.saturating_duration_since(Instant::now())).await.expect("calendly:sync");
        if message["event"] == "calendly:sync" && message["data"]["state"] == "succeeded" {
            break message;
        }
    };
    assert_eq!(job["correlation_id"], job["data"]["correlation_id"], "{job}");

    // A webhook delivery's pushes carry the delivery's id, one per delivery.
    app.sim.book(&host, BookingSpec::new("John Doe", "john@example.com", "Découverte 30min", in_days(2))).await;
    let created = loop {
        let message = browser.next(SECOND).await.expect("prospect:created from the delivery");
        if message["event"] == "prospect:created" {
            break message;
        }
    };
    let notification = browser.next(SECOND).await.expect("notification");
    let delivery = created["correlation_id"].as_str().expect("a correlation id").to_string();
    assert!(!delivery.is_empty() && delivery != "req-push-7" && job["correlation_id"] != delivery.as_str());
    assert_eq!(notification["correlation_id"], delivery.as_str(), "the same delivery");
}
