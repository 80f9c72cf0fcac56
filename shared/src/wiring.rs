//! Production wiring from the environment, shared by every function's `main`.

use crate::calendly::HttpCalendly;
use crate::calendly::client::CalendlySettings;
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::push::NoPushEndpoint;
use crate::service::Services;
use crate::store::MemoryStore;
use std::sync::Arc;

/// Builds the use cases from the environment. Called once per cold start.
///
/// The store is the embedded one until the DynamoDB adapter lands: a Lambda deployment
/// needs that adapter to share data between invocations (see README, "Status").
pub fn services_from_env() -> Result<Services, ConfigError> {
    let config = Config::from_env()?;
    let calendly = Arc::new(HttpCalendly::new(CalendlySettings {
        client_id: config.calendly_client_id.clone(),
        client_secret: config.calendly_client_secret.clone(),
        redirect_uri: config.calendly_redirect_uri.clone(),
        api_base_url: config.calendly_api_base_url.clone(),
        auth_base_url: config.calendly_auth_base_url.clone(),
    }));
    Ok(Services::new(
        &config,
        Arc::new(MemoryStore::new()),
        calendly,
        Arc::new(NoPushEndpoint),
        Arc::new(SystemClock::default()),
    ))
}
