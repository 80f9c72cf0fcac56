//! The `oauth-callback` Lambda function: serves `shared::http::oauth_routes` behind API Gateway (HTTP API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init(true);
    let services = shared::wiring::services_from_env().await?;
    lambda_http::run(shared::http::serve(shared::http::oauth_routes(), services)).await
}
