//! A sync when tokens expire or die, when Calendly is down or rate-limits: retried, waited
//! out, or failed and said so, never with data lost or duplicated.

use super::*;

async fn concurrent_syncs_after_the_token_expired_refresh_once_and_stay_healthy(app: TestApp) {
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(3));
    app.advance_clocks(chrono::Duration::hours(3));
    let refreshes_before = app.sim.request_count("token");

    // Twenty workers (a sync slice, webhook checks, disconnect...) want a token at once.
    let services = &app.stack.services;
    let integration =
        services.store().get_integration(&shared::domain::OrganizationId::new("org-a")).await.unwrap().unwrap();
    let wants = (0..20).map(|_| {
        let integration = integration.clone();
        async move {
            let session = services.engine().session(std::time::Duration::ZERO);
            services.engine().tokens().access_token(&session, &integration).await.map(|(token, _)| token)
        }
    });
    let tokens: std::collections::BTreeSet<String> =
        futures::future::join_all(wants).await.into_iter().map(|t| t.expect("a token")).collect();
    assert_eq!(tokens.len(), 1, "everyone got the one new token");
    assert_eq!(app.sim.refused_refresh_count(), 0, "no refresh token was used twice");
    assert_eq!(app.sim.request_count("token") - refreshes_before, 1, "one refresh for twenty callers");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["needs_reconnect"], false);
    assert_eq!(status["connected"], true);
    app.sync("org-a").await;
    assert_eq!(app.prospects("org-a").await.len(), 1);
}

#[tokio::test]
async fn a_dead_refresh_token_marks_the_integration_for_reconnection() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // The user revoked our access in Calendly: every token of ours dies.
    let integration = app
        .stack
        .services
        .store()
        .get_integration(&shared::domain::OrganizationId::new("org-a"))
        .await
        .unwrap()
        .unwrap();
    let refresh = app
        .stack
        .services
        .sealer()
        .open(
            &integration.refresh_token,
            &shared::engine::tokens::seal_context(&integration, shared::engine::tokens::SealPurpose::RefreshToken),
        )
        .unwrap();
    app.http
        .post(format!("{}/oauth/revoke", app.sim.base_url()))
        .form(&[
            ("client_id", app.sim.config().client_id.as_str()),
            ("client_secret", app.sim.config().client_secret.as_str()),
            ("token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    app.advance_clocks(chrono::Duration::hours(3));

    app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "failed");
    assert!(ended["error"].as_str().unwrap().contains("reconnect"), "{ended}");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["needs_reconnect"], true);
    let reply = app.post("/calendly/sync", "org-a", json!({})).await;
    assert_eq!(reply.status.as_u16(), 409);
    assert_eq!(reply.error_code(), "calendly_needs_reconnect");
    // Reconnecting heals it.
    app.connect("org-a", &host).await;
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["needs_reconnect"], false);
}

/// A stack whose jobs retry transient failures after 300 ms (instead of 15 s).
async fn quick_retry_app() -> TestApp {
    let env = HashMap::from([("SYNC_RETRY_DELAY_MS".to_string(), "300".to_string())]);
    TestApp::spawn_with(StackOptions { env, ..Default::default() }).await
}

#[tokio::test]
async fn calendly_down_during_a_sync_is_retried_by_the_job_and_loses_nothing() {
    let app = quick_retry_app().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(3));
    app.sim.set_unavailable(true);
    let queued = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    // The job waits for its retry and says why.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let sync = app.get("/calendly/status", "org-a").await.expect(200)["sync"].clone();
        if sync["error"].as_str().is_some_and(|e| e.contains("unreachable")) {
            assert_eq!(sync["state"], "running");
            assert!(sync["waiting_until"].is_string(), "{sync}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never reported the outage: {sync}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["needs_reconnect"], false);
    app.sim.set_unavailable(false);
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["id"], queued["id"], "the same job carried on");
    assert_eq!(ended["state"], "succeeded");
    assert_eq!(ended["error"], serde_json::Value::Null);
    assert_eq!(ended["bookings_new"], 1);
}

#[tokio::test]
async fn calendly_down_for_good_fails_the_job_after_its_retries() {
    let app = quick_retry_app().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.set_unavailable(true);
    app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    // 5 retries: 0.3 + 0.6 + 1.2 + 2.4 + 4.8 s.
    let ended = app.wait_for_sync_within("org-a", std::time::Duration::from_secs(30)).await;
    assert_eq!(ended["state"], "failed");
    assert!(ended["error"].as_str().unwrap().contains("unreachable"), "{ended}");
    // A failed job blocks nothing: the next request queues a new one.
    app.sim.set_unavailable(false);
    let next = app.sync("org-a").await;
    assert_ne!(next["id"], ended["id"]);
}

#[tokio::test]
async fn a_rate_limited_sync_waits_for_the_reset_and_completes() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(3));
    app.sim.rate_limit_next(2);
    let report = app.sync("org-a").await;
    assert_eq!(report["bookings_new"], 1);
    assert_eq!(report["calendly_requests"], 5, "two refused, then the upcoming list, its invitees, the past list");
}

#[tokio::test]
async fn a_persistently_rate_limited_sync_waits_in_the_queue_instead_of_failing() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.rate_limit_next(1000);
    let queued = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let sync = app.get("/calendly/status", "org-a").await.expect(200)["sync"].clone();
        if sync["waiting_until"].is_string() {
            assert_eq!(sync["state"], "running");
            assert_eq!(sync["id"], queued["id"]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never paused: {sync}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Asking again while it waits returns that job: no second job, no extra requests.
    let again = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    assert_eq!(again["id"], queued["id"]);
}

crate::helpers::on_both_stores!(concurrent_syncs_after_the_token_expired_refresh_once_and_stay_healthy);

#[tokio::test]
async fn a_token_refused_even_after_a_refresh_asks_for_reconnection_once() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let mut browser = app.browser("org-a").await;
    app.sim.refuse_access_of(&host);
    let refreshes = app.sim.request_count("token");

    app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "failed");
    assert_eq!(app.sim.request_count("token") - refreshes, 1, "one refresh, then no more token requests");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["needs_reconnect"], true);
    let notification = browser.expect_event("notification", std::time::Duration::from_secs(5)).await;
    assert_eq!(notification["type"], "calendly_reconnect_needed");
    let kinds: Vec<String> =
        app.notifications("org-a").await.iter().map(|n| n["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["calendly_reconnect_needed"]);

    // Off the schedule: later ticks make no token request for it.
    app.advance_clocks(chrono::Duration::hours(3));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 0);
    assert_eq!(app.sim.request_count("token") - refreshes, 1);
}
