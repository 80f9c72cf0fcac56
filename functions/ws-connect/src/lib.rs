//! The `$connect` handler of the WebSocket API, at the level of API Gateway's event: the
//! Lambda function and the local stack both run exactly this. The same function answers the
//! `$default` route: this API only pushes, so client frames are acknowledged and dropped.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::app::{AppError, Services};

/// Accepts the connection (200) when `?token=` is a valid CRM JWT, refuses it (401) otherwise.
pub async fn handle(services: &Services, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    if event.request_context.route_key.as_deref() == Some("$default") {
        return response(200);
    }
    // Browsers can't set headers on a WebSocket: the token comes in the query string.
    let token = event.query_string_parameters.first("token");
    let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
    let status = match services.ws_connect(token, connection_id).await {
        Ok(_) => 200,
        Err(AppError::Unauthorized(reason)) => {
            tracing::info!(%reason, "WebSocket connection refused");
            401
        }
        Err(AppError::BadRequest { .. }) => 400,
        Err(e) => {
            tracing::error!(error = %e, "WebSocket connection failed");
            500
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
