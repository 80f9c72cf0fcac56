//! `bench`: measures what Rust on Lambda is chosen for, each figure beside its reference, and
//! prints one table. Run it with `scripts/bench` (it builds the release binaries first).
//! Benchmarks report; they never fail on a time.

// A benchmark that cannot set itself up stops there, with the location.
#![allow(clippy::unwrap_used)]

mod coldstart;
mod first_sync;
mod privacy;
mod realtime;
mod sync_cost;
mod team;
mod tick;

use base64::Engine;
use calendly_sim::{Booked, BookingSpec, SimConfig, SimUser};
use chrono::{Duration as ChronoDuration, Utc};
use futures::StreamExt;
use local_stack::{LocalStack, StackOptions};
use serde_json::{Value, json};
use shared::domain::OrganizationId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One row of the table.
struct Row {
    measure: String,
    value: String,
    reference: String,
    ratio: String,
}

fn row(
    measure: impl Into<String>,
    value: impl Into<String>,
    reference: impl Into<String>,
    ratio: impl Into<String>,
) -> Row {
    Row { measure: measure.into(), value: value.into(), reference: reference.into(), ratio: ratio.into() }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 { format!("{:.2}×", value / reference) } else { "–".into() }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    percentile(&values, 0.5)
}

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(root().join("events").join(name)).expect("sample event")
}

// ---- 1. Cold start and memory ---------------------------------------------------------------

// ---- 2. Sync cost --------------------------------------------------------------------------

struct SyncRun {
    wall: Duration,
    calendly_requests: u64,
    dynamo: Option<(u64, u64, u64, f64)>,
}

async fn stack(dynamodb: bool, rate_limit_per_minute: u32) -> LocalStack {
    stack_with(dynamodb, rate_limit_per_minute, HashMap::new()).await
}

async fn stack_with(dynamodb: bool, rate_limit_per_minute: u32, mut env: HashMap<String, String>) -> LocalStack {
    if dynamodb {
        env.insert("STORE".to_string(), "dynamodb".to_string());
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".to_string(), local_stack::dynamo::test_endpoint().await);
        env.insert(
            "TABLE_NAME".to_string(),
            format!("bench-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x")),
        );
    }
    let simulator = SimConfig { rate_limit: rate_limit_per_minute, ..SimConfig::default() };
    LocalStack::start(StackOptions { env, simulator, ..Default::default() }).await.expect("the local stack starts")
}

async fn connect(stack: &LocalStack, org: &str, host: &SimUser) {
    let caller = shared::auth::Caller {
        user_id: shared::domain::UserId::new("bench-user"),
        organization_id: OrganizationId::new(org),
        expires_at: Utc::now() + ChronoDuration::days(1),
    };
    let start = stack
        .services
        .connecting()
        .start_connect(&caller, shared::domain::CalendlyScope::User)
        .await
        .expect("connect starts");
    let sim = stack.simulator.as_ref().unwrap();
    let code = sim.approve(host, &start.authorize_url).expect("approved");
    stack.services.connecting().complete_connect(&code, &start.state, &caller).await.expect("connected");
    stack.wait_for_sync(org, Duration::from_secs(3600)).await.expect("the initial sync ends");
}

fn dynamo_delta(stack: &LocalStack, before: Option<(u64, u64, u64, f64)>) -> Option<(u64, u64, u64, f64)> {
    let now = stack.dynamo.as_ref()?.metrics().snapshot();
    let b = before?;
    Some((now.0 - b.0, now.1 - b.1, now.2 - b.2, now.3 - b.3))
}

async fn timed_sync(stack: &LocalStack, org: &str) -> SyncRun {
    let sim = stack.simulator.as_ref().unwrap();
    let requests = sim.api_request_count();
    let before = stack.dynamo.as_ref().map(|d| d.metrics().snapshot());
    let started = Instant::now();
    let job = stack.sync_and_wait(org, Duration::from_secs(3600)).await.expect("the sync job ends");
    let wall = started.elapsed();
    assert!(job.report.events_seen > 0, "the sync job failed: {:?}", job.error);
    SyncRun { wall, calendly_requests: sim.api_request_count() - requests, dynamo: dynamo_delta(stack, before) }
}

fn dynamo_text(d: Option<(u64, u64, u64, f64)>) -> String {
    match d {
        Some((reads, writes, transactions, units)) => {
            format!("; DynamoDB {reads} reads, {writes} writes, {transactions} transactions, {units:.1} capacity units")
        }
        None => String::new(),
    }
}

// ---- 3. Webhook to browser, 4. Fan-out --------------------------------------------------------

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn browser(stack: &LocalStack, org: &str) -> Socket {
    let token = stack.jwt("bench-user", org);
    tokio_tungstenite::connect_async(stack.websocket_url(&token)).await.expect("WebSocket accepted").0
}

async fn wait_for(socket: &mut Socket, event: &str) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.ok()??.ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).ok()?;
            if message["event"].as_str().is_some_and(|e| e.starts_with(event)) {
                return Some(message);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let mut rows = Vec::new();
    if wants("coldstart")
        && let Err(e) = coldstart::cold_starts(&mut rows).await
    {
        rows.push(row("cold start", format!("failed: {e}"), "–", "–"));
    }
    if wants("sync") || wants("sync-embedded") {
        sync_cost::sync_cost(&mut rows, false).await;
    }
    if wants("sync") || wants("sync-dynamodb") {
        sync_cost::sync_cost(&mut rows, true).await;
    }
    if wants("ratelimit") {
        first_sync::first_sync_under_real_limit(&mut rows).await;
    }
    if wants("team") {
        team::team_under_real_limit(&mut rows).await;
    }
    let mut embedded_job = None;
    if wants("tick") || wants("tick-embedded") {
        embedded_job = Some(tick::scheduled_tick(&mut rows, false, None).await);
    }
    if wants("tick") || wants("tick-dynamodb") {
        tick::scheduled_tick(&mut rows, true, embedded_job).await;
    }
    if wants("webhook") {
        realtime::webhook_to_browser(&mut rows, false).await;
        realtime::webhook_to_browser(&mut rows, true).await;
    }
    if wants("fanout") {
        realtime::fan_out(&mut rows).await;
    }
    if wants("privacy") {
        privacy::privacy_cost(&mut rows).await;
    }

    println!(
        "\nMachine: {} cores, {}; {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::env::consts::ARCH,
        Utc::now().format("%Y-%m-%d")
    );
    println!("\n| measure | value | reference | ratio |\n|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.measure, r.value, r.reference, r.ratio);
    }
}
