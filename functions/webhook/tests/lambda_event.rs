//! A real Calendly delivery as API Gateway hands it to Lambda (body base64-encoded), through
//! `lambda_http` and the webhook router: the signature is checked over the decoded raw bytes.

// Tests: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use http_body_util::BodyExt;
use lambda_http::request::LambdaRequest;
use shared::app::{Adapters, Services};
use shared::clock::SystemClock;
use shared::config::Config;
use shared::domain::{Integration, IntegrationId, OrganizationId, UserId};
use shared::engine::tokens::seal_context;
use shared::push::NoPushEndpoint;
use shared::store::{IntegrationStore, MemoryStore, ProspectStore};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

const SIGNING_KEY: &str = "app-signing-key";

async fn services_with_integration() -> (Services, Arc<MemoryStore>) {
    let env = HashMap::from([
        ("CALENDLY_CLIENT_ID", "id".to_string()),
        ("CALENDLY_CLIENT_SECRET", "secret".to_string()),
        ("CALENDLY_WEBHOOK_SIGNING_KEY", SIGNING_KEY.to_string()),
        ("CALENDLY_REDIRECT_URI", "https://api.velvena.example/auth/calendly/callback".to_string()),
        ("WEBHOOK_BASE_URL", "https://api.velvena.example".to_string()),
        ("ENCRYPTION_KEY", "cd".repeat(32)),
        ("JWT_SECRET", "webhook-test-jwt-secret-of-32-bytes".to_string()),
        ("TABLE_NAME", "velvena".to_string()),
    ]);
    let config = Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let services = Services::new(
        &config,
        Adapters {
            store: store.clone(),
            calendly: shared::startup::wiring::calendly_client(&config),
            pusher: Arc::new(NoPushEndpoint),
            queue: Arc::new(shared::queue::NoQueue),
            ticks: Arc::new(shared::queue::NoQueue),
            clock: Arc::new(SystemClock::default()),
        },
    );
    let now = chrono::Utc::now();
    let account = shared::domain::ConnectedAccount {
        id: IntegrationId::new("int-1"),
        organization_id: OrganizationId::new("org-a"),
        connected_by: UserId::new("user-1"),
        calendly_user_uri: "https://api.calendly.com/users/f2f32253-5f99-4d22-8950-51f86535e227".into(),
        calendly_organization_uri: "https://api.calendly.com/organizations/o".into(),
        email: "host@example.com".into(),
        name: "Host".into(),
        scheduling_url: None,
    };
    let mut integration = Integration {
        webhook_active: true,
        next_sync_at: None,
        ..Integration::connected(account, now + chrono::Duration::hours(2), now)
    };
    integration.access_token =
        services.sealer().seal("access", &seal_context(&integration, shared::engine::tokens::SealPurpose::AccessToken));
    integration.refresh_token = services
        .sealer()
        .seal("refresh", &seal_context(&integration, shared::engine::tokens::SealPurpose::RefreshToken));
    store.save_connected_integration(integration).await.unwrap();
    (services, store)
}

fn event_with_signature(signature: Option<&str>) -> lambda_http::Request {
    let raw =
        std::fs::read_to_string(format!("{}/../../events/webhook-invitee-created.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let body = base64::engine::general_purpose::STANDARD.decode(event["body"].as_str().unwrap()).unwrap();
    let header = signature.map(String::from).unwrap_or_else(|| {
        shared::calendly::webhook_signature::signature_header(SIGNING_KEY, chrono::Utc::now().timestamp(), &body)
    });
    event["headers"]["calendly-webhook-signature"] = header.into();
    serde_json::from_value::<LambdaRequest>(event).unwrap().into()
}

async fn run(services: &Services, request: lambda_http::Request) -> (u16, serde_json::Value) {
    let response = shared::http::serve(shared::http::webhook_routes(), services.webhooks().clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_base64_encoded_delivery_is_verified_over_its_raw_bytes_and_processed() {
    let (services, store) = services_with_integration().await;
    let (status, body) = run(&services, event_with_signature(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "processed");
    let prospect = store.find_prospect_by_email(&OrganizationId::new("org-a"), "invitee@example.com").await.unwrap();
    assert_eq!(prospect.unwrap().source, "calendly");
}

#[tokio::test]
async fn the_captured_signature_is_refused_as_stale() {
    let (services, store) = services_with_integration().await;
    // The real header from 2023: right scheme, but far too old to be accepted now.
    let captured = "t=1703438858,v1=7bff2692ea0d43207e689e22b16202e63f93d271b53bbbe4adb4d5ac34955159";
    let (status, _) = run(&services, event_with_signature(Some(captured))).await;
    assert_eq!(status, 401);
    assert!(
        store.find_prospect_by_email(&OrganizationId::new("org-a"), "invitee@example.com").await.unwrap().is_none()
    );
}

/// What the invocations of this test process recorded, as the function writes it (EMF).
fn emf_documents() -> Vec<serde_json::Value> {
    shared::telemetry::metrics::registry().take_documents("webhook", chrono::Utc::now().timestamp_millis())
}

#[tokio::test]
async fn a_delivery_is_counted_by_its_answer_with_its_lag_and_the_booking_it_made() {
    let (services, _) = services_with_integration().await;
    let (status, _) = run(&services, event_with_signature(None)).await;
    assert_eq!(status, 200);
    let forged = "t=1703438858,v1=7bff2692ea0d43207e689e22b16202e63f93d271b53bbbe4adb4d5ac34955159";
    assert_eq!(run(&services, event_with_signature(Some(forged))).await.0, 401);
    let documents = emf_documents();
    let of = |outcome: &str| documents.iter().find(|d| d["Outcome"] == outcome).cloned().unwrap_or_default();
    assert!(of("processed")["WebhookDeliveries"].as_f64().unwrap_or(0.0) >= 1.0, "{documents:?}");
    assert!(of("rejected")["WebhookDeliveries"].as_f64().unwrap_or(0.0) >= 1.0, "{documents:?}");
    assert!(of("created")["Bookings"].as_f64().unwrap_or(0.0) >= 1.0, "{documents:?}");
    let plain = documents.iter().find(|d| d.get("Outcome").is_none()).unwrap();
    assert!(!plain["WebhookLag"].as_array().unwrap().is_empty(), "the event's lag: {plain}");
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Velvena/Calendly");
        assert!(document.get("organization_id").is_none(), "never an organization");
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(document.get(metric["Name"].as_str().unwrap()).is_some(), "{document}");
        }
    }
}
