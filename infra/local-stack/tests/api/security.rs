//! The attack review's holes, each reproduced over HTTP or WebSocket against the local stack
//! (both stores where a store is involved) and shown refused, with nothing written.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::BookingSpec;
use chrono::{Duration, Utc};
use local_stack::{LocalStack, StackOptions};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

fn token_with(app: &TestApp, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(app.stack.config.jwt_secret.expose().as_bytes()),
    )
    .unwrap()
}

async fn request_with_token(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

// ---- 1. Connect bound to its initiator --------------------------------------------------------

async fn a_connect_completes_only_for_the_user_and_organization_that_started_it(app: TestApp) {
    let victim = app.host("Victim Host");
    app.seed(&victim, "Client Of Victim", "client@victim.example", "Découverte 30min", in_days(2));
    // The attacker (org-x) starts a connect; the victim consents with their Calendly account.
    let (code, state) = app.authorize("org-x", &victim).await;
    // Presented by anyone else (another organization, another user of org-x): refused...
    let other_org = app.post("/auth/calendly/callback", "org-v", json!({ "code": code, "state": state })).await;
    assert_eq!(other_org.status.as_u16(), 400);
    assert_eq!(other_org.error_code(), "invalid_state");
    let other_user = app.stack.jwt("another-user", "org-x");
    let (status, _) = request_with_token(
        &app,
        Method::POST,
        "/auth/calendly/callback",
        &other_user,
        Some(json!({ "code": code, "state": state })),
    )
    .await;
    assert_eq!(status, 400);
    // ...nothing connected, nothing copied, and the state not burnt by those attempts.
    for org in ["org-x", "org-v"] {
        assert_eq!(app.get("/calendly/status", org).await.expect(200)["connected"], false);
        assert!(app.prospects(org).await.is_empty());
    }
    let owner = app.post("/auth/calendly/callback", "org-x", json!({ "code": code, "state": state })).await;
    assert_eq!(owner.expect(200)["connected"], true, "the initiator still completes its own connect");
}

#[tokio::test]
async fn a_bare_browser_callback_with_a_valid_code_and_state_connects_nothing() {
    let app = TestApp::spawn().await;
    let victim = app.host("Victim Host");
    let (code, state) = app.authorize("org-x", &victim).await;
    let page = app
        .http
        .get(app.url("/auth/calendly/callback"))
        .query(&[("code", &code), ("state", &state)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(app.get("/calendly/status", "org-x").await.expect(200)["connected"], false);
    assert!(app.sim.webhook_subscriptions(&victim).is_empty());
}

// ---- 2. One Calendly account, one organization ------------------------------------------------

async fn a_calendly_account_active_in_one_organization_cannot_be_connected_to_another(app: TestApp) {
    let host = app.host("Shared Host");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    app.connect("org-a", &host).await;
    let revoked = app.sim.revoked_token_count();

    let (code, state) = app.authorize("org-b", &host).await;
    let reply = app.post("/auth/calendly/callback", "org-b", json!({ "code": code, "state": state })).await;
    assert_eq!(reply.status.as_u16(), 409);
    assert_eq!(reply.error_code(), "calendly_account_in_use");
    assert!(app.sim.revoked_token_count() > revoked, "org-b's fresh tokens were given back");
    assert_eq!(app.get("/calendly/status", "org-b").await.expect(200)["connected"], false);
    assert!(app.prospects("org-b").await.is_empty());
    let a = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(a["connected"], true, "org-a stays connected");
    assert_eq!(a["webhook_active"], true);
    assert_eq!(app.sim.webhook_subscriptions(&host).len(), 1);

    // org-a reconnecting replaces its own integration; once it disconnects, org-b may connect.
    app.connect("org-a", &host).await;
    app.post("/calendly/disconnect", "org-a", json!({})).await.expect(200);
    assert_eq!(app.connect("org-b", &host).await["connected"], true);
}

// ---- 3. Webhooks --------------------------------------------------------------------------------

async fn a_signed_delivery_about_another_calendly_user_is_gone_and_writes_nothing(app: TestApp) {
    let (a, b) = (app.host("Host A"), app.host("Host B"));
    app.connect("org-a", &a).await;
    app.connect("org-b", &b).await;
    app.sim.set_webhook_deliveries(false);
    let booked = app.sim.book(&b, BookingSpec::new("Jane Roe", "jane@example.com", "Démo", in_days(2))).await;
    // B's booking, correctly signed by Calendly, sent to A's webhook URL.
    let a_url = app.sim.webhook_subscriptions(&a)[0].1.clone();
    let (body, header) = app.sim.signed_delivery("invitee.created", &booked, Utc::now());
    let reply = app.http.post(&a_url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
    // Not this integration's user: the subscription that sent it is no longer ours (410).
    assert_eq!(reply.status().as_u16(), 410);
    let answer: Value = reply.json().await.unwrap();
    assert_eq!(answer["status"], "gone", "{answer}");
    assert!(app.prospects("org-a").await.is_empty(), "nothing written in org-a");
    assert!(app.notifications("org-a").await.is_empty());
}

async fn forged_and_oversized_deliveries_are_refused_before_the_store_is_read(kind: StoreKind) {
    let app = TestApp::spawn_on(kind).await;
    let reads = |app: &TestApp| app.stack.dynamo.as_ref().map(|d| d.metrics().snapshot().0);
    let before = reads(&app);
    let url = app.url("/calendly/webhook/some-integration");
    let now = Utc::now().timestamp();
    // A forged signature: 401, and not one read.
    let forged = app
        .http
        .post(&url)
        .header("calendly-webhook-signature", format!("t={now},v1={}", "ab".repeat(32)))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    // 1,700 v1 entries over 1.9 MB: refused without 1,700 HMACs of the body.
    let header = format!("t={now},{}", vec![format!("v1={}", "cd".repeat(32)); 1700].join(","));
    let big = vec![b'x'; 1_900_000];
    let flood = app.http.post(&url).header("calendly-webhook-signature", header).body(big).send().await.unwrap();
    assert_eq!(flood.status().as_u16(), 413, "over 256 KB: refused before any HMAC");
    let error: Value = flood.json().await.unwrap();
    assert_eq!(error["error"]["code"], "payload_too_large");
    let header = format!("t={now},{}", vec![format!("v1={}", "cd".repeat(32)); 1700].join(","));
    let many = app.http.post(&url).header("calendly-webhook-signature", header).body("{}").send().await.unwrap();
    assert_eq!(many.status().as_u16(), 401);
    assert_eq!(reads(&app), before, "no store access for any of them");
}

// ---- 4. Bounded inputs --------------------------------------------------------------------------

async fn inputs_the_table_cannot_hold_are_400s_and_write_nothing(app: TestApp) {
    app.patch("/organization", "org-a", json!({ "settings": { "timezone": "Europe/Paris" } })).await.expect(200);
    let before = app.get("/organization", "org-a").await.expect(200);
    let cases = [
        (json!({ "settings": { "blob": "x".repeat(500 * 1024) } }), "settings_too_large"),
        (json!({ "settings": { "n": 1e200 } }), "invalid_settings"),
        (json!({ "settings": { "": 1 } }), "invalid_settings"),
        (json!({ "settings": { "calendly": { "oauth_connected": true } } }), "read_only_setting"),
    ];
    for (body, code) in cases {
        let reply = app.patch("/organization", "org-a", body).await;
        assert_eq!(reply.status.as_u16(), 400);
        assert_eq!(reply.error_code(), code);
    }
    assert_eq!(app.get("/organization", "org-a").await.expect(200), before, "nothing written");

    let reply = app.post("/prospects", "org-a", json!({ "firstname": "Ada", "source": "salon#2026" })).await;
    assert_eq!((reply.status.as_u16(), reply.error_code()), (400, "invalid_source"));
    assert_eq!(app.get("/prospects?source=a%23b", "org-a").await.status.as_u16(), 400);
    for email in ["jo\u{200b}hn@example.com", "john\u{ad}@example.com", "\u{feff}john@example.com"] {
        let reply = app.post("/prospects", "org-a", json!({ "email": email })).await;
        assert_eq!((reply.status.as_u16(), reply.error_code()), (400, "invalid_email"), "{email:?}");
    }
    assert!(app.prospects("org-a").await.is_empty());

    // An organization id with the key separator would read another tenant's partition.
    let token = app.stack.jwt("u", "org-a#x");
    let (status, body) = request_with_token(&app, Method::GET, "/prospects", &token, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_organization_id")));
}

async fn look_alike_emails_are_one_prospect(app: TestApp) {
    app.post("/prospects", "org-a", json!({ "email": "jean@caf\u{e9}.fr" })).await.expect(201);
    let twin = app.post("/prospects", "org-a", json!({ "email": "JEAN@xn--caf-dma.fr" })).await;
    assert_eq!((twin.status.as_u16(), twin.error_code()), (409, "email_taken"));
    app.post("/prospects", "org-a", json!({ "email": "rene\u{301}@example.com" })).await.expect(201);
    let composed = app.post("/prospects", "org-a", json!({ "email": "ren\u{e9}@example.com" })).await;
    assert_eq!(composed.status.as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_a_500_not_a_busy_store() {
    let app = TestApp::spawn_on(StoreKind::DynamoDb).await;
    let dynamo = app.stack.dynamo.clone().unwrap();
    dynamo.client().delete_table().table_name(dynamo.table()).send().await.unwrap();
    let reply = app.get("/prospects", "org-a").await;
    assert_eq!(reply.status.as_u16(), 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "internal");
    assert!(!reply.headers.contains_key("retry-after"), "retrying won't help");
}

#[tokio::test]
async fn every_error_body_is_json_even_axums_own() {
    let app = TestApp::spawn().await;
    let reply = app
        .http
        .post(app.url("/prospects"))
        .bearer_auth(app.token("org-a"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 413);
    let body: Value = reply.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let reply = app.http.put(app.url("/prospects")).bearer_auth(app.token("org-a")).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 405);
    assert_eq!(reply.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");
}

// ---- 5. Secrets and tokens ----------------------------------------------------------------------

#[tokio::test]
async fn start_up_refuses_placeholder_and_short_secrets_naming_the_variable() {
    // Every secret the configuration reads, the previous keys of a roll included.
    for (name, value) in [
        ("JWT_SECRET", "FILL_ME"),
        ("JWT_SECRET", "too-short"),
        ("CALENDLY_CLIENT_SECRET", "FILL_ME"),
        ("CALENDLY_WEBHOOK_SIGNING_KEY", "<signing key>"),
        ("CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS", "FILL_ME"),
        ("CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS", "<previous signing key>"),
        ("ENCRYPTION_KEY", "FILL_ME"),
        ("ENCRYPTION_KEY_PREVIOUS", "CHANGE_ME"),
        ("PRIVACY_KEY", "FILL_ME"),
        ("PRIVACY_KEY_PREVIOUS", "<previous privacy key>"),
    ] {
        let mut env = HashMap::from([(name.to_string(), value.to_string())]);
        if name.starts_with("CALENDLY_") {
            // Real Calendly credentials (no simulator), one of them a placeholder.
            env.insert("CALENDLY_CLIENT_ID".into(), "client-id".into());
            env.entry("CALENDLY_CLIENT_SECRET".into()).or_insert_with(|| "a-real-client-secret".into());
            env.entry("CALENDLY_WEBHOOK_SIGNING_KEY".into()).or_insert_with(|| "a-real-signing-key".into());
        }
        let error = match LocalStack::start(StackOptions { env, ..Default::default() }).await {
            Ok(_) => panic!("{name}={value} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(name), "{name}={value}: {error}");
    }
}

#[tokio::test]
async fn a_token_not_yet_valid_or_from_another_issuer_is_refused() {
    let env = HashMap::from([("JWT_ISSUER".to_string(), "https://crm.velvena.example".to_string())]);
    let app = TestApp::spawn_with(StackOptions { env, ..Default::default() }).await;
    let exp = (Utc::now() + Duration::hours(1)).timestamp();
    let iss = "https://crm.velvena.example";
    let cases = [
        (json!({ "sub": "u", "organization_id": "org-a", "exp": exp, "iss": iss }), 200),
        (json!({ "sub": "u", "organization_id": "org-a", "exp": exp, "iss": iss, "nbf": exp - 60 }), 401),
        (json!({ "sub": "u", "organization_id": "org-a", "exp": exp, "iss": "https://evil.example" }), 401),
        (json!({ "sub": "u", "organization_id": "org-a", "exp": exp }), 401),
    ];
    for (claims, expected) in cases {
        let (status, _) =
            request_with_token(&app, Method::GET, "/calendly/status", &token_with(&app, claims.clone()), None).await;
        assert_eq!(status, expected, "{claims}");
    }
}

async fn a_websocket_stops_receiving_once_its_token_expires(app: TestApp) {
    let org = shared::domain::OrganizationId::new("org-a");
    // A token that expires in ten minutes, and one for a long session.
    let exp = (Utc::now() + Duration::minutes(10)).timestamp();
    let short = token_with(&app, json!({ "sub": "u", "organization_id": "org-a", "exp": exp }));
    let url = format!("ws://{}/ws?token={short}", app.stack.addr);
    let (mut expiring, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut lasting = app.browser("org-a").await;
    app.post("/prospects", "org-a", json!({ "firstname": "Ada" })).await.expect(201);
    lasting.expect_event("prospect:created", std::time::Duration::from_secs(5)).await;

    // Eleven minutes later the short token has expired: its connection gets nothing more,
    // is closed, and its record deleted.
    app.stack.clock.advance(Duration::minutes(11));
    app.post("/prospects", "org-a", json!({ "firstname": "Grace" })).await.expect(201);
    assert_eq!(lasting.expect_event("prospect:created", std::time::Duration::from_secs(5)).await["firstname"], "Grace");
    use futures::StreamExt;
    let mut texts = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(std::time::Duration::from_secs(2), expiring.next()).await {
        match frame {
            tokio_tungstenite::tungstenite::Message::Text(t) => texts.push(t.to_string()),
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(texts.len(), 1, "only the message sent before expiry: {texts:?}");
    assert!(texts[0].contains("Ada"));
    let now = shared::clock::Clock::now(app.stack.clock.as_ref());
    let connections = app.stack.store.connections(&org).await.unwrap();
    assert_eq!(connections.len(), 1, "the expired connection's record is gone");
    assert!(connections[0].expires_at > now);
}

#[test]
fn functions_get_delete_for_the_connections_they_clean_and_secrets_only_when_they_need_them() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    let t: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let functions =
        t["Resources"].as_mapping().unwrap().iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function");
    for (_, f) in functions {
        let name = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let actions: Vec<String> = f["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap().iter())
            .flat_map(|s| s["Action"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
            .collect();
        let has = |a: &str| actions.iter().any(|x| x == a);
        if has("execute-api:ManageConnections") {
            assert!(has("dynamodb:DeleteItem"), "{name} pushes, so it must delete gone connections");
        }
        if name == "ws-disconnect" {
            assert!(!has("secretsmanager:GetSecretValue"), "ws-disconnect needs no secret");
        }
    }
}

crate::helpers::on_both_stores!(a_connect_completes_only_for_the_user_and_organization_that_started_it);
crate::helpers::on_both_stores!(a_calendly_account_active_in_one_organization_cannot_be_connected_to_another);
crate::helpers::on_both_stores!(a_signed_delivery_about_another_calendly_user_is_gone_and_writes_nothing);
crate::helpers::on_both_stores!(forged_and_oversized_deliveries_are_refused_before_the_store_is_read, kind);
crate::helpers::on_both_stores!(inputs_the_table_cannot_hold_are_400s_and_write_nothing);
crate::helpers::on_both_stores!(look_alike_emails_are_one_prospect);
crate::helpers::on_both_stores!(a_websocket_stops_receiving_once_its_token_expires);
