//! The `ws-disconnect` Lambda function (`$disconnect` route of the WebSocket API). It touches
//! the connection records only: no secret, no other client.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};

// One invocation at a time per container: one thread is enough, and starts faster and smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first disconnect builds the table's client.
    let store = &tokio::sync::OnceCell::new();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        let store = store.get_or_try_init(shared::startup::wiring::connection_store_from_env).await?;
        let answer = ws_disconnect::handle(store, event.payload).await;
        shared::telemetry::metrics::flush("ws-disconnect");
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
