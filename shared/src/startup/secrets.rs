//! Secrets from AWS Secrets Manager: one JSON secret (named by `SECRET_ARN`) holds the Calendly
//! client secret, the webhook signing key, the token encryption key and the JWT secret. It is
//! read once per cold start; the environment still supplies everything for local runs.

use crate::config::{Config, ConfigError};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// The configuration names a secret may hold, and the keys they may have in the JSON.
pub(crate) const SECRET_NAMES: [(&str, &str); 8] = [
    ("CALENDLY_CLIENT_SECRET", "calendly_client_secret"),
    ("CALENDLY_WEBHOOK_SIGNING_KEY", "calendly_webhook_signing_key"),
    ("CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS", "calendly_webhook_signing_key_previous"),
    ("ENCRYPTION_KEY", "encryption_key"),
    ("ENCRYPTION_KEY_PREVIOUS", "encryption_key_previous"),
    ("JWT_SECRET", "jwt_secret"),
    ("PRIVACY_KEY", "privacy_key"),
    ("PRIVACY_KEY_PREVIOUS", "privacy_key_previous"),
];

/// Why the secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret could not be read.
    #[error("cannot read secret {id}: {reason}")]
    Unavailable {
        /// The secret's id.
        id: String,
        /// Why (the SDK's error).
        reason: String,
    },
    /// The secret is not a JSON object of strings (its id).
    #[error("secret {0} is not a JSON object of strings")]
    Malformed(String),
}

/// Where secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret `id` as a JSON object.
    async fn secret_json(&self, id: &str) -> Result<Map<String, Value>, SecretError>;
}

/// AWS Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    /// An adapter over a configured client.
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    async fn secret_json(&self, id: &str) -> Result<Map<String, Value>, SecretError> {
        let out = self.client.get_secret_value().secret_id(id).send().await.map_err(|e| SecretError::Unavailable {
            id: id.to_string(),
            reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?;
        let text = out.secret_string().ok_or_else(|| SecretError::Malformed(id.to_string()))?;
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(SecretError::Malformed(id.to_string())),
        }
    }
}

/// Why start-up failed while reading configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The configuration: the environment, with the secret named by `SECRET_ARN` (if any)
/// taking precedence for the secret values.
pub async fn load_config(
    lookup: impl Fn(&str) -> Option<String>,
    source: Option<&dyn SecretSource>,
) -> Result<Config, StartupError> {
    let secret = match (lookup("SECRET_ARN").filter(|a| !a.is_empty()), source) {
        (Some(arn), Some(source)) => source.secret_json(&arn).await?,
        _ => Map::new(),
    };
    let from_secret = |name: &str| -> Option<String> {
        let (_, json_key) = SECRET_NAMES.iter().find(|(env, _)| *env == name)?;
        [*json_key, name].iter().find_map(|k| secret.get(*k).and_then(Value::as_str)).map(String::from)
    };
    Ok(Config::from_lookup(|name| from_secret(name).or_else(|| lookup(name)))?)
}
