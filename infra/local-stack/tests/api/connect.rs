use crate::helpers::{TestApp, in_days};
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;

#[tokio::test]
async fn connect_returns_an_authorize_url_with_pkce_scopes_and_state() {
    let app = TestApp::spawn().await;
    let start = app.post("/calendly/connect", "org-a", json!({})).await.expect(200);
    let url = url::Url::parse(start["authorize_url"].as_str().unwrap()).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/oauth/authorize");
    assert_eq!(q["client_id"], app.sim.config().client_id);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], app.url("/auth/calendly/callback"));
    // Exactly what the calls need (Calendly grants nothing beyond since 2026-03-03).
    assert_eq!(
        q["scope"],
        "users:read scheduled_events:read scheduled_events:write event_types:read organizations:read routing_forms:read webhooks:write data_compliance:write"
    );
    assert_eq!(q["state"], start["state"].as_str().unwrap());
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(start["expires_at"].is_string());
}

async fn callback_connects_syncs_subscribes_and_mirrors_settings(app: TestApp) {
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.patch("/organization", "org-a", json!({ "settings": { "currency": "EUR" } })).await.expect(200);

    let connected = app.connect("org-a", &host).await;
    assert_eq!(connected["connected"], true);
    assert_eq!(connected["email"], host.email);
    assert_eq!(connected["name"], host.name);
    assert_eq!(connected["user_uri"], host.uri);
    assert_eq!(connected["sync"]["bookings_new"], 1);
    assert_eq!(connected["sync"]["prospects_created"], 1);

    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["connected"], true);
    assert_eq!(status["webhook_active"], true);
    assert_eq!(status["needs_reconnect"], false);
    assert_eq!(status["auto_sync_enabled"], true);
    assert_eq!(status["sync_interval_minutes"], 30);
    assert!(status["last_synced_at"].is_string());
    assert!(status["next_sync_at"].is_string());

    let subscriptions = app.sim.webhook_subscriptions(&host);
    assert_eq!(subscriptions.len(), 1);
    assert!(subscriptions[0].1.starts_with(&app.url("/calendly/webhook/")));

    let org = app.get("/organization", "org-a").await.expect(200);
    let calendly = &org["settings"]["calendly"];
    assert_eq!(org["settings"]["currency"], "EUR", "other settings stay untouched");
    assert_eq!(calendly["enabled"], true);
    assert_eq!(calendly["mode"], "oauth");
    assert_eq!(calendly["oauth_connected"], true);
    assert_eq!(calendly["oauth_email"], host.email);
    assert_eq!(calendly["oauth_user_uri"], host.uri);
    assert_eq!(calendly["oauth_user_name"], host.name);
    assert_eq!(calendly["oauth_token_type"], "Bearer");
    assert!(calendly["oauth_expires_at"].is_string());
    assert!(calendly["calendly_link"].as_str().unwrap().starts_with("https://calendly.com/"));
}

#[tokio::test]
async fn status_without_an_integration_says_not_connected() {
    let app = TestApp::spawn().await;
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["connected"], false);
    assert!(status["email"].is_null());
    assert!(status["last_synced_at"].is_null());
}

#[tokio::test]
async fn a_state_is_single_use_and_unknown_states_are_refused() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let (code, state) = app.authorize("org-a", &host).await;
    app.post("/auth/calendly/callback", "org-a", json!({ "code": code, "state": state })).await.expect(200);
    let reused = app.post("/auth/calendly/callback", "org-a", json!({ "code": code, "state": state })).await;
    assert_eq!(reused.status.as_u16(), 400);
    assert_eq!(reused.error_code(), "invalid_state");
    let unknown = app.post("/auth/calendly/callback", "org-a", json!({ "code": "x", "state": "never-issued" })).await;
    assert_eq!(unknown.status.as_u16(), 400);
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let (code, state) = app.authorize("org-a", &host).await;
    app.advance_clocks(chrono::Duration::minutes(11));
    let reply = app.post("/auth/calendly/callback", "org-a", json!({ "code": code, "state": state })).await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(reply.error_code(), "invalid_state");
}

#[tokio::test]
async fn another_organizations_state_is_refused() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let (code, state) = app.authorize("org-a", &host).await;
    let reply = app.post("/auth/calendly/callback", "org-b", json!({ "code": code, "state": state })).await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(app.get("/calendly/status", "org-b").await.expect(200)["connected"], false);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false);
}

#[tokio::test]
async fn a_code_calendly_refuses_is_a_400_with_its_reason() {
    let app = TestApp::spawn().await;
    let start = app.post("/calendly/connect", "org-a", json!({})).await.expect(200);
    let reply =
        app.post("/auth/calendly/callback", "org-a", json!({ "code": "forged-code", "state": start["state"] })).await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(reply.error_code(), "calendly_rejected");
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("invalid_grant"));
}

#[tokio::test]
async fn calendly_unreachable_during_connect_is_a_502() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let (code, state) = app.authorize("org-a", &host).await;
    app.sim.set_unavailable(true);
    let reply = app.post("/auth/calendly/callback", "org-a", json!({ "code": code, "state": state })).await;
    assert_eq!(reply.status.as_u16(), 502);
    assert_eq!(reply.error_code(), "calendly_unavailable");
}

