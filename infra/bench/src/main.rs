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
use local_stack::dynamo::Moto;
use local_stack::{LocalStack, StackOptions};
use serde_json::{Value, json};
use shared::domain::OrganizationId;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One row of the table.
#[derive(Clone)]
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

/// The table so far, shared with a part's task: what a part pushed before it failed is kept.
#[derive(Clone, Default)]
struct Rows(Arc<Mutex<Vec<Row>>>);

impl Rows {
    fn push(&self, row: Row) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(row);
    }

    fn all(&self) -> Vec<Row> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
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

/// The moto servers of the part running now, stopped (after their peak is read) when it ends.
static MOTOS: Mutex<Vec<Moto>> = Mutex::new(Vec::new());

/// moto's resident memory cap in the bench (`MOTO_MAX_RSS_MB`, default 1024): a runaway emulator
/// stops its own part, with a row saying so, never the machine.
fn moto_cap_mb() -> u32 {
    std::env::var("MOTO_MAX_RSS_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024)
}

/// A fresh moto for the part running now: each part measures on an emulator of its own.
async fn fresh_moto() -> String {
    let moto = Moto::start(moto_cap_mb()).await.unwrap_or_else(|e| panic!("{e}"));
    let endpoint = moto.endpoint().to_string();
    MOTOS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(moto);
    endpoint
}

/// A stack with the bench's quotas: the manual-sync cooldown is off (the sync part re-syncs
/// at once; the rows say so); `env` adds or overrides.
async fn stack_with(dynamodb: bool, rate_limit_per_minute: u32, env: HashMap<String, String>) -> LocalStack {
    let mut env = HashMap::from([("MANUAL_SYNC_COOLDOWN_SECONDS".to_string(), "0".to_string())])
        .into_iter()
        .chain(env)
        .collect::<HashMap<_, _>>();
    if dynamodb {
        env.insert("STORE".to_string(), "dynamodb".to_string());
        env.insert("AWS_ENDPOINT_URL_DYNAMODB".to_string(), fresh_moto().await);
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

/// Waits for `org`'s current job to end. On DynamoDB it watches through a store of its own, so
/// its reads do not count in what the part measures.
async fn job_ended(stack: &LocalStack, org: &str, within: Duration) -> Option<shared::domain::SyncJob> {
    use shared::store::SyncJobStore;
    let Some(dynamo) = stack.dynamo.as_ref() else { return stack.wait_for_sync(org, within).await };
    let (observer, org) = (dynamo.observer(), OrganizationId::new(org));
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let (recorded, integration) = observer.get_sync_job_with_integration(&org).await.ok()?;
        let job = shared::domain::current_job(recorded, integration.as_ref(), shared::clock::Clock::now(&*stack.clock));
        if let Some(job) = job.filter(|j| !j.state.is_active()) {
            return Some(job);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn timed_sync(stack: &LocalStack, org: &str) -> SyncRun {
    let sim = stack.simulator.as_ref().unwrap();
    let requests = sim.api_request_count();
    let before = stack.dynamo.as_ref().map(|d| d.metrics().snapshot());
    let started = Instant::now();
    let org_id = OrganizationId::new(org);
    stack.services.jobs().request_sync(&org_id, shared::domain::SyncTrigger::Manual).await.expect("queued");
    let job = job_ended(stack, org, Duration::from_secs(3600)).await.expect("the sync job ends");
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

/// What a part's panic said, and where (kept by the panic hook for the part's failure row).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn keep_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".to_string());
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(format!("{message}{place}"));
        default(info);
    }));
}

/// A part may run this long (`BENCH_PART_TIMEOUT_SECONDS`, default 1 h: the team part takes ~25 min).
fn part_timeout() -> Duration {
    Duration::from_secs(std::env::var("BENCH_PART_TIMEOUT_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600))
}

/// Runs one part on its own task: a panic, an error or a timeout becomes a row saying what
/// failed and why, the rows it pushed before stay, and a last row gives its wall time and the
/// peak memory of the moto servers it started (each part starts its own).
async fn run_part<F>(rows: &Rows, name: &str, part: F)
where
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    eprintln!("bench: part `{name}`");
    let started = Instant::now();
    let task = tokio::spawn(part);
    let abort = task.abort_handle();
    let failure = match tokio::time::timeout(part_timeout(), task).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e),
        Ok(Err(e)) if e.is_panic() => Some(
            LAST_PANIC
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
                .unwrap_or_else(|| "panicked".to_string()),
        ),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => {
            abort.abort();
            Some(format!("did not finish within {} s (BENCH_PART_TIMEOUT_SECONDS)", part_timeout().as_secs()))
        }
    };
    let wall = started.elapsed();
    let mut motos = std::mem::take(&mut *MOTOS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    let (mut peaks, mut stops) = (Vec::new(), Vec::new());
    for moto in &mut motos {
        match moto.stopped_because() {
            Some(why) => stops.push(why),
            None => peaks.extend(moto.peak_rss_mb().await),
        }
    }
    drop(motos);
    if let Some(why) = failure {
        let stops = if stops.is_empty() { String::new() } else { format!(" ({})", stops.join("; ")) };
        rows.push(row(
            format!("part `{name}`: FAILED, the rows above are what it measured before"),
            format!("{why}{stops}"),
            "–",
            "–",
        ));
    }
    let memory = match peaks.iter().max() {
        Some(peak) => format!("; moto peak {peak} MB ({} server(s), cap {} MB each)", peaks.len(), moto_cap_mb()),
        None if stops.is_empty() => String::new(),
        None => "; moto stopped".to_string(),
    };
    rows.push(row(
        format!("part `{name}`: wall time{}", if memory.is_empty() { "" } else { ", emulator memory" }),
        format!("{:.1} s{memory}", wall.as_secs_f64()),
        "–",
        "–",
    ));
}

#[tokio::main]
async fn main() {
    keep_panics();
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let rows = Rows::default();
    let r = rows.clone();
    if wants("coldstart") {
        run_part(&rows, "coldstart", async move { coldstart::cold_starts(&r).await }).await;
    }
    for (name, dynamodb) in [("sync-embedded", false), ("sync-dynamodb", true)] {
        if wants("sync") || wants(name) {
            let r = rows.clone();
            run_part(&rows, name, async move {
                sync_cost::sync_cost(&r, dynamodb).await;
                Ok(())
            })
            .await;
        }
    }
    if wants("ratelimit") {
        let r = rows.clone();
        run_part(&rows, "ratelimit", async move {
            first_sync::first_sync_under_real_limit(&r).await;
            Ok(())
        })
        .await;
    }
    if wants("team") {
        let r = rows.clone();
        run_part(&rows, "team", async move {
            team::team_under_real_limit(&r).await;
            Ok(())
        })
        .await;
    }
    if wants("tick-scale") {
        let r = rows.clone();
        run_part(&rows, "tick-scale", async move {
            tick::tick_at_scale(&r).await;
            Ok(())
        })
        .await;
    }
    // The DynamoDB tick prices a job from the embedded run's job time and log volume too.
    let embedded_job = Arc::new(Mutex::new(None));
    if wants("tick") || wants("tick-embedded") {
        let (r, job) = (rows.clone(), embedded_job.clone());
        run_part(&rows, "tick-embedded", async move {
            let measured = tick::scheduled_tick(&r, false, None).await;
            *job.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(measured);
            Ok(())
        })
        .await;
    }
    if wants("tick") || wants("tick-dynamodb") {
        let r = rows.clone();
        let job = *embedded_job.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        run_part(&rows, "tick-dynamodb", async move {
            tick::scheduled_tick(&r, true, job).await;
            Ok(())
        })
        .await;
    }
    for (name, dynamodb) in [("webhook-embedded", false), ("webhook-dynamodb", true)] {
        if wants("webhook") || wants(name) {
            let r = rows.clone();
            run_part(&rows, name, async move {
                realtime::webhook_to_browser(&r, dynamodb).await;
                Ok(())
            })
            .await;
        }
    }
    if wants("fanout") {
        let r = rows.clone();
        run_part(&rows, "fanout", async move {
            realtime::fan_out(&r).await;
            Ok(())
        })
        .await;
    }
    if wants("privacy") {
        let r = rows.clone();
        run_part(&rows, "privacy", async move {
            privacy::privacy_cost(&r).await;
            Ok(())
        })
        .await;
    }

    println!(
        "\nMachine: {} cores, {}; {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::env::consts::ARCH,
        Utc::now().format("%Y-%m-%d")
    );
    println!("\n| measure | value | reference | ratio |\n|---|---|---|---|");
    for r in rows.all() {
        println!("| {} | {} | {} | {} |", r.measure, r.value, r.reference, r.ratio);
    }
}
