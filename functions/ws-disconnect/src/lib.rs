//! The `$disconnect` handler of the WebSocket API, at the level of API Gateway's event.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::store::ConnectionStore;

/// Forgets the connection. Always 200: API Gateway ignores the answer, and a stale record
/// left by a failure expires with its `ttl`.
pub async fn handle(
    connections: &dyn ConnectionStore,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let connection_id = event.request_context.connection_id.as_deref().unwrap_or_default();
    if let Err(e) = shared::app::forget_connection(connections, connection_id).await {
        tracing::warn!(%connection_id, error = %e, "could not remove the connection; its ttl will");
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response
}