#[tokio::test]
async fn a_malformed_callback_body_is_a_400() {
    let app = TestApp::spawn().await;
    for body in ["not json", "{}", "{\"code\": 1, \"state\": \"s\"}"] {
        let reply = app
            .http
            .post(app.url("/auth/calendly/callback"))
            .bearer_auth(app.token("org-a"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 400, "body {body}");
    }
}

#[tokio::test]
async fn reconnecting_replaces_the_integration_and_keeps_one_subscription() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.connect("org-a", &host).await;
    let second = app.connect("org-a", &host).await;
    assert_eq!(second["connected"], true);
    assert_eq!(second["sync"]["bookings_new"], 0, "the bookings are already known");
    assert_eq!(app.sim.webhook_subscriptions(&host).len(), 1);
    assert_eq!(app.prospects("org-a").await.len(), 1);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["webhook_active"], true);
}

/// The browser's consent round trip, as a browser makes it: the callback URL it lands on.
async fn consent(app: &TestApp, org: &str, host: &calendly_sim::SimUser) -> String {
    let start = app.post("/calendly/connect", org, json!({})).await.expect(200);
    let consent = app
        .http
        .get(start["authorize_url"].as_str().unwrap())
        .query(&[("login", host.email.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status().as_u16(), 303);
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&app.url("/auth/calendly/callback")));
    back
}

#[tokio::test]
async fn the_browser_callback_hands_code_and_state_to_the_initiator_who_completes_it() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    let back = consent(&app, "org-a", &host).await;
    let q: HashMap<String, String> = url::Url::parse(&back).unwrap().query_pairs().into_owned().collect();
    let page = app.http.get(&back).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    for (header, value) in
        [("x-content-type-options", "nosniff"), ("cache-control", "no-store"), ("x-frame-options", "DENY")]
    {
        assert_eq!(page.headers()[header], value, "{header}");
    }
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains(&q["code"]) && html.contains(&q["state"]), "the page says how to finish");
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false, "a GET connects nothing");

    let done = app.post("/auth/calendly/callback", "org-a", json!({ "code": q["code"], "state": q["state"] })).await;
    assert_eq!(done.expect(200)["email"], host.email);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["email"], host.email);
}

#[tokio::test]
async fn with_a_frontend_the_browser_callback_redirects_there_with_code_and_state() {
    let env = HashMap::from([("FRONTEND_URL".to_string(), "https://app.velvena.example".to_string())]);
    let app = TestApp::spawn_with(local_stack::StackOptions { env, ..Default::default() }).await;
    let host = app.host("Camille Martin");
    let back = consent(&app, "org-a", &host).await;
    let reply = app.http.get(&back).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 303);
    let location = url::Url::parse(reply.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("app.velvena.example"));
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert!(q.contains_key("calendly_code") && q.contains_key("calendly_state"));
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false);
}

async fn disconnect_revokes_unsubscribes_soft_deletes_and_keeps_prospects(app: TestApp) {
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.connect("org-a", &host).await;
    let revoked_before = app.sim.revoked_token_count();

    let reply = app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
    assert_eq!(reply["connected"], false);
    assert!(app.sim.revoked_token_count() > revoked_before);
    assert!(app.sim.webhook_subscriptions(&host).is_empty());
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false);
    let org = app.get("/organization", "org-a").await.expect(200);
    assert_eq!(org["settings"]["calendly"]["enabled"], false);
    assert_eq!(org["settings"]["calendly"]["oauth_connected"], false);
    assert_eq!(app.prospects("org-a").await.len(), 1, "prospects stay");

    app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
    let sync = app.request(Method::POST, "/calendly/sync", Some("org-a"), None).await;
    assert_eq!(sync.status.as_u16(), 409);
}

#[tokio::test]
async fn settings_validate_the_interval_and_drive_the_schedule() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    for bad in [
        json!({ "sync_interval_minutes": 4 }),
        json!({ "sync_interval_minutes": 1441 }),
        json!({ "auto_sync_enabled": "yes" }),
        json!({ "other": 1 }),
    ] {
        assert_eq!(app.patch("/calendly/settings", "org-a", bad.clone()).await.status.as_u16(), 400, "{bad}");
    }
    let status = app
        .patch("/calendly/settings", "org-a", json!({ "sync_interval_minutes": 60, "auto_sync_enabled": false }))
        .await
        .expect(200);
    assert_eq!(status["sync_interval_minutes"], 60);
    assert_eq!(status["auto_sync_enabled"], false);
}

crate::helpers::on_both_stores!(callback_connects_syncs_subscribes_and_mirrors_settings);

crate::helpers::on_both_stores!(disconnect_revokes_unsubscribes_soft_deletes_and_keeps_prospects);

#[tokio::test]
async fn disconnect_answers_even_when_calendly_hangs_and_the_user_is_disconnected() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // Calendly stops answering (each request would take a minute).
    app.sim.set_latency(std::time::Duration::from_secs(60));
    let reply =
        tokio::time::timeout(std::time::Duration::from_secs(15), app.post("/calendly/disconnect", "org-a", json!({})))
            .await
            .expect("the disconnect does not wait for a hanging Calendly");
    assert_eq!(reply.expect(200)["connected"], false);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false);
    assert_eq!(app.get("/organization", "org-a").await.expect(200)["settings"]["calendly"]["oauth_connected"], false);
}
