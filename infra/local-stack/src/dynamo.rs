//! DynamoDB for local runs and tests: a client for any DynamoDB-compatible endpoint, and the
//! moto server the tests talk to over the wire.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use std::process::Stdio;
use tokio::sync::OnceCell;

/// A client for `endpoint` (moto locally) with local credentials unless real ones are given.
pub fn client(
    endpoint: Option<&str>,
    region: Option<&str>,
    credentials: Option<(String, String)>,
) -> aws_sdk_dynamodb::Client {
    let (key, secret) = credentials.unwrap_or_else(|| ("local".into(), "local".into()));
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.unwrap_or("eu-west-3").to_string()))
        .credentials_provider(Credentials::new(key, secret, None, None, "local-stack"))
        .http_client(shared::https::sdk_http_client());
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

static MOTO: OnceCell<String> = OnceCell::const_new();

/// The DynamoDB-compatible endpoint tests use: `AWS_ENDPOINT_URL_DYNAMODB` when the test
/// command started one, else moto (`scripts/moto_server.py`, installed in `.venv` by
/// `scripts/install-test-deps`) started here, stopping when this process does.
pub async fn test_endpoint() -> String {
    MOTO.get_or_init(|| async {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            return endpoint;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let script = format!(
            "{root}/.venv/bin/python {root}/scripts/moto_server.py {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m",
            parent = std::process::id()
        );
        // Not waited on: the watcher script stops moto and exits when this process ends.
        #[allow(clippy::zombie_processes)]
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .expect("bash starts moto_server (run scripts/test once to install it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return endpoint;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on {endpoint}: run scripts/test once to install it into .venv");
    })
    .await
    .clone()
}

/// A fresh table on the test endpoint: each test gets its own.
pub async fn test_store() -> shared::store::DynamoStore {
    let endpoint = test_endpoint().await;
    let table = format!("velvena-test-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let client = client(Some(&endpoint), None, None);
    shared::store::dynamodb::table::create_table_if_missing(&client, &table).await.expect("the test table is created");
    shared::store::DynamoStore::new(client, table)
}
