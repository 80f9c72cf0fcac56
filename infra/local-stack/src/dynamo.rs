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

/// A moto server of this process's own (`scripts/moto_server.py`, installed in `.venv` by
/// `scripts/install-test-deps`): DynamoDB's transaction isolation, transactions that cost what
/// they touch, a memory cap. Stopped when dropped, and by itself when this process ends.
pub struct Moto {
    endpoint: String,
    log: std::path::PathBuf,
    child: std::process::Child,
}

/// Why a moto server did not start.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// The Python of `.venv` could not be started.
    #[error("cannot start moto_server.py (run scripts/install-test-deps once): {0}")]
    Spawn(#[source] std::io::Error),
    /// It started but never listened, or stopped at once.
    #[error("moto_server.py did not start on {endpoint}: {log}")]
    NotListening {
        /// Where it should have listened.
        endpoint: String,
        /// The end of its log.
        log: String,
    },
}

impl Moto {
    /// Starts a fresh server on a free port, resident memory capped at `max_rss_mb` (the
    /// server stops with a message in its log past it).
    pub async fn start(max_rss_mb: u32) -> Result<Self, MotoError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(MotoError::Spawn)?;
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let log = root.join("target").join(format!("moto-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(MotoError::Spawn)?;
        let child = std::process::Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/moto_server.py"))
            .arg(port.to_string())
            .arg("--max-rss-mb")
            .arg(max_rss_mb.to_string())
            .arg("--parent")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(MotoError::Spawn)?)
            .stderr(log_file)
            .spawn()
            .map_err(MotoError::Spawn)?;
        let mut moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), log, child };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(moto);
            }
            if moto.child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(MotoError::NotListening { endpoint: moto.endpoint.clone(), log: moto.log_tail() })
    }

    /// Where it listens.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its peak resident memory so far, in MB (None once it has stopped).
    pub async fn peak_rss_mb(&self) -> Option<u64> {
        let answer = shared::https::client().get(format!("{}/_harness/peak", self.endpoint)).send().await.ok()?;
        answer.text().await.ok()?.trim().parse().ok()
    }

    /// Why it stopped, when it has (its log's last lines: the memory cap says so there).
    pub fn stopped_because(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|status| format!("moto stopped ({status}): {}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The memory cap of the tests' own moto (`MOTO_MAX_RSS_MB`, default 2048).
fn max_rss_mb() -> u32 {
    std::env::var("MOTO_MAX_RSS_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(2048)
}

static MOTO: OnceCell<String> = OnceCell::const_new();
static OWN_MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();

/// The DynamoDB-compatible endpoint tests use: `AWS_ENDPOINT_URL_DYNAMODB` when the test
/// command started one, else a [`Moto`] of this process's, shared by its tests.
pub async fn test_endpoint() -> String {
    MOTO.get_or_init(|| async {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            return endpoint;
        }
        let moto = Moto::start(max_rss_mb()).await.unwrap_or_else(|e| panic!("{e}"));
        OWN_MOTO.get_or_init(|| moto).endpoint().to_string()
    })
    .await
    .clone()
}

/// A fresh table on the test endpoint: each test gets its own.
pub async fn test_store() -> shared::store::DynamoStore {
    test_store_on(&test_endpoint().await).await
}

/// A fresh table on `endpoint`.
pub async fn test_store_on(endpoint: &str) -> shared::store::DynamoStore {
    let table = format!("velvena-test-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let client = client(Some(endpoint), None, None);
    shared::store::dynamodb::table::create_table_if_missing(&client, &table).await.expect("the test table is created");
    shared::store::DynamoStore::new(client, table)
}
