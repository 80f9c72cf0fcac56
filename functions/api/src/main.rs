//! The `api` Lambda function: serves `shared::http::api_routes` behind API Gateway (HTTP API).

// One invocation at a time per container: one thread is enough, and starts faster and smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init(true);
    // Init builds nothing: the first request reads the secret and builds the app.
    lambda_http::run(shared::startup::wiring::LazyHttpApp::new("api", shared::http::api_routes)).await
}
