//! An API Gateway HTTP API (v2) event, as Lambda delivers it, through `lambda_http`'s
//! conversion and the `api` function's router: the path production takes.

// Tests: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use shared::app::{Adapters, Services};
use shared::clock::SystemClock;
use shared::config::Config;
use shared::push::NoPushEndpoint;
use shared::store::MemoryStore;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

fn services() -> Services {
    let env = HashMap::from([
        ("CALENDLY_CLIENT_ID", "id".to_string()),
        ("CALENDLY_CLIENT_SECRET", "secret".to_string()),
        ("CALENDLY_WEBHOOK_SIGNING_KEY", "signing".to_string()),
        ("CALENDLY_REDIRECT_URI", "https://api.velvena.example/auth/calendly/callback".to_string()),
        ("WEBHOOK_BASE_URL", "https://api.velvena.example".to_string()),
        ("ENCRYPTION_KEY", "ab".repeat(32)),
        ("JWT_SECRET", "api-test-jwt-secret-of-at-least-32-bytes".to_string()),
        ("TABLE_NAME", "velvena".to_string()),
    ]);
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let calendly = shared::startup::wiring::calendly_client(&config);
    Services::new(
        &config,
        Adapters {
            store: Arc::new(MemoryStore::new()),
            calendly,
            pusher: Arc::new(NoPushEndpoint),
            queue: Arc::new(shared::queue::NoQueue),
            ticks: Arc::new(shared::queue::NoQueue),
            clock: Arc::new(SystemClock::default()),
        },
    )
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn run(services: &Services, event: &str) -> (u16, serde_json::Value) {
    let request: lambda_http::Request = serde_json::from_str::<LambdaRequest>(event).unwrap().into();
    let response =
        shared::http::serve(shared::http::api_routes(), services.api().clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_status_sample_event_is_answered_by_the_api_router() {
    let services = services();
    let token = services.jwt().issue("user-1", "org-a", chrono::Utc::now() + chrono::Duration::hours(1));
    let event = sample("api-get-calendly-status.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &token);
    let (status, body) = run(&services, &event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["connected"], false);
}

#[tokio::test]
async fn the_status_sample_event_without_a_valid_token_is_a_401() {
    let services = services();
    let (status, body) = run(&services, &sample("api-get-calendly-status.json")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
}
