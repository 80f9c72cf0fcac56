use crate::helpers::TestApp;
use reqwest::Method;

const PROTECTED: [(&str, &str); 14] = [
    ("POST", "/calendly/connect"),
    ("POST", "/auth/calendly/callback"),
    ("GET", "/calendly/status"),
    ("PATCH", "/calendly/settings"),
    ("POST", "/calendly/sync"),
    ("GET", "/calendly/events"),
    ("POST", "/calendly/disconnect"),
    ("GET", "/prospects"),
    ("POST", "/prospects"),
    ("GET", "/prospects/some-id"),
    ("GET", "/notifications"),
    ("POST", "/notifications/some-id/read"),
    ("GET", "/organization"),
    ("PATCH", "/organization"),
];

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::spawn().await;
    let reply = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(reply.expect(200)["status"], "ok");
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_token_with_401() {
    let app = TestApp::spawn().await;
    for (method, path) in PROTECTED {
        let reply = app.request(method.parse().unwrap(), path, None, None).await;
        assert_eq!(reply.status.as_u16(), 401, "{method} {path}");
        assert_eq!(reply.error_code(), "unauthorized", "{method} {path}");
    }
}

#[tokio::test]
async fn garbage_forged_and_expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let forged = shared::auth::JwtVerifier::new("not-our-secret").issue(
        "u",
        "org-a",
        chrono::Utc::now() + chrono::Duration::hours(1),
    );
    let expired = app.stack.services.jwt().issue("u", "org-a", chrono::Utc::now() - chrono::Duration::hours(2));
    for token in ["garbage", "a.b.c", forged.as_str(), expired.as_str()] {
        let reply = app.http.get(app.url("/calendly/status")).bearer_auth(token).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 401, "token {token}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn unknown_routes_answer_a_json_404() {
    let app = TestApp::spawn().await;
    let reply = app.get("/nope", "org-a").await;
    assert_eq!(reply.status.as_u16(), 404);
    assert_eq!(reply.error_code(), "not_found");
}

/// A token signed with our secret, with any claims.
fn signed(claims: serde_json::Value) -> String {
    shared::auth::hs256::install();
    let key = jsonwebtoken::EncodingKey::from_secret(local_stack::LOCAL_JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn refusals_say_what_is_wrong_in_the_products_words() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let ten_years =
        signed(serde_json::json!({ "sub": "u", "organization_id": "org-a", "iat": now, "exp": now + 315_360_000 }));
    let no_iat = signed(serde_json::json!({ "sub": "u", "organization_id": "org-a", "exp": now + 30 * 86_400 }));
    let expired = app.stack.services.jwt().issue("u", "org-a", chrono::Utc::now() - chrono::Duration::hours(2));
    let cases = [
        ("garbage", "the token is not a valid CRM token"),
        ("a.b.c", "the token is not a valid CRM token"),
        (expired.as_str(), "the token has expired"),
        (ten_years.as_str(), "the token's lifetime is longer than 24 hours"),
        (no_iat.as_str(), "the token's lifetime is longer than 24 hours"),
    ];
    for (token, message) in cases {
        let reply = app.http.get(app.url("/calendly/status")).bearer_auth(token).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 401, "token {token}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(body["error"]["message"], message, "token {token}");
    }
    // A day-long token, with or without `iat`, is fine.
    let day = signed(serde_json::json!({ "sub": "u", "organization_id": "org-a", "exp": now + 86_000 }));
    let reply = app.http.get(app.url("/calendly/status")).bearer_auth(day).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

#[tokio::test]
async fn the_callback_page_shows_only_its_own_text_for_a_refusal() {
    let app = TestApp::spawn().await;
    let spoof = "Votre compte est suspendu, appelez le 08 99 99 99 99";
    let url = app.url("/auth/calendly/callback");
    for error in ["access_denied", "made_up<b>"] {
        let reply = app.http.get(&url).query(&[("error", error), ("error_description", spoof)]).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 400);
        let page = reply.text().await.unwrap();
        assert!(!page.contains("suspendu") && !page.contains("made_up"), "{page}");
        assert!(page.contains("Calendly"), "{page}");
    }
    let page = app.http.get(&url).query(&[("error", "access_denied")]).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("L'accès à Calendly a été refusé"), "{page}");
}

#[tokio::test]
async fn every_answer_names_the_correlation_id_of_its_log_lines() {
    let app = TestApp::spawn().await;
    let given = app.http.get(app.url("/health")).header("x-request-id", "req-42_abc").send().await.unwrap();
    assert_eq!(given.headers()["x-correlation-id"], "req-42_abc", "the caller's plausible id");
    let made = app.http.get(app.url("/health")).header("x-request-id", "not an id; drop table").send().await.unwrap();
    let id = made.headers()["x-correlation-id"].to_str().unwrap().to_string();
    assert!(id.len() == 36 && id != "not an id", "a new one: {id}");
    let other = app.http.get(app.url("/health")).send().await.unwrap();
    assert_ne!(other.headers()["x-correlation-id"].to_str().unwrap(), id, "one per request");
}
