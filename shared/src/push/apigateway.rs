//! The `ConnectionGateway` adapter over `aws-sdk-apigatewaymanagement`.

use super::{ConnectionGateway, PostError};
use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

/// API Gateway's `@connections` management API.
#[derive(Clone, Debug)]
pub struct ApiGatewayConnections {
    client: Client,
}

impl ApiGatewayConnections {
    /// An adapter over a configured client (its endpoint is the WebSocket API's stage URL).
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client for `endpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`),
    /// with credentials and region from the environment.
    pub async fn from_env(endpoint: &str) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared).endpoint_url(endpoint).build();
        Self::new(Client::from_conf(config))
    }
}

#[async_trait]
impl ConnectionGateway for ApiGatewayConnections {
    async fn post_to_connection(&self, connection_id: &str, payload: &[u8]) -> Result<(), PostError> {
        let result =
            self.client.post_to_connection().connection_id(connection_id).data(Blob::new(payload)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_gone_exception() || e.raw().status().as_u16() == 410 => {
                Err(PostError::Gone)
            }
            Err(e) => Err(PostError::Failed(aws_sdk_apigatewaymanagement::error::DisplayErrorContext(e).to_string())),
        }
    }
}
