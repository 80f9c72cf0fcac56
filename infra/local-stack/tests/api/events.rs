//! The sample events in `events/` run through the same handlers the Lambda functions run.

use crate::helpers::TestApp;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
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
    assert_eq!(ws_connect::handle(&app.stack.services, connect).await.status_code, 200);
    let live = app.stack.store.live_connections(&org, chrono::Utc::now()).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].connection_id, "Kx2bWdHTiGYCFuA=");

    let disconnect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(&sample("ws-disconnect.json")).unwrap();
    assert_eq!(ws_disconnect::handle(&app.stack.services, disconnect).await.status_code, 200);
    assert!(app.stack.store.live_connections(&org, chrono::Utc::now()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_connect_sample_event_with_its_placeholder_token_is_refused() {
    let app = TestApp::spawn().await;
    let connect: ApiGatewayWebsocketProxyRequest = serde_json::from_str(&sample("ws-connect.json")).unwrap();
    assert_eq!(ws_connect::handle(&app.stack.services, connect).await.status_code, 401);
    let live = app.stack.store.live_connections(&OrganizationId::new("org-a"), chrono::Utc::now()).await.unwrap();
    assert!(live.is_empty());
}
