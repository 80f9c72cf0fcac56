//! The AWS SDK over the process's one HTTPS client (`shared::https`): what reaches the wire and
//! what comes back, when DynamoDB answers an error or nobody answers at all. (Every other
//! DynamoDB test runs through the same client against moto, whose answers the SDK checks by
//! their CRC32 header: bodies and headers come back intact.)

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use shared::domain::OrganizationId;
use shared::store::{DynamoStore, OrganizationStore, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A DynamoDB stand-in that throttles every request, counting them and keeping the last
/// request's target header.
async fn throttling_dynamodb() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Option<String>>>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(std::sync::Mutex::new(None));
    let (count, seen) = (attempts.clone(), target.clone());
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let (count, seen) = (count.clone(), seen.clone());
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            *seen.lock().unwrap() =
                headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(String::from);
            (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.0")],
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, attempts, target)
}

#[tokio::test]
async fn a_throttled_request_is_retried_by_the_sdk_then_reported_as_throttling() {
    let (endpoint, attempts, target) = throttling_dynamodb().await;
    let store = DynamoStore::new(local_stack::dynamo::client(Some(&endpoint), None, None), "velvena");

    let answer = store.get_organization(&OrganizationId::new("org-a")).await;

    assert!(matches!(answer, Err(StoreError::Throttled)), "{answer:?}");
    // The SDK's standard retry policy: 3 attempts, each one sent through the shared client.
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(target.lock().unwrap().as_deref(), Some("DynamoDB_20120810.GetItem"));
}

#[tokio::test]
async fn nobody_listening_is_unavailable_not_a_corrupt_answer() {
    // The discard port: nothing listens there.
    let store = DynamoStore::new(local_stack::dynamo::client(Some("http://127.0.0.1:9"), None, None), "velvena");

    let answer = store.get_organization(&OrganizationId::new("org-a")).await;

    match answer {
        Err(StoreError::Unavailable(detail)) => assert!(detail.contains("dispatch failure"), "{detail}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
