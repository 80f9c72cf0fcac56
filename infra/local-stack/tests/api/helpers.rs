//! The TestApp harness: the real local stack on a random port, the Calendly simulator
//! behind it, and a real HTTP client in front.

use calendly_sim::{Booked, BookingSpec, CalendlySim, SimUser};
use chrono::{DateTime, Duration, Utc};
use local_stack::{LocalStack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestApp {
    pub stack: LocalStack,
    pub sim: CalendlySim,
    pub http: reqwest::Client,
}

/// Every function ran within its grant: a refusal a function only logged fails the test too.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(dynamo) = &self.stack.dynamo
            && !std::thread::panicking()
        {
            let denied = dynamo.denied_actions();
            assert!(denied.is_empty(), "a function was refused what its grant leaves out: {denied:?}");
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self.body
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// With `LOG_CAPTURE=<file>` (the test command sets it), every log line at `info` or above of
/// the whole run is appended to that file as JSON: the test command then scans it for the
/// e-mails, names and answers the tests used (`scripts/personal-data-in-logs`).
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(path) = std::env::var("LOG_CAPTURE") else { return };
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("the log capture file opens");
        let _ = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// Which store the local stack runs on.
#[derive(Clone, Copy, Debug)]
pub enum StoreKind {
    Embedded,
    /// The DynamoDB adapter against moto over the wire, on a fresh table.
    DynamoDb,
}

/// Runs a test taking a `TestApp` (or, with `kind`, a `StoreKind`) on both stores.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(crate::helpers::TestApp::spawn_on(crate::helpers::StoreKind::Embedded).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$name(crate::helpers::TestApp::spawn_on(crate::helpers::StoreKind::DynamoDb).await).await;
            }
        }
    };
    ($name:ident, kind) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(crate::helpers::StoreKind::Embedded).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$name(crate::helpers::StoreKind::DynamoDb).await;
            }
        }
    };
}
pub(crate) use on_both_stores;

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(StackOptions::default()).await
    }

    pub async fn spawn_on(kind: StoreKind) -> Self {
        Self::spawn_on_with(kind, StackOptions::default()).await
    }

    /// The stack on `kind`, with `options` (the store's settings are added to its `env`).
    pub async fn spawn_on_with(kind: StoreKind, mut options: StackOptions) -> Self {
        if let StoreKind::DynamoDb = kind {
            let endpoint = local_stack::dynamo::test_endpoint().await;
            let table =
                format!("velvena-http-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"));
            options.env.insert("STORE".to_string(), "dynamodb".to_string());
            options.env.insert("AWS_ENDPOINT_URL_DYNAMODB".to_string(), endpoint);
            options.env.insert("TABLE_NAME".to_string(), table);
        }
        Self::spawn_with(options).await
    }

    pub async fn spawn_with(mut options: StackOptions) -> Self {
        capture_logs();
        // The tests sync again and again within seconds, as minutes of a real day; the
        // cooldown's own tests (limits.rs) set it.
        options.env.entry("MANUAL_SYNC_COOLDOWN_SECONDS".to_string()).or_insert_with(|| "0".to_string());
        let stack = LocalStack::start(options).await.expect("the local stack starts");
        let sim = stack.simulator.clone().expect("tests run against the simulator");
        let http = shared::https::client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { stack, sim, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.url())
    }

    pub fn token(&self, org: &str) -> String {
        self.stack.jwt(&format!("user-of-{org}"), org)
    }

    pub async fn request(&self, method: Method, path: &str, org: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(org) = org {
            request = request.bearer_auth(self.token(org));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the local stack answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        crate::contract::check_answer(method.as_str(), path, status.as_u16(), content_type, &body);
        Reply { status, body, headers }
    }

    pub async fn get(&self, path: &str, org: &str) -> Reply {
        self.request(Method::GET, path, Some(org), None).await
    }

    pub async fn post(&self, path: &str, org: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(org), Some(body)).await
    }

    pub async fn patch(&self, path: &str, org: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(org), Some(body)).await
    }

    pub async fn delete(&self, path: &str, org: &str) -> Reply {
        self.request(Method::DELETE, path, Some(org), None).await
    }

    /// A Calendly host with its own account.
    pub fn host(&self, name: &str) -> SimUser {
        self.sim.add_user(name, &format!("{}@host.example", name.to_lowercase().replace(' ', ".")))
    }

    /// Starts a connect for `org` and has `host` approve it; returns (code, state).
    pub async fn authorize(&self, org: &str, host: &SimUser) -> (String, String) {
        let start = self.post("/calendly/connect", org, json!({})).await.expect(200);
        let url = start["authorize_url"].as_str().unwrap();
        let code = self.sim.approve(host, url).expect("the simulator approves the authorize URL");
        (code, start["state"].as_str().unwrap().to_string())
    }

    /// The whole OAuth connect of `org` to `host`'s Calendly, then its initial sync job to the
    /// end; returns the callback's answer with `sync` as the job ended.
    pub async fn connect(&self, org: &str, host: &SimUser) -> Value {
        let mut answer = self.connect_queued(org, host).await;
        assert_eq!(answer["sync"]["trigger"], "initial", "the callback queues the initial sync: {answer}");
        answer["sync"] = self.wait_for_sync(org).await;
        answer
    }

    /// The OAuth connect of `org` to `host`'s Calendly; the callback's answer, as it came.
    pub async fn connect_queued(&self, org: &str, host: &SimUser) -> Value {
        let (code, state) = self.authorize(org, host).await;
        self.post("/auth/calendly/callback", org, json!({ "code": code, "state": state })).await.expect(200)
    }

    /// `POST /calendly/sync` (202), then the job to its end; returns the ended job.
    pub async fn sync(&self, org: &str) -> Value {
        let queued = self.post("/calendly/sync", org, json!({})).await.expect(202);
        assert!(queued["id"].is_string(), "the 202 carries the job: {queued}");
        let ended = self.wait_for_sync(org).await;
        assert_eq!(ended["state"], "succeeded", "the sync job failed: {ended}");
        ended
    }

    /// Polls `GET /calendly/status` until its `sync` job has ended (a minute at the most).
    pub async fn wait_for_sync(&self, org: &str) -> Value {
        self.wait_for_sync_within(org, std::time::Duration::from_secs(60)).await
    }

    pub async fn wait_for_sync_within(&self, org: &str, within: std::time::Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = self.get("/calendly/status", org).await.expect(200);
            let state = status["sync"]["state"].as_str().unwrap_or_default().to_string();
            if state == "succeeded" || state == "failed" {
                return status["sync"].clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "the sync job did not end within {within:?}: {status}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub async fn prospects(&self, org: &str) -> Vec<Value> {
        self.get("/prospects?limit=100", org).await.expect(200)["items"].as_array().unwrap().clone()
    }

    pub async fn notifications(&self, org: &str) -> Vec<Value> {
        self.get("/notifications?limit=100", org).await.expect(200)["items"].as_array().unwrap().clone()
    }

    pub async fn prospect_by_email(&self, org: &str, email: &str) -> Option<Value> {
        self.prospects(org)
            .await
            .into_iter()
            .find(|p| p["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(email)))
    }

    /// Books silently (no webhook), so only a sync sees it.
    pub fn seed(&self, host: &SimUser, name: &str, email: &str, event: &str, start: DateTime<Utc>) -> Booked {
        self.sim.seed_bookings(host, vec![BookingSpec::new(name, email, event, start)]).remove(0)
    }

    /// A browser's WebSocket, connected with `org`'s token.
    pub async fn browser(&self, org: &str) -> Browser {
        let url = self.stack.websocket_url(&self.token(org));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("the WebSocket is accepted");
        Browser { socket }
    }

    /// Moves both clocks (ours and Calendly's) forward.
    pub fn advance_clocks(&self, by: Duration) {
        self.stack.clock.advance(by);
        self.sim.advance_clock(by);
    }
}

/// 16/01/2026 16:30 in Paris (winter time: UTC+1), a date the notes tests can spell out.
pub fn jan_16_1630_paris() -> DateTime<Utc> {
    "2026-01-16T15:30:00Z".parse().unwrap()
}

/// A start time inside the default sync window (days from now, at 10:00 UTC).
pub fn in_days(days: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::days(days)).date_naive().and_hms_opt(10, 0, 0).unwrap().and_utc()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser's WebSocket connection to the local API Gateway.
pub struct Browser {
    socket: Socket,
}

impl Browser {
    /// The next pushed message, if one arrives within `within`.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()??;
            match frame.ok()? {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).ok()?;
                    crate::contract::check_push(&message);
                    return Some(message);
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next message with this event name (skipping others), within `within`.
    pub async fn expect_event(&mut self, event: &str, within: std::time::Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(m) if m["event"] == event => return m["data"].clone(),
                Some(_) => continue,
                None => panic!("no {event} message within {within:?}"),
            }
        }
    }

    /// Closes the connection like a browser tab does.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The deadline of a scheduled tick as `sync-scheduled` has it on AWS (its 120-s timeout).
pub fn tick_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(120)
}
