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
