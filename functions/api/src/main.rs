//! The `api` Lambda function: serves `shared::http::api_routes` behind API Gateway (HTTP API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init(true);
    let services = shared::wiring::services_from_env().await?;
    lambda_http::run(shared::http::serve(shared::http::api_routes(), services)).await
}
