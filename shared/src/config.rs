//! Configuration from the environment. Secrets are wrapped so they cannot be logged.

pub use crate::crypto::Secret;
use crate::crypto::SecretKey;

/// Why start-up cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty: its name.
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    /// A variable's value can't be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A secret still holds a template's placeholder: the variable's name.
    #[error("{0} still holds a placeholder; set the real value (docs/DEPLOY.md)")]
    Placeholder(&'static str),
}

/// The shortest HS256 secret accepted: 256 bits, the size of the hash (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Whether a secret value is a template's placeholder rather than a secret (`FILL_ME`,
/// `CHANGE_ME`, `<your secret>`...): such a value would let anyone who read the template sign.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    let upper = v.to_ascii_uppercase().replace(['-', ' '], "_");
    let words =
        ["FILL_ME", "FILLME", "CHANGE_ME", "CHANGEME", "REPLACE_ME", "REPLACEME", "TODO", "TBD", "XXX", "PLACEHOLDER"];
    words.iter().any(|w| upper == *w || upper.starts_with(&format!("{w}_")) || upper.ends_with(&format!("_{w}")))
        || (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with("${") && v.ends_with('}'))
}

/// Everything the functions need to know about their surroundings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The OAuth application's client id (`CALENDLY_CLIENT_ID`).
    pub calendly_client_id: String,
    /// The OAuth application's client secret (`CALENDLY_CLIENT_SECRET`).
    pub calendly_client_secret: Secret,
    /// The application's webhook signing key (`CALENDLY_WEBHOOK_SIGNING_KEY`).
    pub calendly_webhook_signing_key: Secret,
    /// The signing key being rolled away from (`CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS`): still
    /// accepted, so regenerating the key in Calendly's portal loses no delivery.
    pub calendly_webhook_signing_key_previous: Option<Secret>,
    /// The redirect URI registered with the OAuth application (`CALENDLY_REDIRECT_URI`).
    pub calendly_redirect_uri: String,
    /// Calendly's API (`CALENDLY_API_BASE_URL`, default `https://api.calendly.com`).
    pub calendly_api_base_url: String,
    /// Calendly's OAuth server (`CALENDLY_AUTH_BASE_URL`, default `https://auth.calendly.com`).
    pub calendly_auth_base_url: String,
    /// This API's public base URL: webhook subscriptions deliver under it (`WEBHOOK_BASE_URL`).
    pub webhook_base_url: String,
    /// The AES-256-GCM key sealing tokens (`ENCRYPTION_KEY`, 64 hexadecimal characters).
    pub encryption_key: SecretKey,
    /// The key being rolled away from (`ENCRYPTION_KEY_PREVIOUS`): opens old seals only.
    pub encryption_key_previous: Option<SecretKey>,
    /// The key of the suppression list's hashes (`PRIVACY_KEY`, 64 hexadecimal characters);
    /// when unset, one derived from `ENCRYPTION_KEY` (and rolled with it).
    pub privacy_key: Option<SecretKey>,
    /// The privacy key being rolled away from (`PRIVACY_KEY_PREVIOUS`): still checked, never written.
    pub privacy_key_previous: Option<SecretKey>,
    /// The HS256 key of CRM tokens (`JWT_SECRET`, at least `MIN_JWT_SECRET_BYTES`).
    pub jwt_secret: Secret,
    /// When set, CRM tokens must carry this `iss` (`JWT_ISSUER`).
    pub jwt_issuer: Option<String>,
    /// When set, CRM tokens must carry this `aud` (`JWT_AUDIENCE`).
    pub jwt_audience: Option<String>,
    /// The longest lifetime a CRM token may claim (`JWT_MAX_LIFETIME_HOURS`, 1..=720, default 24).
    pub jwt_max_lifetime: chrono::Duration,
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// Where the browser is sent after `GET /auth/calendly/callback` (optional).
    pub frontend_url: Option<String>,
    /// The rolling sync window: days back of now (`SYNC_DAYS_PAST`).
    pub sync_days_past: i64,
    /// Days ahead of now (`SYNC_DAYS_AHEAD`).
    pub sync_days_ahead: i64,
    /// The longest slice a worker runs one sync job for (`SYNC_JOB_BUDGET_MS`); on Lambda the
    /// invocation's own deadline cuts it shorter.
    pub sync_job_budget: std::time::Duration,
    /// The first retry delay of a sync job after a transient failure (`SYNC_RETRY_DELAY_MS`);
    /// each next retry doubles it.
    pub sync_retry_delay: std::time::Duration,
    /// The SQS queue of sync jobs (`SYNC_QUEUE_URL`); absent locally (the embedded queue).
    pub sync_queue_url: Option<String>,
    /// How soon after a manual sync the organization may ask for the next
    /// (`MANUAL_SYNC_COOLDOWN_SECONDS`, 0..=3600, default 60).
    pub manual_sync_cooldown: chrono::Duration,
    /// Live WebSocket connections per organization (`WS_MAX_CONNECTIONS_PER_ORGANIZATION`,
    /// 1..=10000, default 200: a 100-seat team with two tabs each).
    pub ws_max_connections_per_organization: usize,
}

