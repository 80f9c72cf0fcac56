//! Our Calendly requests against Calendly's own OpenAPI document: Prism mocks the API from
//! `calendly/openapi-2023.yaml` (the team's reference folder) and answers any request that
//! breaks the document with an error (`--errors`). A sync job and every other call the product
//! makes run against it; the sync must end (the document's examples repeat one page token
//! forever) and Prism must have logged no violation.

use chrono::{Duration, Utc};
use local_stack::{LocalStack, StackOptions};
use shared::calendly::NewWebhookSubscription;
use shared::domain::{ConnectedAccount, Integration, IntegrationId, OrganizationId, UserId};
use std::collections::HashMap;
use std::process::Stdio;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/calendly/openapi-2023.yaml");
const PRISM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/node_modules/.bin/prism");

/// Prism on a free port, its log in a file; stopped when the returned child is dropped.
async fn start_prism() -> (tokio::process::Child, String, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
    let log = std::env::temp_dir().join(format!("prism-{port}.log"));
    let child = tokio::process::Command::new(PRISM)
        .args(["mock", "--errors", "-h", "127.0.0.1", "-p", &port.to_string(), SPEC])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("Prism is installed in .tools (scripts/install-test-deps) and the reference folder sits beside the checkout");
    for _ in 0..300 {
        if std::fs::read_to_string(&log).unwrap_or_default().contains("Prism is listening") {
            return (child, format!("http://127.0.0.1:{port}"), log);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Prism did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_calendly_requests_follow_calendlys_openapi_document() {
    let (_prism, url, log) = start_prism().await;
    let env = HashMap::from([
        ("CALENDLY_CLIENT_ID".to_string(), "prism-client".to_string()),
        ("CALENDLY_CLIENT_SECRET".to_string(), "prism-client-secret-value".to_string()),
        ("CALENDLY_WEBHOOK_SIGNING_KEY".to_string(), "prism-signing-key-value".to_string()),
        ("CALENDLY_API_BASE_URL".to_string(), url.clone()),
        ("CALENDLY_AUTH_BASE_URL".to_string(), url.clone()),
    ]);
    let stack = LocalStack::start(StackOptions { env, ..Default::default() }).await.unwrap();
    let services = &stack.services;
    let org = OrganizationId::new("org-prism");
    // Connected as if through OAuth (the token endpoint is not in the document).
    let now = Utc::now();
    let account = ConnectedAccount {
        id: IntegrationId::new("int-prism"),
        organization_id: org.clone(),
        connected_by: UserId::new("u"),
        calendly_user_uri: "https://api.calendly.com/users/AAAAAAAAAAAAAAAA".into(),
        calendly_organization_uri: "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA".into(),
        email: "host@example.com".into(),
        name: "Host".into(),
        scheduling_url: None,
    };
    let mut integration =
        Integration { next_sync_at: None, ..Integration::connected(account, now + Duration::hours(2), now) };
    integration.access_token = services.sealer().seal(
        "prism-access-token",
        &shared::engine::tokens::seal_context(&integration, shared::engine::tokens::SealPurpose::AccessToken),
    );
    integration.refresh_token = services.sealer().seal(
        "prism-refresh-token",
        &shared::engine::tokens::seal_context(&integration, shared::engine::tokens::SealPurpose::RefreshToken),
    );
    let integration = services.store().save_connected_integration(integration).await.unwrap();

    // The sync, as a job: it ends (on the examples' repeated page token) instead of looping.
    services.jobs().request_sync(&org, shared::domain::SyncTrigger::Manual).await.unwrap();
    let job = stack.wait_for_sync("org-prism", std::time::Duration::from_secs(60)).await.expect("the sync job ends");
    assert!(job.report.events_seen >= 1, "{job:?}");
    let bookings = services.store().list_bookings(&org, 10, None).await.unwrap();
    assert!(!bookings.items.is_empty(), "the document's invitee example was recorded");

    // Every other call the product makes.
    let api = services.calendly().as_ref();
    let token = "prism-access-token";
    api.current_user(token).await.expect("GET /users/me");
    let user = shared::calendly::EventTypeOwner::User(integration.calendly_user_uri.clone());
    api.list_event_types(token, &user, None).await.expect("GET /event_types?user=");
    let page = Some("sNjq4TvMDfUHEl7zHRR0k0E1PCEJWvdi");
    api.list_event_types(token, &user, page).await.expect("GET /event_types?page_token=");
    let org_uri = integration.calendly_organization_uri.as_str();
    let everyone = shared::calendly::EventTypeOwner::Organization(org_uri.to_string());
    api.list_event_types(token, &everyone, None).await.expect("GET /event_types?organization=");
    let user_uri = Some(integration.calendly_user_uri.as_str());
    api.list_webhook_subscriptions(token, org_uri, user_uri, None).await.expect("user scope");
    api.list_webhook_subscriptions(token, org_uri, None, None).await.expect("organization scope");
    api.list_webhook_subscriptions(token, org_uri, None, page).await.expect("a second page");
    let request = NewWebhookSubscription {
        url: "https://api.velvena.example/calendly/webhook/int-prism".into(),
        organization_uri: org_uri.into(),
        user_uri: integration.calendly_user_uri.clone(),
        organization_wide: false,
        events: shared::calendly::WEBHOOK_EVENTS.to_vec(),
    };
    let created = api.create_webhook_subscription(token, &request).await.expect("POST /webhook_subscriptions");
    api.delete_webhook_subscription(token, &created.uri).await.expect("DELETE /webhook_subscriptions/{uuid}");
    // Organization scope: the role check, the organization's events and its subscription.
    let memberships = api.organization_memberships(token, org_uri, user_uri, None).await;
    assert!(!memberships.expect("GET /organization_memberships").collection.is_empty());
    api.organization_memberships(token, org_uri, None, page).await.expect("GET /organization_memberships page 2");
    let organization_events = shared::calendly::EventQuery {
        user_uri: integration.calendly_user_uri.clone(),
        organization_uri: Some(org_uri.to_string()),
        min_start_time: chrono::Utc::now() - chrono::Duration::days(30),
        max_start_time: chrono::Utc::now() + chrono::Duration::days(30),
        page_token: None,
    };
    api.list_scheduled_events(token, &organization_events).await.expect("GET /scheduled_events?organization=");
    let mut events = shared::calendly::WEBHOOK_EVENTS.to_vec();
    events.push(shared::calendly::ROUTING_FORM_EVENT);
    let organization_wide = NewWebhookSubscription { organization_wide: true, events, ..request };
    api.create_webhook_subscription(token, &organization_wide)
        .await
        .expect("POST /webhook_subscriptions (organization)");
    api.get_scheduled_event(token, "GBGBDCAADAEDCRZ2").await.expect("GET /scheduled_events/{uuid}");
    api.get_invitee(token, "GBGBDCAADAEDCRZ2", "AAAAAAAAAAAAAAAA").await.expect("GET …/invitees/{invitee_uuid}");
    // No-shows from the CRM.
    let invitee = "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA";
    let mark = api.create_invitee_no_show(token, invitee).await.expect("POST /invitee_no_shows");
    api.delete_invitee_no_show(token, &mark.uri).await.expect("DELETE /invitee_no_shows/{uuid}");
    // Routing forms and their submissions.
    let forms = api.list_routing_forms(token, org_uri, None).await.expect("GET /routing_forms");
    let form = forms.collection.first().expect("the document's example form").uri.clone();
    api.get_routing_form(token, &form).await.expect("GET /routing_forms/{uuid}");
    let submissions = api.list_routing_form_submissions(token, &form, None).await;
    submissions.expect("GET /routing_form_submissions?form=&sort=created_at:desc");

    let prism_log = std::fs::read_to_string(&log).unwrap();
    let violations: Vec<&str> = prism_log.lines().filter(|l| l.contains("Violation")).collect();
    assert!(violations.is_empty(), "requests that break Calendly's document:\n{}", violations.join("\n"));
    assert!(prism_log.contains("/scheduled_events"), "the sync went through Prism");
}
