//! Production wiring from the environment, shared by every function's `main`.

use crate::calendly::HttpCalendly;
use crate::calendly::client::CalendlySettings;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::push::apigateway::ApiGatewayConnections;
use crate::push::{ConnectionPusher, NoPushEndpoint, Pusher};
use crate::service::Services;
use crate::store::{MemoryStore, Store};
use std::sync::Arc;

/// Builds the use cases from the environment. Called once per cold start.
///
/// The store is the embedded one until the DynamoDB adapter lands: a Lambda deployment
/// needs that adapter to share data between invocations (see README, "Status").
pub async fn services_from_env() -> Result<Services, ConfigError> {
    let config = Config::from_env()?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let pusher: Arc<dyn Pusher> = match std::env::var("WEBSOCKET_MANAGEMENT_ENDPOINT").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => {
            let gateway = Arc::new(ApiGatewayConnections::from_env(&endpoint).await);
            Arc::new(ConnectionPusher::new(store.clone(), gateway, clock.clone()))
        }
        None => Arc::new(NoPushEndpoint),
    };
    Ok(Services::new(&config, store, calendly_client(&config), pusher, clock))
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
