//! `bench`: measures what Rust on Lambda is chosen for, each figure beside its reference, and
//! prints one table. Run it with `scripts/bench` (it builds the release binaries first).
//! Benchmarks report; they never fail on a time.

mod coldstart;

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

async fn cold_starts(rows: &mut Vec<Row>) -> Result<(), String> {
    let bin_dir = std::env::current_exe().map_err(|e| e.to_string())?.parent().ok_or("no bin dir")?.to_path_buf();
    let endpoint = local_stack::dynamo::test_endpoint().await;
    let sim = calendly_sim::CalendlySim::start(SimConfig::default(), 0).await.map_err(|e| e.to_string())?;

    // The real configuration: a table and a secret on moto, Calendly on the simulator.
    let store = local_stack::dynamo::test_store().await;
    let secrets = {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-3"))
            .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
            .endpoint_url(&endpoint)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    };
    let jwt_secret = "bench-jwt-secret-of-at-least-32-bytes";
    let signing_key = sim.config().webhook_signing_key.clone();
    let secret = json!({
        "calendly_client_secret": sim.config().client_secret,
        "calendly_webhook_signing_key": signing_key,
        "encryption_key": "ab".repeat(32),
        "jwt_secret": jwt_secret,
    });
    let arn = secrets
        .create_secret()
        .name(format!("bench/{}", shared::crypto::random_token(6)))
        .secret_string(secret.to_string())
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .arn
        .unwrap_or_default();
    let env: HashMap<String, String> = [
        ("AWS_REGION", "eu-west-3".to_string()),
        ("AWS_ACCESS_KEY_ID", "local".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".to_string()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_string()),
        ("RUST_LOG", "warn".to_string()),
        ("TABLE_NAME", store.table().to_string()),
        ("SECRET_ARN", arn),
        ("CALENDLY_CLIENT_ID", sim.config().client_id.clone()),
        ("CALENDLY_API_BASE_URL", sim.base_url().to_string()),
        ("CALENDLY_AUTH_BASE_URL", sim.base_url().to_string()),
        ("CALENDLY_REDIRECT_URI", "https://api.velvena.example/auth/calendly/callback".to_string()),
        ("WEBHOOK_BASE_URL", "https://api.velvena.example".to_string()),
        ("WEBSOCKET_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9/local".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let jwt = shared::auth::JwtVerifier::new(jwt_secret).issue(
        "bench-user",
        "bench-org",
        Utc::now() + ChronoDuration::hours(1),
    );
    let status_event = sample("api-get-calendly-status.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &jwt);
    let http_event = |method: &str, path: &str, body: Option<&str>| {
        let mut event: Value = serde_json::from_str(&status_event).unwrap();
        event["routeKey"] = json!(format!("{method} {path}"));
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
        if let Some(b) = body {
            event["body"] = json!(b);
            event["headers"]["content-type"] = json!("application/json");
        }
        event.to_string()
    };
    let webhook_event = {
        let mut event: Value = serde_json::from_str(&sample("webhook-invitee-created.json")).unwrap();
        let body = base64::engine::general_purpose::STANDARD.decode(event["body"].as_str().unwrap()).unwrap();
        event["headers"]["calendly-webhook-signature"] =
            json!(shared::webhook_signature::signature_header(&signing_key, Utc::now().timestamp(), &body));
        event.to_string()
    };
    let functions: Vec<(&str, String)> = vec![
        ("hello-lambda", status_event.clone()),
        ("api", status_event.clone()),
        (
            "oauth-callback",
            http_event("POST", "/auth/calendly/callback", Some("{\"code\":\"c\",\"state\":\"unknown\"}")),
        ),
        ("sync-manual", http_event("POST", "/calendly/sync", None)),
        ("sync-scheduled", sample("sync-scheduled.json")),
        ("webhook", webhook_event),
        ("ws-connect", sample("ws-connect.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &jwt)),
        ("ws-disconnect", sample("ws-disconnect.json")),
    ];

    const RUNS: usize = 5;
    let mut hello_init = Duration::ZERO;
    let mut hello_rss = 0u64;
    for (name, event) in functions {
        let binary = bin_dir.join(name);
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut rss = 0;
        let mut status = String::new();
        for _ in 0..RUNS {
            let run = coldstart::measure(&binary, &env, event.clone()).await?;
            inits.push(run.init);
            firsts.push(run.first_invocation);
            rss = rss.max(run.peak_rss_kib);
            status = run.status;
        }
        let (init, first) = (median(inits), median(firsts));
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        if name == "hello-lambda" {
            hello_init = init;
            hello_rss = rss;
        }
        rows.push(row(
            format!("cold start `{name}`: init (exec → ready), p50 of {RUNS}"),
            ms(init),
            format!("hello world {} (goal ≤ 1.5×)", ms(hello_init)),
            ratio(init.as_secs_f64(), hello_init.as_secs_f64()),
        ));
        rows.push(row(
            format!("cold start `{name}`: first invocation (answer {status})"),
            ms(first),
            "–".to_string(),
            "–".to_string(),
        ));
        rows.push(row(
            format!("cold start `{name}`: peak RSS"),
            format!("{:.1} MB", rss as f64 / 1024.0),
            format!("hello world {:.1} MB; goal ≤ 32 MB", hello_rss as f64 / 1024.0),
            ratio(rss as f64, hello_rss as f64),
        ));
        rows.push(row(
            format!("binary `{name}` (host {}, release)", std::env::consts::ARCH),
            format!("{:.1} MB", size as f64 / 1_048_576.0),
            "goal ≤ 10 MB (arm64 bootstrap: see scripts/build-lambdas)".to_string(),
            "–".to_string(),
        ));
    }
    Ok(())
}

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
    let start = stack.services.start_connect(&caller).await.expect("connect starts");
    let sim = stack.simulator.as_ref().unwrap();
    let code = sim.approve(host, &start.authorize_url).expect("approved");
    stack.services.complete_connect(&code, &start.state, &caller).await.expect("connected");
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

async fn sync_cost(rows: &mut Vec<Row>, dynamodb: bool) {
    // moto answers each query by scanning its table (and GSI) in Python, so its time grows
    // with the table: the DynamoDB run uses fewer bookings; requests per booking are what
    // it measures.
    let default = if dynamodb { 200 } else { 1000 };
    let bookings: usize = std::env::var("BENCH_SYNC_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    #[allow(non_snake_case)]
    let BOOKINGS = bookings;
    const LATENCY: Duration = Duration::from_millis(50);
    let label = if dynamodb { "DynamoDB (moto)" } else { "embedded" };
    let stack = stack(dynamodb, 1_000_000).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let host = sim.add_user("Bench Host", "bench@host.example");
    connect(&stack, "bench-org", &host).await;
    let specs: Vec<BookingSpec> = (0..BOOKINGS)
        .map(|i| {
            let start = Utc::now() + ChronoDuration::hours(2 + i as i64 * 3);
            BookingSpec::new(&format!("Invitee {i}"), &format!("invitee{i}@example.com"), "Découverte 30min", start)
        })
        .collect();
    let booked = sim.seed_bookings(&host, specs);
    sim.set_latency(LATENCY);

    let pages = BOOKINGS.div_ceil(100) as u64;
    let lat = LATENCY.as_secs_f64();
    let first = timed_sync(&stack, "bench-org").await;
    let floor = pages + BOOKINGS as u64;
    let min_wall = (pages as f64 + (BOOKINGS as f64 / 8.0).ceil()) * lat;
    rows.push(row(
        format!("sync {BOOKINGS} new bookings, 50 ms/request, {label}: Calendly requests"),
        format!("{}{}", first.calendly_requests, dynamo_text(first.dynamo)),
        format!("floor {floor} ({pages} pages + 1 invitee list per event)"),
        ratio(first.calendly_requests as f64, floor as f64),
    ));
    rows.push(row(
        format!("sync {BOOKINGS} new bookings, {label}: wall time"),
        format!("{:.2} s", first.wall.as_secs_f64()),
        format!("{min_wall:.2} s (pages in sequence, 8 invitee lists at once)"),
        ratio(first.wall.as_secs_f64(), min_wall),
    ));
    let again = timed_sync(&stack, "bench-org").await;
    rows.push(row(
        format!("unchanged re-sync of {BOOKINGS}, {label}: Calendly requests"),
        format!("{}{}", again.calendly_requests, dynamo_text(again.dynamo)),
        format!("{pages} list requests, 0 invitee requests, 0 writes"),
        ratio(again.calendly_requests as f64, pages as f64),
    ));
    // One more booking, by an email that already has a prospect: a note appended.
    sim.seed_bookings(
        &host,
        vec![BookingSpec::new("Invitee 0", "invitee0@example.com", "Suivi", Utc::now() + ChronoDuration::minutes(90))],
    );
    let known = timed_sync(&stack, "bench-org").await;
    let pages = (BOOKINGS + 1).div_ceil(100) as u64;
    rows.push(row(
        format!("re-sync with 1 new booking by a known email, {label}: Calendly requests"),
        format!("{}{}", known.calendly_requests, dynamo_text(known.dynamo)),
        format!("floor {} (pages + 1 invitee list)", pages + 1),
        ratio(known.calendly_requests as f64, (pages + 1) as f64),
    ));
    for b in booked.iter().step_by((BOOKINGS / 10).max(1)).take(10) {
        sim.cancel(b, "bench").await;
    }
    let changed = timed_sync(&stack, "bench-org").await;
    rows.push(row(
        format!("re-sync with 10 canceled, {label}: Calendly requests"),
        format!("{}{} ({:.2} s)", changed.calendly_requests, dynamo_text(changed.dynamo), changed.wall.as_secs_f64()),
        format!("floor {}", pages + 10),
        ratio(changed.calendly_requests as f64, (pages + 10) as f64),
    ));
}

/// A first sync of a large account behind Calendly's real limit (500 requests a minute, 60-s
/// windows): the callback's answer time, then the job to its end.
async fn first_sync_under_real_limit(rows: &mut Vec<Row>) {
    let bookings: usize = std::env::var("BENCH_LIMIT_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let stack = stack(false, 500).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let host = sim.add_user("Bench Host", "bench@host.example");
    let specs: Vec<BookingSpec> = (0..bookings)
        .map(|i| {
            BookingSpec::new(
                "Invitee",
                &format!("i{i}@example.com"),
                "Démo",
                Utc::now() + ChronoDuration::hours(2 + i as i64),
            )
        })
        .collect();
    sim.seed_bookings(&host, specs);
    sim.set_latency(Duration::from_millis(50));
    let caller = shared::auth::Caller {
        user_id: shared::domain::UserId::new("bench-user"),
        organization_id: OrganizationId::new("bench-org"),
        expires_at: Utc::now() + ChronoDuration::days(1),
    };
    let start = stack.services.start_connect(&caller).await.expect("connect starts");
    let code = sim.approve(&host, &start.authorize_url).expect("approved");
    let started = Instant::now();
    let outcome = stack.services.complete_connect(&code, &start.state, &caller).await.expect("connected");
    let callback = started.elapsed();
    let job = stack.wait_for_sync("bench-org", Duration::from_secs(3600)).await.expect("the initial sync ends");
    let wall = started.elapsed();
    let requests = sim.api_request_count();
    let refused = sim.rate_limited_count();
    // Every window but the last is a full minute; the last one's requests take no time to speak of.
    let floor = (requests.div_ceil(500).saturating_sub(1) * 60) as f64;
    rows.push(row(
        format!("connect an account with {bookings} bookings under 500 requests/min: callback answer"),
        format!("{} (sync {})", ms(callback), outcome.sync.as_ref().map_or("not recorded", |job| job.state.as_str())),
        "< 5 s, whatever the account's size",
        ratio(callback.as_secs_f64(), 5.0),
    ));
    rows.push(row(
        format!("first sync of {bookings} bookings under 500 requests/min: job wall time"),
        format!(
            "{:.1} s, {requests} requests, {refused} answered 429 ({:.2}%), {} slices, {} prospects",
            wall.as_secs_f64(),
            refused as f64 * 100.0 / requests.max(1) as f64,
            job.slices,
            job.report.prospects_created
        ),
        format!("floor {floor:.0} s ({requests} requests in 60-s windows of 500); ≤ 1.5× and ≤ 1% × 429"),
        ratio(wall.as_secs_f64(), floor),
    ));
}

/// One scheduled tick of `orgs` due organizations with nothing new: how fast the queue drains,
/// and what one organization's sync costs (counted here, priced below).
async fn scheduled_tick(rows: &mut Vec<Row>, dynamodb: bool, embedded_job_secs: Option<f64>) -> f64 {
    // moto keeps growing (~15 MB per organization set up here) and serializes every request:
    // its run uses fewer organizations.
    let default = if dynamodb { 300 } else { 2000 };
    let orgs: usize = std::env::var("BENCH_TICK_ORGS").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let workers: usize = std::env::var("BENCH_TICK_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let label = if dynamodb { "DynamoDB (moto)" } else { "embedded" };
    let env = HashMap::from([("SYNC_WORKERS".to_string(), workers.to_string())]);
    let stack = stack_with(dynamodb, 1_000_000, env).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let set_up = Instant::now();
    let names: Vec<String> = (0..orgs).map(|i| format!("tick-org-{i}")).collect();
    futures::stream::iter(names.iter().enumerate())
        .for_each_concurrent(32, |(i, org)| {
            let (stack, sim) = (&stack, &sim);
            async move {
                let host = sim.add_user(&format!("Host {i}"), &format!("host{i}@example.com"));
                sim.seed_bookings(
                    &host,
                    vec![BookingSpec::new(
                        "Invitee",
                        &format!("t{i}@example.com"),
                        "Démo",
                        Utc::now() + ChronoDuration::days(2),
                    )],
                );
                connect(stack, org, &host).await;
            }
        })
        .await;
    eprintln!("bench: {orgs} organizations connected and synced in {:.1} s ({label})", set_up.elapsed().as_secs_f64());

    // Calendly answers in ~100 ms from here; the tick is measured with that latency.
    sim.set_latency(Duration::from_millis(100));
    let clock: &shared::clock::SystemClock = &stack.clock;
    clock.advance(ChronoDuration::minutes(31));
    sim.advance_clock(ChronoDuration::minutes(31));
    let (calendly_before, dynamo_before) =
        (sim.api_request_count(), stack.dynamo.as_ref().map(|d| d.metrics().snapshot()));
    let started = Instant::now();
    let run = stack.services.run_scheduled_syncs().await.expect("the tick runs");
    let tick = started.elapsed();
    let mut durations = Vec::with_capacity(orgs);
    for org in &names {
        let job = stack.wait_for_sync(org, Duration::from_secs(3600)).await.expect("the job ends");
        assert_eq!(job.trigger, shared::domain::SyncTrigger::Scheduled, "{org} was not synced by the tick");
        if let (Some(s), Some(f)) = (job.started_at, job.finished_at) {
            durations.push((f - s).to_std().unwrap_or_default());
        }
    }
    let drained = started.elapsed();
    let per_org_calendly = (sim.api_request_count() - calendly_before) as f64 / orgs as f64;
    rows.push(row(
        format!("one scheduled tick of {orgs} due organizations, {label}: tick (queues them all)"),
        format!("{} ({} queued)", ms(tick), run["queued"]),
        "seconds at any scale (no cap)",
        "–",
    ));
    rows.push(row(
        format!("one scheduled tick of {orgs} due organizations, {label}: all synced"),
        format!(
            "{:.1} s = {:.0} organizations/s with {workers} jobs at once; {:.1} Calendly requests each (100 ms per request)",
            drained.as_secs_f64(),
            orgs as f64 / drained.as_secs_f64(),
            per_org_calendly
        ),
        "300 in < 2 min",
        ratio(drained.as_secs_f64() * 300.0 / orgs as f64, 120.0),
    ));
    let mean_job = durations.iter().map(Duration::as_secs_f64).sum::<f64>() / durations.len().max(1) as f64;
    if let (Some(before), Some(d)) = (dynamo_before, stack.dynamo.as_ref()) {
        let now = d.metrics().snapshot();
        let per = |a: u64, b: u64| (a - b) as f64 / orgs as f64;
        let (reads, writes, transactions) = (per(now.0, before.0), per(now.1, before.1), per(now.2, before.2));
        let tick_share = tick.as_secs_f64() / orgs as f64;
        cost_row(rows, "measured on moto", reads, writes, transactions, mean_job, tick_share);
        // moto serializes every request, so its jobs wait on one lock: also price a job as long
        // as the embedded run's plus 5 ms per DynamoDB request (DynamoDB's usual latency).
        if let Some(embedded) = embedded_job_secs {
            let job = embedded + (reads + writes + transactions) * 0.005;
            cost_row(
                rows,
                "embedded run's job time + 5 ms per DynamoDB request",
                reads,
                writes,
                transactions,
                job,
                0.0,
            );
        }
    }
    mean_job
}

/// AWS cost of keeping one organization in sync for a month at the default 30-minute interval,
/// from what one scheduled sync was counted to use. On-demand prices, us-east-1, as published
/// in Nov 2026 (DynamoDB after its Nov 2024 on-demand price cut):
/// Lambda arm64 $0.0000133334 per GB-s and $0.20 per million requests; SQS standard $0.40 per
/// million requests; DynamoDB on-demand $0.625 per million write request units and $0.125 per
/// million read request units. Each write counts one WRU, each strongly consistent read one
/// RRU (items are under 1 KB), a transaction two WRU per item (none when nothing changed).
fn cost_row(
    rows: &mut Vec<Row>,
    timing: &str,
    reads: f64,
    writes: f64,
    transactions: f64,
    job_secs: f64,
    tick_secs: f64,
) {
    const SYNCS_PER_MONTH: f64 = 48.0 * 30.0;
    const GB: f64 = 128.0 / 1024.0;
    const LAMBDA_GB_S: f64 = 0.000_013_333_4;
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    const SQS_REQUEST: f64 = 0.40 / 1e6;
    const WRU: f64 = 0.625 / 1e6;
    const RRU: f64 = 0.125 / 1e6;
    // Worker: a whole invocation per sync (no credit for batches of 10 sharing one), the tick's
    // share, and SQS: a tenth of a SendMessageBatch, one receive and one delete per message.
    let lambda = (job_secs + tick_secs) * GB * LAMBDA_GB_S + 2.0 * LAMBDA_REQUEST;
    let sqs = (0.1 + 1.0 + 1.0) * SQS_REQUEST;
    let dynamodb = reads * RRU + (writes + 2.0 * transactions) * WRU;
    let month = SYNCS_PER_MONTH * (lambda + sqs + dynamodb);
    rows.push(row(
        format!("AWS cost per organization-month, 30-min interval (1,440 syncs, nothing new; {timing})"),
        format!(
            "${month:.4}: Lambda ${:.4} ({:.0} ms/sync at 128 MB), SQS ${:.4}, DynamoDB ${:.4} ({reads:.1} reads, {writes:.1} writes per sync)",
            SYNCS_PER_MONTH * lambda,
            job_secs * 1000.0,
            SYNCS_PER_MONTH * sqs,
            SYNCS_PER_MONTH * dynamodb
        ),
        "us-east-1 on-demand: Lambda arm64 $0.0000133334/GB-s + $0.20/M req; SQS $0.40/M; DynamoDB $0.625/M WRU, $0.125/M RRU",
        "–",
    ));
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

async fn webhook_to_browser(rows: &mut Vec<Row>, dynamodb: bool) {
    // On moto, each request scans the growing table in Python: fewer deliveries there.
    let deliveries = if dynamodb { 200 } else { 1000 };
    #[allow(non_snake_case)]
    let DELIVERIES = deliveries;
    let label = if dynamodb { "DynamoDB (moto)" } else { "embedded" };
    let stack = stack(dynamodb, 1_000_000).await;
    let sim = stack.simulator.clone().unwrap();
    let host = sim.add_user("Bench Host", "bench@host.example");
    connect(&stack, "bench-org", &host).await;
    sim.set_webhook_deliveries(false);
    let integration = stack.store.get_integration(&OrganizationId::new("bench-org")).await.unwrap().unwrap();
    let url = format!("{}/calendly/webhook/{}", stack.url(), integration.id);
    let mut socket = browser(&stack, "bench-org").await;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(DELIVERIES);
    for i in 0..DELIVERIES {
        let spec =
            BookingSpec::new("Invitee", &format!("w{i}@example.com"), "Démo", Utc::now() + ChronoDuration::days(1));
        let booked: Booked = sim.book(&host, spec).await;
        let (body, header) = sim.signed_delivery("invitee.created", &booked, Utc::now());
        let started = Instant::now();
        let response = http.post(&url).header("calendly-webhook-signature", header).body(body).send().await.unwrap();
        assert!(response.status().is_success());
        wait_for(&mut socket, "prospect:").await.expect("the browser hears of it");
        latencies.push(started.elapsed());
        // The notification that follows is drained by the next wait.
    }
    latencies.sort();
    rows.push(row(
        format!("webhook → browser `prospect:*`, {DELIVERIES} deliveries, {label}: p50"),
        ms(percentile(&latencies, 0.5)),
        "–".to_string(),
        "–".to_string(),
    ));
    rows.push(row(
        format!("webhook → browser, {label}: p99"),
        ms(percentile(&latencies, 0.99)),
        if dynamodb { "–".to_string() } else { "goal ≤ 50 ms".to_string() },
        if dynamodb { "–".to_string() } else { ratio(percentile(&latencies, 0.99).as_secs_f64(), 0.050) },
    ));
}

async fn fan_out(rows: &mut Vec<Row>) {
    const CONNECTIONS: usize = 1000;
    let stack = stack(false, 1_000_000).await;
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        sockets.push(browser(&stack, "bench-org").await);
    }
    let http = reqwest::Client::new();
    let token = stack.jwt("bench-user", "bench-org");
    // Reference: the same push to a single connection.
    let mut single = browser(&stack, "solo-org").await;
    let solo_token = stack.jwt("bench-user", "solo-org");
    let started = Instant::now();
    http.post(format!("{}/prospects", stack.url()))
        .bearer_auth(&solo_token)
        .json(&json!({ "email": "solo@example.com" }))
        .send()
        .await
        .unwrap();
    wait_for(&mut single, "prospect:created").await.unwrap();
    let one = started.elapsed();

    let started = Instant::now();
    http.post(format!("{}/prospects", stack.url()))
        .bearer_auth(&token)
        .json(&json!({ "email": "all@example.com" }))
        .send()
        .await
        .unwrap();
    let received = futures::future::join_all(sockets.iter_mut().map(|s| wait_for(s, "prospect:created"))).await;
    let all = started.elapsed();
    let count = received.iter().filter(|r| r.is_some()).count();
    rows.push(row(
        format!("fan-out: one message to {CONNECTIONS} connections, last received ({count} received)"),
        ms(all),
        format!("1 connection: {}; goal ≤ 1 s", ms(one)),
        ratio(all.as_secs_f64(), 1.0),
    ));
}

#[tokio::main]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let mut rows = Vec::new();
    if wants("coldstart")
        && let Err(e) = cold_starts(&mut rows).await
    {
        rows.push(row("cold start", format!("failed: {e}"), "–", "–"));
    }
    if wants("sync") || wants("sync-embedded") {
        sync_cost(&mut rows, false).await;
    }
    if wants("sync") || wants("sync-dynamodb") {
        sync_cost(&mut rows, true).await;
    }
    if wants("ratelimit") {
        first_sync_under_real_limit(&mut rows).await;
    }
    let mut embedded_job = None;
    if wants("tick") || wants("tick-embedded") {
        embedded_job = Some(scheduled_tick(&mut rows, false, None).await);
    }
    if wants("tick") || wants("tick-dynamodb") {
        scheduled_tick(&mut rows, true, embedded_job).await;
    }
    if wants("webhook") {
        webhook_to_browser(&mut rows, false).await;
        webhook_to_browser(&mut rows, true).await;
    }
    if wants("fanout") {
        fan_out(&mut rows).await;
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
