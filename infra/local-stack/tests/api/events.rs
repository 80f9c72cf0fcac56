//! The sample events in `events/` run through the same handlers the Lambda functions run.

use crate::helpers::TestApp;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use shared::clock::Clock;
use shared::domain::OrganizationId;

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("the sample event exists")
}

#[tokio::test]
async fn the_connect_and_disconnect_sample_events_store_and_remove_the_connection() {
    let app = TestApp::spawn().await;
    let org = OrganizationId::new("org-a");
    let connect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(
        &sample("ws-connect.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &app.token("org-a")),
    )
    .unwrap();
    assert_eq!(ws_connect::handle(app.stack.services.connector(), connect).await.status_code, 200);
    let live = app.stack.store.live_connections(&org, chrono::Utc::now()).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].connection_id, "Kx2bWdHTiGYCFuA=");

    let disconnect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(&sample("ws-disconnect.json")).unwrap();
    assert_eq!(ws_disconnect::handle(app.stack.services.store().as_ref(), disconnect).await.status_code, 200);
    assert!(app.stack.store.live_connections(&org, chrono::Utc::now()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_connect_sample_event_with_its_placeholder_token_is_refused() {
    let app = TestApp::spawn().await;
    let connect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(&sample("ws-connect.json")).unwrap();
    assert_eq!(ws_connect::handle(app.stack.services.connector(), connect).await.status_code, 401);
    let live = app.stack.store.live_connections(&OrganizationId::new("org-a"), chrono::Utc::now()).await.unwrap();
    assert!(live.is_empty());
}

/// An HTTP API v2 sample event, through `lambda_http`'s conversion and the function's router.
async fn run_http_event(app: &TestApp, function: &str, event: &str) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let request: lambda_http::Request =
        serde_json::from_str::<lambda_http::request::LambdaRequest>(event).unwrap().into();
    let router = shared::http::function_router(function, &app.stack.services).unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_oauth_callback_and_sync_sample_events_connect_and_sync() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", crate::helpers::in_days(2));
    let (code, state) = app.authorize("org-a", &host).await;
    let callback = sample("oauth-callback.json")
        .replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &app.token("org-a"))
        .replace("REPLACED-BY-TESTS-WITH-A-CODE", &code)
        .replace("REPLACED-BY-TESTS-WITH-A-STATE", &state);
    let (status, body) = run_http_event(&app, "oauth-callback", &callback).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sync"]["state"], "queued", "the callback queues the initial sync and answers at once");
    assert_eq!(app.wait_for_sync("org-a").await["bookings_new"], 1);

    let sync = sample("sync-manual.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &app.token("org-a"));
    let (status, body) = run_http_event(&app, "sync-manual", &sync).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["trigger"], "manual");
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["bookings_new"], 0);
    assert_eq!(ended["events_seen"], 1);
}

#[tokio::test]
async fn the_scheduled_sample_event_runs_the_due_syncs() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", crate::helpers::in_days(2));
    app.advance_clocks(chrono::Duration::minutes(31));
    // What `sync-scheduled` receives from EventBridge, through the function's own handler.
    let event: serde_json::Value = serde_json::from_str(&sample("sync-scheduled.json")).unwrap();
    let run =
        sync_scheduled::handle(app.stack.services.scheduler(), event, crate::helpers::tick_deadline()).await.unwrap();
    assert_eq!(run["queued"], 1);
    assert_eq!(app.wait_for_sync("org-a").await["trigger"], "scheduled");
    assert_eq!(app.prospects("org-a").await.len(), 1);
}

#[tokio::test]
async fn the_handed_on_tick_sample_event_carries_its_part_on_and_reports_the_malformed_record() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", crate::helpers::in_days(2));
    app.advance_clocks(chrono::Duration::minutes(31));
    // What the tick queue delivers to `sync-scheduled`: the rest names org-a's part, as due now.
    let mut event: serde_json::Value = serde_json::from_str(&sample("sync-scheduled-handed-on.json")).unwrap();
    let mut rest: serde_json::Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    rest["partition"] = serde_json::json!(shared::store::DuePartition::of(&OrganizationId::new("org-a"), 16));
    rest["tick_at"] = serde_json::json!(app.stack.clock.now());
    event["Records"][0]["body"] = serde_json::json!(rest.to_string());
    let answer =
        sync_scheduled::handle(app.stack.services.scheduler(), event, crate::helpers::tick_deadline()).await.unwrap();
    let failures: Vec<&str> =
        answer["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap()).collect();
    assert_eq!(failures, ["b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e"], "only the malformed one comes back: {answer}");
    assert_eq!(app.wait_for_sync("org-a").await["trigger"], "scheduled", "the rest handed org-a out");
    assert_eq!(app.prospects("org-a").await.len(), 1);
}

#[tokio::test]
async fn the_sync_worker_sample_event_runs_its_job_and_reports_the_malformed_record() {
    let app = TestApp::spawn().await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", crate::helpers::in_days(2));
    // A job recorded as queued whose message is the sample's first record.
    let services = &app.stack.services;
    let org = OrganizationId::new("org-a");
    let integration = services.store().get_integration(&org).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let (start, end) = services.engine().window_at(now);
    let job = shared::domain::SyncJob::queued(
        org.clone(),
        integration.id,
        shared::domain::SyncTrigger::Manual,
        start,
        end,
        now,
    );
    services.store().start_sync_job(&job, now).await.unwrap();

    let event: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(&sample("sync-worker.json").replace("REPLACED-BY-TESTS-WITH-A-JOB-ID", &job.id)).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let response = sync_worker::handle(services.worker(), event, deadline).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["2e1424d4-f796-459a-8184-9c92662be6da"], "only the malformed record comes back");
    let ended = services.store().get_sync_job(&org).await.unwrap().unwrap();
    assert_eq!(ended.state, shared::domain::SyncJobState::Succeeded);
    assert_eq!(ended.report.bookings_new, 1);
}
