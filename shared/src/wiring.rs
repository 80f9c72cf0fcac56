//! Production wiring from the environment, shared by every function's `main`.

use crate::app::{Adapters, Services};
use crate::calendly::HttpCalendly;
use crate::calendly::client::CalendlySettings;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::push::apigateway::ApiGatewayConnections;
use crate::push::{ConnectionPusher, NoPushEndpoint, Pusher};
use crate::queue::{JobQueue, NoQueue, SqsQueue};
use crate::secrets::{SecretsManager, StartupError, load_config};
use crate::store::{DynamoStore, Store};
use std::sync::Arc;

/// Builds the use cases from the environment and the secret: once per cold start, so the
/// secret, the SDK clients and their connection pools are reused by every invocation.
pub async fn services_from_env() -> Result<Services, StartupError> {
    let started = std::time::Instant::now();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let aws_config_ms = started.elapsed().as_secs_f64() * 1000.0;
    let secrets = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&aws));
    let config = load_config(|name| std::env::var(name).ok(), Some(&secrets)).await?;
    // Logged at every cold start: where init time goes (SDK configuration vs the secret).
    let secret_ms = started.elapsed().as_secs_f64() * 1000.0 - aws_config_ms;
    let store: Arc<dyn Store> =
        Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table_name.clone()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let pusher: Arc<dyn Pusher> = match std::env::var("WEBSOCKET_MANAGEMENT_ENDPOINT").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => {
            let management = aws_sdk_apigatewaymanagement::config::Builder::from(&aws).endpoint_url(endpoint).build();
            let gateway = ApiGatewayConnections::new(aws_sdk_apigatewaymanagement::Client::from_conf(management));
            Arc::new(ConnectionPusher::new(store.clone(), Arc::new(gateway), clock.clone()))
        }
        None => Arc::new(NoPushEndpoint),
    };
    // Only the functions that queue sync jobs are given a queue (and its client).
    let queue: Arc<dyn JobQueue> = match &config.sync_queue_url {
        Some(url) => Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), url.clone())),
        None => Arc::new(NoQueue),
    };
    let services = Services::new(&config, Adapters { store, calendly: calendly_client(&config), pusher, queue, clock });
    tracing::info!(
        aws_config_ms,
        secret_ms,
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "cold start wiring done"
    );
    Ok(services)
}

/// The Calendly HTTP client for this configuration.
pub fn calendly_client(config: &Config) -> Arc<HttpCalendly> {
    Arc::new(HttpCalendly::new(CalendlySettings {
        client_id: config.calendly_client_id.clone(),
        client_secret: config.calendly_client_secret.clone(),
        redirect_uri: config.calendly_redirect_uri.clone(),
        api_base_url: config.calendly_api_base_url.clone(),
        auth_base_url: config.calendly_auth_base_url.clone(),
    }))
}

/// The connection records alone (`ws-disconnect`): the table from `TABLE_NAME`, no secret.
pub async fn connection_store_from_env() -> Result<DynamoStore, StartupError> {
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or(crate::config::ConfigError::Missing("TABLE_NAME"))?;
    Ok(DynamoStore::from_env(table).await)
}
