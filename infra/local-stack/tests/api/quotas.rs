//! Quotas per organization and authenticated inputs: no member can spend the organization's
//! Calendly budget or fill the table, and no client-made cursor reaches the store.

use crate::helpers::{StoreKind, TestApp};
use chrono::Duration;
use local_stack::StackOptions;
use serde_json::json;

fn with_env(pairs: &[(&str, &str)]) -> StackOptions {
    let mut options = StackOptions::default();
    options.env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    options
}

fn retry_after(reply: &crate::helpers::Reply) -> u64 {
    reply.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

async fn cursors_are_authenticated_and_bound_to_their_list_and_organization(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    for i in 0..5 {
        app.post("/prospects", "org-a", json!({ "email": format!("p{i}@example.com") })).await.expect(201);
        app.post("/prospects", "org-b", json!({ "email": format!("p{i}@example.com") })).await.expect(201);
    }
    let page1 = app.get("/prospects?limit=2", "org-a").await.expect(200);
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    let page2 = app.get(&format!("/prospects?limit=2&cursor={cursor}"), "org-a").await.expect(200);
    assert_eq!(page2["items"].as_array().unwrap().len(), 2, "a cursor handed out pages on");

    let (position, tag) = cursor.rsplit_once('.').unwrap();
    let flipped = format!("{}{}", &position[..position.len() - 1], if position.ends_with('A') { 'B' } else { 'A' });
    let forged_dynamo_key = base64_url(r#"{"pk":"ORG#org-b","sk":"PROSPECT#x"}"#);
    let refused = [
        format!("{flipped}.{tag}"),
        position.to_string(),
        format!("{forged_dynamo_key}.{tag}"),
        format!("{position}.AAAAAAAAAAAAAAAAAAAAAA"),
        "not-a-cursor".to_string(),
    ];
    let reads_before = app.stack.dynamo.as_ref().map(|d| d.metrics().snapshot().0);
    for bad in &refused {
        let reply = app.get(&format!("/prospects?limit=2&cursor={bad}"), "org-a").await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_cursor");
    }
    // The organization's own token, but only the cursor is bad: no request reached DynamoDB
    // (authentication reads nothing).
    assert_eq!(app.stack.dynamo.as_ref().map(|d| d.metrics().snapshot().0), reads_before);

    // Another organization's cursor, another list's, another source's: refused too.
    let reply = app.get(&format!("/prospects?limit=2&cursor={cursor}"), "org-b").await;
    assert_eq!(reply.error_code(), "invalid_cursor", "org-a's cursor used by org-b");
    for other in ["/notifications", "/calendly/events"] {
        let reply = app.get(&format!("{other}?limit=2&cursor={cursor}"), "org-a").await;
        assert_eq!(reply.error_code(), "invalid_cursor", "a prospects cursor on {other}");
    }
    let reply = app.get(&format!("/prospects?limit=2&source=calendly&cursor={cursor}"), "org-a").await;
    assert_eq!(reply.error_code(), "invalid_cursor", "a cursor of every source used for one source");
}

crate::helpers::on_both_stores!(cursors_are_authenticated_and_bound_to_their_list_and_organization, kind);

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

async fn a_manual_sync_waits_out_its_cooldown(kind: StoreKind) {
    let app = TestApp::spawn_on_with(kind, with_env(&[("MANUAL_SYNC_COOLDOWN_SECONDS", "60")])).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    // Right after the initial sync: a manual one is fine.
    app.sync("org-a").await;
    let listed = app.sim.request_count("scheduled_events");
    let mut refused = Vec::new();
    for _ in 0..20 {
        refused.push(app.post("/calendly/sync", "org-a", json!({})).await);
    }
    for reply in &refused {
        assert_eq!(reply.status.as_u16(), 429, "{}", reply.body);
        assert_eq!(reply.error_code(), "sync_cooldown");
        assert!((1..=60).contains(&retry_after(reply)), "Retry-After {}", retry_after(reply));
    }
    assert_eq!(app.sim.request_count("scheduled_events"), listed, "a refused sync reads nothing from Calendly");
    // Another organization has its own cooldown.
    let other = app.host("Bob Autre");
    app.connect("org-b", &other).await;
    app.sync("org-b").await;
    // Past the cooldown: accepted again.
    app.advance_clocks(Duration::seconds(61));
    app.sync("org-a").await;
}

crate::helpers::on_both_stores!(a_manual_sync_waits_out_its_cooldown, kind);

async fn event_types_are_read_from_calendly_once_per_five_minutes(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let before = app.sim.request_count("event_types");
    for _ in 0..50 {
        app.get("/calendly/event-types", "org-a").await.expect(200);
    }
    assert_eq!(app.sim.request_count("event_types"), before + 1, "fifty reads, one listing at Calendly");
    app.advance_clocks(Duration::minutes(5));
    app.get("/calendly/event-types", "org-a").await.expect(200);
    assert_eq!(app.sim.request_count("event_types"), before + 2, "read again once five minutes old");

    // Each Calendly account connected is another list: past six listings in five minutes,
    // the organization waits, with a Retry-After, instead of spending more.
    let mut answers = Vec::new();
    for i in 0..6 {
        app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
        app.connect("org-a", &app.host(&format!("Hote Numero{i}"))).await;
        answers.push(app.get("/calendly/event-types", "org-a").await);
    }
    let refused: Vec<_> = answers.iter().filter(|r| r.status.as_u16() == 429).collect();
    assert_eq!(refused.len(), 1, "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(refused[0].error_code(), "event_types_rate_limited");
    assert!(retry_after(refused[0]) >= 1);
    assert_eq!(app.sim.request_count("event_types"), before + 7);
}

crate::helpers::on_both_stores!(event_types_are_read_from_calendly_once_per_five_minutes, kind);

async fn connect_starts_are_limited_per_user(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    for i in 0..10 {
        app.post("/calendly/connect", "org-a", json!({})).await.expect(200);
        assert!(i < 10);
    }
    let refused = app.post("/calendly/connect", "org-a", json!({})).await;
    assert_eq!(refused.status.as_u16(), 429, "{}", refused.body);
    assert_eq!(refused.error_code(), "too_many_connect_starts");
    assert!((1..=600).contains(&retry_after(&refused)));
    // Another user, even of the same organization, starts their own.
    let colleague = app.stack.jwt("colleague", "org-a");
    let reply =
        app.http.post(app.url("/calendly/connect")).bearer_auth(colleague).json(&json!({})).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    // Ten minutes later the user may start again.
    app.advance_clocks(Duration::minutes(10));
    app.post("/calendly/connect", "org-a", json!({})).await.expect(200);
}

crate::helpers::on_both_stores!(connect_starts_are_limited_per_user, kind);

async fn scope_changes_are_paced_before_calendly_is_asked(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let admin = app.host("Alice Admin");
    app.sim.set_role(&admin, "admin");
    app.connect("org-a", &admin).await;
    let scope = |i: usize| if i.is_multiple_of(2) { "organization" } else { "user" };
    for i in 0..10 {
        let changed = app.patch("/calendly/settings", "org-a", json!({ "scope": scope(i) })).await.expect(200);
        assert_eq!(changed["scope"], scope(i), "{changed}");
    }
    let calendly_before = app.sim.api_request_count();
    let refused = app.patch("/calendly/settings", "org-a", json!({ "scope": scope(10) })).await;
    assert_eq!(refused.status.as_u16(), 429, "{}", refused.body);
    assert_eq!(refused.error_code(), "too_many_scope_changes");
    assert!((1..=60).contains(&retry_after(&refused)), "{:?}", refused.headers);
    assert_eq!(app.sim.api_request_count(), calendly_before, "refused before any Calendly request");
    // Other settings are not paced, and a minute later the scope may change again.
    app.patch("/calendly/settings", "org-a", json!({ "sync_interval_minutes": 45 })).await.expect(200);
    app.advance_clocks(Duration::minutes(1));
    let changed = app.patch("/calendly/settings", "org-a", json!({ "scope": scope(10) })).await.expect(200);
    assert_eq!(changed["scope"], scope(10));
}

crate::helpers::on_both_stores!(scope_changes_are_paced_before_calendly_is_asked, kind);

async fn websocket_connections_are_capped_per_organization(kind: StoreKind) {
    let app = TestApp::spawn_on_with(kind, with_env(&[("WS_MAX_CONNECTIONS_PER_ORGANIZATION", "3")])).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.browser("org-a").await);
    }
    let refused = tokio_tungstenite::connect_async(app.stack.websocket_url(&app.token("org-a"))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("a fourth connection was not refused with 429: {:?}", other.map(|_| ())),
    }
    // Another organization is not affected.
    let mut other = app.browser("org-b").await;
    // A closed tab frees its place.
    open.pop().unwrap().close().await;
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(app.stack.websocket_url(&app.token("org-a"))).await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a place freed by a closed tab is taken again");
    // The open connections still get their organization's pushes.
    app.post("/prospects", "org-b", json!({ "email": "ws@example.com" })).await.expect(201);
    other.expect_event("prospect:created", std::time::Duration::from_secs(5)).await;
}

crate::helpers::on_both_stores!(websocket_connections_are_capped_per_organization, kind);

#[tokio::test]
async fn the_local_console_answers_loopback_hosts_only_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    for host in ["evil.example", "evil.example:3000", "127.0.0.1.nip.io", "localhost.evil.example"] {
        let reply = app.http.get(app.url("/")).header("host", host).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 421, "Host {host}");
        assert!(!reply.text().await.unwrap().contains("velvena-token"), "no token for {host}");
    }
    let port = app.stack.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let reply = app.http.get(app.url("/")).header("host", &host).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 200, "Host {host}");
        let policy = reply.headers()["content-security-policy"].to_str().unwrap().to_string();
        let page = reply.text().await.unwrap();
        let nonce = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).unwrap();
        assert!(policy.starts_with("default-src 'none'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains(&format!("ws://{host}")), "{policy}");
        assert!(page.contains(&format!("<script nonce=\"{nonce}\">")), "the page's script carries the nonce");
        assert!(!page.contains(" style=\""), "no inline style attribute (the policy would block it)");
        assert!(!page.contains(" onclick="), "no inline handler");
    }
    // The local routes of the simulator are the console's too.
    let reply = app.http.get(app.url("/_local/simulator")).header("host", "evil.example").send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 421);
}