/// What the scheduled tick needs, and no secret: the table, the queue and the sync window.
#[derive(Clone, Debug)]
pub struct ScheduleConfig {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table_name: String,
    /// The rolling sync window: days back of now (`SYNC_DAYS_PAST`).
    pub sync_days_past: i64,
    /// Days ahead of now (`SYNC_DAYS_AHEAD`).
    pub sync_days_ahead: i64,
    /// The SQS queue of sync jobs (`SYNC_QUEUE_URL`).
    pub sync_queue_url: Option<String>,
    /// The SQS queue where a tick near its deadline hands the rest on (`TICK_QUEUE_URL`).
    pub tick_queue_url: Option<String>,
    /// How many parts the schedule is kept in (`DUE_SHARDS`).
    pub due_shards: u16,
}

/// How many parts the schedule is kept in (`DUE_SHARDS`, 1..=256, default 16). Every function
/// that writes an integration lays its schedule out by it; raise it only (see `DuePartition`).
pub fn due_shards(lookup: impl Fn(&str) -> Option<String>) -> Result<u16, ConfigError> {
    match lookup("DUE_SHARDS").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        None => Ok(crate::domain::schedule::DEFAULT_DUE_SHARDS),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or(ConfigError::Invalid { name: "DUE_SHARDS", reason: "expected a number of parts (1..=256)".into() }),
    }
}

impl ScheduleConfig {
    /// Reads the schedule's configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let days = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|d| (0..=3650).contains(d))
                    .ok_or(ConfigError::Invalid { name, reason: "expected a number of days (0..=3650)".into() }),
            }
        };
        Ok(Self {
            table_name: get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            sync_days_past: days("SYNC_DAYS_PAST", 30)?,
            sync_days_ahead: days("SYNC_DAYS_AHEAD", 365)?,
            sync_queue_url: get("SYNC_QUEUE_URL"),
            tick_queue_url: get("TICK_QUEUE_URL"),
            due_shards: due_shards(&lookup)?,
        })
    }
}

