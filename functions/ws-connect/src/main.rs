//! The `ws-connect` Lambda function (`$connect` route of the WebSocket API).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};

// One invocation at a time per container: one thread is enough, and starts faster and smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first connection reads the secret and builds the connector.
    let connector = &shared::startup::wiring::Lazy::<shared::app::Connector>::for_function("ws-connect");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        let (connector, _) = connector.get().await.map_err(Box::new)?;
        let answer = ws_connect::handle(&connector, event.payload).await;
        shared::telemetry::metrics::flush("ws-connect");
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
