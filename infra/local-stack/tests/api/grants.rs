//! What Calendly grants, checked: scopes requested and checked per feature, a grant revoked
//! in Calendly told to the organization once, and settings changed during the initial job.

use crate::helpers::{StoreKind, TestApp, in_days};
use serde_json::{Value, json};

async fn start_and_approve(
    app: &TestApp,
    org: &str,
    host: &calendly_sim::SimUser,
    scope: &str,
) -> crate::helpers::Reply {
    let start = app.post("/calendly/connect", org, json!({ "scope": scope })).await.expect(200);
    let code = app.sim.approve(host, start["authorize_url"].as_str().unwrap()).expect("approved");
    let state = start["state"].as_str().unwrap();
    app.post("/auth/calendly/callback", org, json!({ "code": code, "state": state })).await
}

async fn organization_scope_without_organizations_read_is_refused_and_undone(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    // An app registered in Calendly's portal without `organizations:read`.
    app.sim.set_app_scopes(&["users:read", "scheduled_events:read", "event_types:read", "webhooks:write"]);
    let admin = app.host("Alice Admin");
    let refused = start_and_approve(&app, "org-a", &admin, "organization").await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    assert_eq!(refused.error_code(), "calendly_scope_missing");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("organizations:read"), "{}", refused.body);
    assert_eq!(app.sim.revoked_token_count(), 2, "both tokens given back");
    assert_eq!(app.sim.request_count("scope_refused"), 0, "no call was made without its scope");
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["connected"], false);
    // Nothing was claimed: another organization connects the same account in user scope.
    let user_scope = start_and_approve(&app, "org-b", &admin, "user").await.expect(200);
    assert_eq!(user_scope["scope"], "user");
}

crate::helpers::on_both_stores!(organization_scope_without_organizations_read_is_refused_and_undone, kind);

#[tokio::test]
async fn a_missing_optional_scope_shows_in_the_status_and_its_feature_says_so() {
    let app = TestApp::spawn().await;
    app.sim.set_app_scopes(&["users:read", "scheduled_events:read", "webhooks:write"]);
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Démo", in_days(2));
    let connected = app.connect("org-a", &host).await;
    assert_eq!(connected["sync"]["state"], "succeeded", "bookings still sync");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(
        status["missing_scopes"],
        json!([
            "scheduled_events:write",
            "event_types:read",
            "organizations:read",
            "routing_forms:read",
            "data_compliance:write"
        ]),
        "{status}"
    );
    assert_eq!(status["scopes"], json!(["users:read", "scheduled_events:read", "webhooks:write"]));
    let picker = app.get("/calendly/event-types", "org-a").await;
    assert_eq!(picker.status.as_u16(), 403, "{}", picker.body);
    assert_eq!(picker.error_code(), "calendly_scope_missing");
    assert_eq!(app.sim.request_count("event_types"), 0, "not asked of Calendly");
    assert_eq!(app.sim.request_count("scope_refused"), 0);
}

#[tokio::test]
async fn a_token_answer_without_scope_is_taken_as_granted_and_calendlys_403_is_named() {
    let app = TestApp::spawn().await;
    app.sim.omit_token_scope(true);
    app.sim.set_app_scopes(&["users:read", "scheduled_events:read", "webhooks:write"]);
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Démo", in_days(2));
    app.connect("org-a", &host).await;
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert!(status["scopes"].is_null());
    assert_eq!(status["missing_scopes"], json!([]));
    // Calendly's own 403 comes back as a named 403, not as a 400.
    let picker = app.get("/calendly/event-types", "org-a").await;
    assert_eq!((picker.status.as_u16(), picker.error_code()), (403, "calendly_forbidden"), "{}", picker.body);
}

async fn a_grant_revoked_in_calendly_is_told_once_and_stops_the_schedule(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.revoke_grant(&host);
    // The access token expires; the refresh answers `invalid_grant`. Two syncs, one notice.
    app.advance_clocks(chrono::Duration::hours(3));
    for _ in 0..2 {
        let ran = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
        if ran["queued"] == 1 {
            assert_eq!(app.wait_for_sync("org-a").await["state"], "failed");
        }
    }
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["needs_reconnect"], true, "{status}");
    let notices: Vec<Value> =
        app.notifications("org-a").await.into_iter().filter(|n| n["type"] == "calendly_reconnect_needed").collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let org = app.get("/organization", "org-a").await.expect(200);
    assert_eq!(org["settings"]["calendly"]["oauth_connected"], false, "{org}");
    // Off the schedule until reconnected: no more token requests for a dead grant.
    let tokens_before = app.sim.request_count("token");
    app.advance_clocks(chrono::Duration::hours(2));
    let ran = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(ran["queued"], 0, "{ran}");
    assert_eq!(app.sim.request_count("token"), tokens_before);
    // Reconnecting brings it back.
    app.connect("org-a", &host).await;
    let org = app.get("/organization", "org-a").await.expect(200);
    assert_eq!(org["settings"]["calendly"]["oauth_connected"], true);
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["needs_reconnect"], false);
}

crate::helpers::on_both_stores!(a_grant_revoked_in_calendly_is_told_once_and_stops_the_schedule, kind);

async fn an_interval_set_right_after_connecting_applies_to_the_first_schedule(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let orgs: Vec<String> = (0..20).map(|n| format!("org-{n}")).collect();
    for (n, org) in orgs.iter().enumerate() {
        let host = app.host(&format!("Host {n}"));
        app.seed(&host, "John Doe", &format!("john{n}@example.com"), "Démo", in_days(2));
        app.connect_queued(org, &host).await;
        // While the initial job may still be running.
        app.patch("/calendly/settings", org, json!({ "sync_interval_minutes": 5 })).await.expect(200);
    }
    for org in &orgs {
        assert_eq!(app.wait_for_sync(org).await["state"], "succeeded");
    }
    app.advance_clocks(chrono::Duration::minutes(6));
    let ran = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(ran["queued"], 20, "every organization due after 5 minutes: {ran}");
    let time = |v: &Value| v.as_str().and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok());
    for org in &orgs {
        let ended = app.wait_for_sync(org).await;
        // The job item ends first, the schedule is written right after it.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            let status = app.get("/calendly/status", org).await.expect(200);
            if time(&status["last_synced_at"]) >= time(&ended["finished_at"]) {
                break status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the schedule was not written: {status}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        };
        let (last, next) = (time(&status["last_synced_at"]).unwrap(), time(&status["next_sync_at"]).unwrap());
        assert!(next - last <= chrono::Duration::minutes(5), "{status}");
    }
}

crate::helpers::on_both_stores!(an_interval_set_right_after_connecting_applies_to_the_first_schedule, kind);
