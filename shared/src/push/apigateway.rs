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
            Err(e) => Err(PostError::Failed(Box::new(e))),
        }
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), PostError> {
        match self.client.delete_connection().connection_id(connection_id).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_gone_exception() || e.raw().status().as_u16() == 410 => {
                Err(PostError::Gone)
            }
            Err(e) => Err(PostError::Failed(Box::new(e))),
        }
    }
}