impl Config {
    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let schedule = ScheduleConfig::from_lookup(&lookup)?;
        let millis = |name: &'static str, default: u64| -> Result<std::time::Duration, ConfigError> {
            let ms = match get(name) {
                None => default,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=900_000).contains(ms))
                    .ok_or(ConfigError::Invalid { name, reason: "expected milliseconds (1..=900000)".into() })?,
            };
            Ok(std::time::Duration::from_millis(ms))
        };
        // Secrets: present, not a placeholder (and, for the JWT secret, long enough).
        let secret = |name: &'static str| -> Result<Secret, ConfigError> {
            let value = required(name)?;
            if is_placeholder(&value) {
                return Err(ConfigError::Placeholder(name));
            }
            Ok(Secret::new(value))
        };
        // An optional secret (a previous key during a roll) is held to the same rule when set:
        // a placeholder there would be as good as a published key.
        let optional_secret = |name: &'static str| -> Result<Option<String>, ConfigError> {
            match get(name) {
                Some(value) if is_placeholder(&value) => Err(ConfigError::Placeholder(name)),
                value => Ok(value),
            }
        };
        let jwt_secret = secret("JWT_SECRET")?;
        if jwt_secret.expose().len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: format!("expected at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
            });
        }
        let encryption_key =
            SecretKey::from_hex(secret("ENCRYPTION_KEY")?.expose()).map_err(|_| ConfigError::Invalid {
                name: "ENCRYPTION_KEY",
                reason: "expected 64 hexadecimal characters (a 32-byte AES-256 key), e.g. `openssl rand -hex 32`"
                    .into(),
            })?;
        let encryption_key_previous = match optional_secret("ENCRYPTION_KEY_PREVIOUS")? {
            Some(key) => Some(SecretKey::from_hex(&key).map_err(|_| ConfigError::Invalid {
                name: "ENCRYPTION_KEY_PREVIOUS",
                reason: "expected 64 hexadecimal characters (the key being rolled away from)".into(),
            })?),
            None => None,
        };
        let hex_key = |name: &'static str| -> Result<Option<SecretKey>, ConfigError> {
            optional_secret(name)?
                .map(|key| {
                    SecretKey::from_hex(&key).map_err(|_| ConfigError::Invalid {
                        name,
                        reason: "expected 64 hexadecimal characters (a 32-byte key), e.g. `openssl rand -hex 32`"
                            .into(),
                    })
                })
                .transpose()
        };
        let url = |name: &'static str, value: String| -> Result<String, ConfigError> {
            url::Url::parse(&value).map_err(|e| ConfigError::Invalid { name, reason: e.to_string() })?;
            Ok(value.trim_end_matches('/').to_string())
        };
        Ok(Self {
            calendly_client_id: required("CALENDLY_CLIENT_ID")?,
            calendly_client_secret: secret("CALENDLY_CLIENT_SECRET")?,
            calendly_webhook_signing_key: secret("CALENDLY_WEBHOOK_SIGNING_KEY")?,
            calendly_webhook_signing_key_previous: optional_secret("CALENDLY_WEBHOOK_SIGNING_KEY_PREVIOUS")?
                .map(Secret::new),
            calendly_redirect_uri: url("CALENDLY_REDIRECT_URI", required("CALENDLY_REDIRECT_URI")?)?,
            calendly_api_base_url: url(
                "CALENDLY_API_BASE_URL",
                get("CALENDLY_API_BASE_URL").unwrap_or_else(|| "https://api.calendly.com".into()),
            )?,
            calendly_auth_base_url: url(
                "CALENDLY_AUTH_BASE_URL",
                get("CALENDLY_AUTH_BASE_URL").unwrap_or_else(|| "https://auth.calendly.com".into()),
            )?,
            webhook_base_url: url("WEBHOOK_BASE_URL", required("WEBHOOK_BASE_URL")?)?,
            encryption_key,
            encryption_key_previous,
            privacy_key: hex_key("PRIVACY_KEY")?,
            privacy_key_previous: hex_key("PRIVACY_KEY_PREVIOUS")?,
            jwt_secret,
            jwt_issuer: get("JWT_ISSUER"),
            jwt_audience: get("JWT_AUDIENCE"),
            jwt_max_lifetime: match get("JWT_MAX_LIFETIME_HOURS") {
                None => crate::auth::DEFAULT_MAX_TOKEN_LIFETIME,
                Some(v) => v.parse::<i64>().ok().filter(|h| (1..=720).contains(h)).map(chrono::Duration::hours).ok_or(
                    ConfigError::Invalid { name: "JWT_MAX_LIFETIME_HOURS", reason: "expected hours (1..=720)".into() },
                )?,
            },
            table_name: schedule.table_name,
            frontend_url: get("FRONTEND_URL"),
            sync_days_past: schedule.sync_days_past,
            sync_days_ahead: schedule.sync_days_ahead,
            sync_job_budget: millis("SYNC_JOB_BUDGET_MS", 100_000)?,
            sync_retry_delay: millis("SYNC_RETRY_DELAY_MS", 15_000)?,
            sync_queue_url: schedule.sync_queue_url,
            manual_sync_cooldown: match get("MANUAL_SYNC_COOLDOWN_SECONDS") {
                None => chrono::Duration::seconds(60),
                Some(v) => {
                    v.parse::<i64>().ok().filter(|s| (0..=3600).contains(s)).map(chrono::Duration::seconds).ok_or(
                        ConfigError::Invalid {
                            name: "MANUAL_SYNC_COOLDOWN_SECONDS",
                            reason: "expected seconds (0..=3600)".into(),
                        },
                    )?
                }
            },
            ws_max_connections_per_organization: match get("WS_MAX_CONNECTIONS_PER_ORGANIZATION") {
                None => 200,
                Some(v) => {
                    v.parse::<usize>().ok().filter(|n| (1..=10_000).contains(n)).ok_or(ConfigError::Invalid {
                        name: "WS_MAX_CONNECTIONS_PER_ORGANIZATION",
                        reason: "expected a number of connections (1..=10000)".into(),
                    })?
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            ("CALENDLY_CLIENT_ID", "id".to_string()),
            ("CALENDLY_CLIENT_SECRET", "client-secret".to_string()),
            ("CALENDLY_WEBHOOK_SIGNING_KEY", "signing".to_string()),
            ("CALENDLY_REDIRECT_URI", "http://127.0.0.1:3000/auth/calendly/callback".to_string()),
            ("WEBHOOK_BASE_URL", "http://127.0.0.1:3000/".to_string()),
            ("ENCRYPTION_KEY", "ab".repeat(32)),
            ("JWT_SECRET", "a-jwt-secret-of-at-least-32-bytes".to_string()),
            ("TABLE_NAME", "velvena".to_string()),
        ])
    }

    #[test]
    fn complete_environment_parses_with_defaults() {
        let vars = env();
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(config.calendly_api_base_url, "https://api.calendly.com");
        assert_eq!(config.webhook_base_url, "http://127.0.0.1:3000");
        assert!(!format!("{config:?}").contains("client-secret"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut vars = env();
        vars.remove("JWT_SECRET");
        let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert_eq!(err.to_string(), "missing required environment variable JWT_SECRET");
    }

    #[test]
    fn placeholders_and_a_short_jwt_secret_stop_start_up_naming_the_variable() {
        for (name, value) in [
            ("JWT_SECRET", "FILL_ME"),
            ("CALENDLY_CLIENT_SECRET", "FILL_ME"),
            ("CALENDLY_WEBHOOK_SIGNING_KEY", "change-me"),
            ("CALENDLY_CLIENT_SECRET", "<client secret>"),
        ] {
            let mut vars = env();
            vars.insert(name, value.to_string());
            let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
            assert!(matches!(err, ConfigError::Placeholder(n) if n == name), "{name}={value}: {err}");
            assert!(err.to_string().contains(name));
        }
        let mut vars = env();
        vars.insert("JWT_SECRET", "short-but-real".to_string());
        let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET") && err.to_string().contains("32 bytes"), "{err}");
        assert!(!is_placeholder("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    }

    #[test]
    fn a_placeholder_in_any_secret_stops_start_up_naming_it() {
        for name in crate::startup::secrets::SECRET_NAMES.map(|(name, _)| name) {
            for placeholder in ["FILL_ME", "<previous signing key>", "CHANGE-ME", "${SECRET}"] {
                let mut vars = env();
                vars.insert(name, placeholder.to_string());
                let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
                assert!(matches!(err, ConfigError::Placeholder(n) if n == name), "{name}={placeholder}: {err}");
                assert!(err.to_string().contains(name), "{err}");
            }
        }
    }

    #[test]
    fn a_short_encryption_key_stops_start_up_with_a_clear_message() {
        let mut vars = env();
        vars.insert("ENCRYPTION_KEY", "abcd".into());
        let err = Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(err.to_string().contains("ENCRYPTION_KEY"));
        assert!(err.to_string().contains("64 hexadecimal"));
    }
}
