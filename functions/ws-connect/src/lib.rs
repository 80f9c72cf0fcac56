//! The `$connect` handler of the WebSocket API, at the level of API Gateway's event: the
//! Lambda function and the local stack both run exactly this. The same function answers the
//! `$default` route: this API only pushes, so client frames are acknowledged and dropped.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::app::Connector;

/// Accepts the connection (200) when `?token=` is a valid CRM JWT, refuses it (401) otherwise.
pub async fn handle(connector: &Connector, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    if event.request_context.route_key.as_deref() == Some("$default") {
        return response(200);
    }
    // Browsers can't set headers on a WebSocket: the token comes in the query string.
    let token = event.query_string_parameters.first("token");
    let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
    let status = match connector.connect(token, connection_id).await {
        Ok(_) => 200,
        Err(e) => {
            // The HTTP API's mapping: 401 for a bad token, 400, 503 when the store is busy…
            let (status, code, message, _) = shared::http::error::answer_of(&e);
            tracing::info!(status = status.as_u16(), code = code.as_str(), %message, "WebSocket connection refused");
            i64::from(status.as_u16())
        }
    };
    response(status)
}

/// A bodiless proxy response.
pub fn response(status: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response
}
