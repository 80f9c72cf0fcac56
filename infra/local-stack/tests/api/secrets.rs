//! The secret is read from a Secrets Manager-compatible server (moto) over the wire.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use shared::startup::secrets::{SecretsManager, StartupError, load_config};
use std::collections::HashMap;

async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    let endpoint = local_stack::dynamo::test_endpoint().await;
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-3"))
        .credentials_provider(Credentials::new("local", "local", None, None, "test"))
        .http_client(shared::https::sdk_http_client())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

fn environment(secret_arn: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        ("SECRET_ARN", secret_arn.to_string()),
        ("CALENDLY_CLIENT_ID", "client-id".to_string()),
        ("CALENDLY_REDIRECT_URI", "https://api.velvena.example/auth/calendly/callback".to_string()),
        ("WEBHOOK_BASE_URL", "https://api.velvena.example".to_string()),
        ("TABLE_NAME", "velvena".to_string()),
        ("JWT_SECRET", "overridden-by-the-secret-of-32-bytes-or-more".to_string()),
    ])
}

#[tokio::test]
async fn the_secret_supplies_the_sensitive_configuration() {
    let client = secrets_manager().await;
    let name = format!("velvena/calendly/{}", shared::crypto::random_token(6));
    let secret = serde_json::json!({
        "calendly_client_secret": "from-the-secret",
        "calendly_webhook_signing_key": "signing-from-the-secret",
        "encryption_key": "ef".repeat(32),
        "jwt_secret": "jwt-from-the-secret-of-32-bytes-or-more",
    });
    let arn = client.create_secret().name(&name).secret_string(secret.to_string()).send().await.unwrap().arn.unwrap();
    let env = environment(&arn);
    let source = SecretsManager::new(client);
    let config = load_config(|k| env.get(k).cloned(), Some(&source)).await.unwrap();
    assert_eq!(config.calendly_client_secret.expose(), "from-the-secret");
    assert_eq!(config.calendly_webhook_signing_key.expose(), "signing-from-the-secret");
    assert_eq!(
        config.jwt_secret.expose(),
        "jwt-from-the-secret-of-32-bytes-or-more",
        "the secret wins over the environment"
    );
    assert_eq!(config.encryption_key.bytes(), &[0xef; 32]);
    assert_eq!(config.calendly_client_id, "client-id", "non-secret values stay in the environment");
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_it() {
    let source = SecretsManager::new(secrets_manager().await);
    let env = environment("arn:aws:secretsmanager:eu-west-3:123456789012:secret:does-not-exist");
    let error = load_config(|k| env.get(k).cloned(), Some(&source)).await.unwrap_err();
    assert!(matches!(error, StartupError::Secret(_)));
    assert!(error.to_string().contains("does-not-exist"), "{error}");
}

/// The Lambda wiring over moto: nothing is read until the first use, the secret is read once,
/// and a rotated secret is picked up once the TTL has passed (and not before).
async fn lazy_services(
    ttl_seconds: &str,
) -> (aws_sdk_secretsmanager::Client, String, String, shared::startup::wiring::LazyServices) {
    let client = secrets_manager().await;
    let name = format!("velvena/calendly/{}", shared::crypto::random_token(6));
    let secret = |jwt: &str| {
        serde_json::json!({
            "calendly_client_secret": "s", "calendly_webhook_signing_key": "k",
            "encryption_key": "ef".repeat(32), "jwt_secret": jwt,
        })
        .to_string()
    };
    let arn =
        client.create_secret().name(&name).secret_string(secret("first-jwt-secret-of-32-bytes-or-more")).send().await;
    let arn = arn.unwrap().arn.unwrap();
    let lazy_arn = arn.clone();
    let endpoint = local_stack::dynamo::test_endpoint().await;
    let mut env: HashMap<String, String> = environment(&arn).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "test"),
        ("AWS_REGION", "eu-west-3"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("SECRET_TTL_SECONDS", ttl_seconds),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    let lazy =
        shared::startup::wiring::LazyServices::with_lookup(std::sync::Arc::new(move |k: &str| env.get(k).cloned()));
    (client, lazy_arn, secret("second-jwt-secret-of-32-bytes-or-more"), lazy)
}

fn token(secret: &str) -> String {
    shared::auth::JwtVerifier::new(secret).issue("u", "org-a", chrono::Utc::now() + chrono::Duration::hours(1))
}

#[tokio::test]
async fn a_warm_container_picks_up_a_rotated_secret_after_the_ttl() {
    let (client, arn, rotated, lazy) = lazy_services("0").await;
    let (services, generation) = lazy.get().await.unwrap();
    assert_eq!(generation, 0);
    assert!(services.jwt().verify(&token("first-jwt-secret-of-32-bytes-or-more")).is_ok());
    client.put_secret_value().secret_id(&arn).secret_string(rotated).send().await.unwrap();
    let (services, generation) = lazy.get().await.unwrap();
    assert_eq!(generation, 1, "rebuilt from a fresh read");
    assert!(services.jwt().verify(&token("second-jwt-secret-of-32-bytes-or-more")).is_ok());
    assert!(services.jwt().verify(&token("first-jwt-secret-of-32-bytes-or-more")).is_err());
}

#[tokio::test]
async fn within_the_ttl_the_secret_is_read_once() {
    let (_client, _arn, _rotated, lazy) = lazy_services("3600").await;
    let (_, first) = lazy.get().await.unwrap();
    let (_, second) = lazy.get().await.unwrap();
    assert_eq!((first, second), (0, 0), "one read per container within the TTL");
}
