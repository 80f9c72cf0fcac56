//! The local stand-in for API Gateway's WebSocket API: it accepts browsers on
//! `/ws?token=<JWT>`, runs the same `$connect`/`$disconnect` handlers as the Lambda functions
//! with API Gateway events, and serves the `@connections` management API that the real
//! `aws-sdk-apigatewaymanagement` client is pointed at. A closed connection answers 410.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use shared::app::Connector;
use shared::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where the management API is mounted; `WEBSOCKET_MANAGEMENT_ENDPOINT` is `{base}{this}`.
pub const MANAGEMENT_PATH: &str = "/_aws/websocket";

enum Outbound {
    Text(String),
    Close,
}

#[derive(Clone)]
struct Gateway {
    /// `ws-connect`'s capability.
    connector: Connector,
    /// `ws-disconnect`'s store.
    disconnections: Arc<dyn Store>,
    connections: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Outbound>>>>,
}

impl Gateway {
    fn sender(&self, id: &str) -> Option<mpsc::UnboundedSender<Outbound>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

/// The WebSocket endpoint and the management API, over the same use cases as the functions.
pub fn routes(connector: Connector, disconnections: Arc<dyn Store>) -> Router {
    let gateway = Gateway { connector, disconnections, connections: Arc::default() };
    Router::new()
        .route("/ws", get(accept))
        .route(
            &format!("{MANAGEMENT_PATH}/@connections/{{id}}"),
            post(post_to_connection).get(get_connection).delete(delete_connection),
        )
        .with_state(gateway)
}

/// An API Gateway WebSocket event, as API Gateway sends it to the route's Lambda.
fn event(
    route: &str,
    event_type: &str,
    connection_id: &str,
    query: &HashMap<String, String>,
) -> ApiGatewayWebsocketProxyRequest {
    let value = json!({
        "headers": { "Host": "127.0.0.1" },
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": query.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect::<HashMap<_, _>>(),
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": connection_id,
            "requestTime": chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": "local",
            "connectedAt": chrono::Utc::now().timestamp_millis(),
            "requestTimeEpoch": chrono::Utc::now().timestamp_millis(),
            "requestId": connection_id,
            "domainName": "127.0.0.1",
            "connectionId": connection_id,
            "apiId": "local",
            "identity": { "sourceIp": "127.0.0.1" },
        },
        "isBase64Encoded": false,
    });
    serde_json::from_value(value).expect("a well-formed API Gateway WebSocket event")
}

fn new_connection_id() -> String {
    // API Gateway ids look like `L0SM9cOFvHcCIhw=`; ours stay URL-safe.
    shared::crypto::random_token(12)
}

async fn accept(
    State(gateway): State<Gateway>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let connection_id = new_connection_id();
    let answer = ws_connect::handle(&gateway.connector, event("$connect", "CONNECT", &connection_id, &query)).await;
    if answer.status_code != 200 {
        let status = StatusCode::from_u16(answer.status_code as u16).unwrap_or(StatusCode::FORBIDDEN);
        return (status, "connection refused").into_response();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    gateway.connections.lock().unwrap_or_else(|e| e.into_inner()).insert(connection_id.clone(), tx);
    upgrade.on_upgrade(move |socket| serve_connection(gateway, connection_id, socket, rx))
}

async fn serve_connection(
    gateway: Gateway,
    connection_id: String,
    socket: WebSocket,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            message = outbound.recv() => match message {
                Some(Outbound::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            frame = incoming.next() => match frame {
                // This API only pushes; client frames ($default route) are read and dropped.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    gateway.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&connection_id);
    let disconnect = event("$disconnect", "DISCONNECT", &connection_id, &HashMap::new());
    ws_disconnect::handle(gateway.disconnections.as_ref(), disconnect).await;
}

fn gone() -> Response {
    (StatusCode::GONE, [("x-amzn-errortype", "GoneException")], axum::Json(json!({ "message": "Gone" })))
        .into_response()
}

async fn post_to_connection(State(gateway): State<Gateway>, Path(id): Path<String>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    match gateway.sender(&id) {
        Some(tx) if tx.send(Outbound::Text(text)).is_ok() => StatusCode::OK.into_response(),
        _ => gone(),
    }
}

async fn get_connection(State(gateway): State<Gateway>, Path(id): Path<String>) -> Response {
    match gateway.sender(&id) {
        Some(_) => axum::Json(json!({ "connectedAt": chrono::Utc::now(), "identity": { "sourceIp": "127.0.0.1" } }))
            .into_response(),
        None => gone(),
    }
}

async fn delete_connection(State(gateway): State<Gateway>, Path(id): Path<String>) -> Response {
    match gateway.sender(&id) {
        Some(tx) => {
            let _ = tx.send(Outbound::Close);
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}
