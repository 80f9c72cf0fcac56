//! Cold start and memory: each function's release binary started against a local Lambda
//! Runtime API, with its real configuration pointed at local stand-ins (moto for DynamoDB and
//! Secrets Manager, the simulator for Calendly). Measured: exec → first `next` (init), the
//! first invocation (event handed out → response posted), peak RSS (VmHWM) with its split
//! into the binary's pages and the heap, and, through a measuring proxy in front of the AWS
//! stand-ins, how much of the cold start was the function's own work rather than waiting for
//! AWS to answer.

use super::*;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One function's cold start.
#[derive(Clone, Debug)]
pub struct ColdStart {
    pub init: Duration,
    pub first_invocation: Duration,
    pub peak_rss_kib: u64,
    /// `RssFile` (the binary's and libraries' pages) and `RssAnon` (heap, stacks) after the
    /// first invocation, in KiB.
    pub rss_file_kib: u64,
    pub rss_anon_kib: u64,
    pub status: String,
    /// The wiring's phases as the function logged them (`*_ms` fields), in log order.
    pub phases: Vec<(String, f64)>,
}

#[derive(Default)]
struct Run {
    event: String,
    handed_out_at: Option<Instant>,
    responded_at: Option<Instant>,
    response: Option<String>,
}

#[derive(Clone)]
struct Emulator {
    run: Arc<Mutex<Run>>,
    done: Arc<Notify>,
}

async fn next(State(emulator): State<Emulator>) -> axum::response::Response {
    let event = {
        let mut run = emulator.run.lock().unwrap();
        if run.handed_out_at.is_some() {
            None
        } else {
            run.handed_out_at = Some(Instant::now());
            Some(run.event.clone())
        }
    };
    let Some(event) = event else {
        // The function asks for its second event: it is measured; hold it until it's killed.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("bench-request-1"));
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:eu-west-3:123456789012:function:bench"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (headers, event).into_response()
}

async fn respond(State(emulator): State<Emulator>, Path(_id): Path<String>, body: String) -> &'static str {
    {
        let mut run = emulator.run.lock().unwrap();
        run.responded_at = Some(Instant::now());
        run.response = Some(body);
    }
    emulator.done.notify_one();
    "{}"
}

async fn init_error(State(emulator): State<Emulator>, body: String) -> &'static str {
    {
        let mut run = emulator.run.lock().unwrap();
        run.responded_at = Some(Instant::now());
        run.response = Some(format!("init error: {body}"));
    }
    emulator.done.notify_one();
    "{}"
}

/// `(VmHWM, RssFile, RssAnon)` of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("RssFile:"), field("RssAnon:"))
}

/// Starts `binary` with `env` against a fresh Runtime API serving `event`; measures one cold start.
pub async fn measure(binary: &PathBuf, env: &HashMap<String, String>, event: String) -> Result<ColdStart, String> {
    let emulator =
        Emulator { run: Arc::new(Mutex::new(Run { event, ..Run::default() })), done: Arc::new(Notify::new()) };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or_default();
    // The function's JSON log lines: its cold start phases are in them.
    let stdout = child.stdout.take();
    let phases = tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut phases = Vec::new();
        let Some(stdout) = stdout else { return phases };
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&line) else { continue };
            for (key, value) in fields {
                if let (Some(name), Some(ms)) = (key.strip_suffix("_ms"), value.as_f64()) {
                    phases.push((name.to_string(), ms));
                }
            }
        }
        phases
    });
    let finished = tokio::time::timeout(Duration::from_secs(30), emulator.done.notified()).await;
    let (rss, rss_file_kib, rss_anon_kib) = memory_kib(pid);
    let _ = child.kill().await;
    server.abort();
    let phases =
        tokio::time::timeout(Duration::from_secs(1), phases).await.ok().and_then(Result::ok).unwrap_or_default();
    finished.map_err(|_| format!("{} did not answer within 30 s", binary.display()))?;

    let run = emulator.run.lock().unwrap();
    let handed_out = run.handed_out_at.ok_or("the function never asked for an event")?;
    let responded = run.responded_at.ok_or("the function never answered")?;
    let response = run.response.clone().unwrap_or_default();
    let status = serde_json::from_str::<serde_json::Value>(&response)
        .ok()
        .and_then(|v| v.get("statusCode").and_then(|s| s.as_i64()))
        .map(|s| s.to_string())
        .unwrap_or_else(|| if response.starts_with("init error") { response.clone() } else { "ok".into() });
    Ok(ColdStart {
        init: handed_out - started,
        first_invocation: responded - handed_out,
        peak_rss_kib: rss,
        rss_file_kib,
        rss_anon_kib,
        status,
        phases,
    })
}

pub(super) async fn cold_starts(rows: &Rows) -> Result<(), String> {
    let bin_dir = std::env::current_exe().map_err(|e| e.to_string())?.parent().ok_or("no bin dir")?.to_path_buf();
    let endpoint = fresh_moto().await;
    let sim = calendly_sim::CalendlySim::start(SimConfig::default(), 0).await.map_err(|e| e.to_string())?;

    // The real configuration: a table and a secret on moto, Calendly on the simulator.
    let store = local_stack::dynamo::test_store_on(&endpoint).await;
    let secrets = {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-3"))
            .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
            .http_client(shared::https::sdk_http_client())
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
        // Info for the wiring: its cold start phases are read from the log.
        ("RUST_LOG", "warn,shared::startup::wiring=info".to_string()),
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
            json!(shared::calendly::webhook_signature::signature_header(&signing_key, Utc::now().timestamp(), &body));
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
        ("sync-worker", sample("sync-worker.json")),
        ("webhook", webhook_event),
        ("ws-connect", sample("ws-connect.json").replace("REPLACED-BY-TESTS-WITH-A-FRESH-JWT", &jwt)),
        ("ws-disconnect", sample("ws-disconnect.json")),
    ];

    // The same secret read behind a 20 ms round trip, as a real one is on AWS.
    let slow_secrets = delaying_proxy(&endpoint, Duration::from_millis(20), BusyClock::default()).await?;
    let mut slow_env = env.clone();
    slow_env.insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), slow_secrets);
    // Every AWS call through a proxy that times how long the stand-ins take to answer: what is
    // left of the cold start is the function's own work.
    let aws_busy = BusyClock::default();
    let measured_aws = delaying_proxy(&endpoint, Duration::ZERO, aws_busy.clone()).await?;
    let mut measured_env = env.clone();
    for variable in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SECRETS_MANAGER"] {
        measured_env.insert(variable.into(), measured_aws.clone());
    }

    const RUNS: usize = 5;
    let mut hello = (Duration::ZERO, Duration::ZERO, 0u64);
    for (name, event) in functions {
        let binary = bin_dir.join(name);
        let Runs { init, first, rss, rss_file, rss_anon, status, phases, .. } =
            runs(&binary, &env, &event, RUNS, None).await?;
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        if name == "hello-lambda" {
            hello = (init, first, rss);
        }
        let (hello_init, hello_first, hello_rss) = hello;
        rows.push(row(
            format!("cold start `{name}`: init (exec → ready), p50 of {RUNS}"),
            ms(init),
            format!("hello world {} (goal ≤ 2×, stretch 1.5×)", ms(hello_init)),
            ratio(init.as_secs_f64(), hello_init.as_secs_f64()),
        ));
        rows.push(row(
            format!("cold start `{name}`: first invocation (answer {status})"),
            ms(first),
            format!("hello world {}", ms(hello_first)),
            ratio(first.as_secs_f64(), hello_first.as_secs_f64()),
        ));
        rows.push(row(
            format!("cold start `{name}`: init + first invocation"),
            ms(init + first),
            format!("hello world {} (goal ≤ 3×)", ms(hello_init + hello_first)),
            ratio((init + first).as_secs_f64(), (hello_init + hello_first).as_secs_f64()),
        ));
        if name != "hello-lambda" {
            // The same with and without writing metrics, runs interleaved (one of each in
            // turn) so neither variant gains from the page cache or the order: what the EMF
            // lines cost a cold start.
            let mut quiet_env = env.clone();
            quiet_env.insert("EMF_METRICS".into(), "off".into());
            let (mut loud_runs, mut quiet_runs) = (Vec::new(), Vec::new());
            for _ in 0..RUNS {
                loud_runs.push(runs(&binary, &env, &event, 1, None).await?);
                quiet_runs.push(runs(&binary, &quiet_env, &event, 1, None).await?);
            }
            let summary = |all: &[Runs]| {
                let init = median(all.iter().map(|r| r.init).collect());
                let first = median(all.iter().map(|r| r.first).collect());
                (init, first, all.iter().map(|r| r.rss).max().unwrap_or(0))
            };
            let ((init, first, rss), quiet) = (summary(&loud_runs), summary(&quiet_runs));
            let quiet = Runs { init: quiet.0, first: quiet.1, rss: quiet.2, ..quiet_runs.remove(0) };
            rows.push(row(
                format!("cold start `{name}`: with metrics, interleaved with runs without (init · first invocation · peak RSS)"),
                format!("{} · {} · {:.1} MB", ms(init), ms(first), rss as f64 / 1024.0),
                format!(
                    "without (EMF_METRICS=off) {} · {} · {:.1} MB; goal init ≤ 1.5×",
                    ms(quiet.init),
                    ms(quiet.first),
                    quiet.rss as f64 / 1024.0
                ),
                ratio(init.as_secs_f64(), quiet.init.as_secs_f64()),
            ));
            let measured = runs(&binary, &measured_env, &event, RUNS, Some(&aws_busy)).await?;
            rows.push(row(
                format!("cold start `{name}`: init + first invocation, own work (less AWS answering)"),
                ms(measured.own_work),
                format!("hello world {} (it waits on nothing)", ms(hello_init + hello_first)),
                ratio(measured.own_work.as_secs_f64(), (hello_init + hello_first).as_secs_f64()),
            ));
        }
        rows.push(row(
            format!("cold start `{name}`: peak RSS (binary pages · heap and stacks)"),
            format!(
                "{:.1} MB ({:.1} · {:.1})",
                rss as f64 / 1024.0,
                rss_file as f64 / 1024.0,
                rss_anon as f64 / 1024.0
            ),
            format!("hello world {:.1} MB; goal ≤ 8 MB", hello_rss as f64 / 1024.0),
            ratio(rss as f64, hello_rss as f64),
        ));
        if !phases.is_empty() {
            let text = phases.iter().map(|(n, v)| format!("{n} {v:.2}")).collect::<Vec<_>>().join(" · ");
            rows.push(row(format!("cold start `{name}`: where init goes (ms, last run)"), text, "–", "–"));
        }
        if name != "hello-lambda" && name != "ws-disconnect" {
            let Runs { init: slow_init, first: slow_first, .. } = runs(&binary, &slow_env, &event, RUNS, None).await?;
            rows.push(row(
                format!("cold start `{name}`: init + first invocation, secret read 20 ms away"),
                format!("{} (init {})", ms(slow_init + slow_first), ms(slow_init)),
                format!("hello world {}", ms(hello_init + hello_first)),
                ratio((slow_init + slow_first).as_secs_f64(), (hello_init + hello_first).as_secs_f64()),
            ));
        }
        rows.push(row(
            format!("binary `{name}` (host {}, release)", std::env::consts::ARCH),
            format!("{:.1} MB", size as f64 / 1_048_576.0),
            "goal ≤ 10 MB (arm64 bootstrap: see scripts/build-lambdas)".to_string(),
            "–".to_string(),
        ));
    }
    Ok(())
}

/// What `runs` found: p50s, the peak RSS and its split, the last run's status and phases.
struct Runs {
    init: Duration,
    first: Duration,
    /// p50 of init + first invocation less the time the AWS stand-ins were answering (only
    /// when the runs went through a measuring proxy).
    own_work: Duration,
    rss: u64,
    rss_file: u64,
    rss_anon: u64,
    status: String,
    phases: Vec<(String, f64)>,
}

/// `count` cold starts of `binary`; `aws_busy` is the measuring proxy's clock when the AWS
/// endpoints of `env` go through one.
async fn runs(
    binary: &PathBuf,
    env: &HashMap<String, String>,
    event: &str,
    count: usize,
    aws_busy: Option<&BusyClock>,
) -> Result<Runs, String> {
    let (mut inits, mut firsts, mut own) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    let (mut rss, mut rss_file, mut rss_anon) = (0, 0, 0);
    for _ in 0..count {
        if let Some(clock) = aws_busy {
            clock.reset();
        }
        let run = coldstart::measure(binary, env, event.to_string()).await?;
        inits.push(run.init);
        firsts.push(run.first_invocation);
        let waited = aws_busy.map_or(Duration::ZERO, BusyClock::total);
        own.push((run.init + run.first_invocation).saturating_sub(waited));
        if run.peak_rss_kib >= rss {
            (rss, rss_file, rss_anon) = (run.peak_rss_kib, run.rss_file_kib, run.rss_anon_kib);
        }
        last = Some(run);
    }
    let last = last.ok_or("no run")?;
    Ok(Runs {
        init: median(inits),
        first: median(firsts),
        own_work: median(own),
        rss,
        rss_file,
        rss_anon,
        status: last.status,
        phases: last.phases,
    })
}

/// Wall time during which at least one request was in flight through a proxy (overlapping
/// requests count once: it is the time the caller could have been waiting).
#[derive(Clone, Default)]
struct BusyClock(Arc<Mutex<Busy>>);

#[derive(Default)]
struct Busy {
    in_flight: usize,
    since: Option<Instant>,
    total: Duration,
}

impl BusyClock {
    fn start(&self) {
        let mut busy = self.0.lock().unwrap();
        if busy.in_flight == 0 {
            busy.since = Some(Instant::now());
        }
        busy.in_flight += 1;
    }

    fn end(&self) {
        let mut busy = self.0.lock().unwrap();
        busy.in_flight = busy.in_flight.saturating_sub(1);
        if busy.in_flight == 0
            && let Some(since) = busy.since.take()
        {
            busy.total += since.elapsed();
        }
    }

    fn reset(&self) {
        let mut busy = self.0.lock().unwrap();
        busy.total = Duration::ZERO;
    }

    fn total(&self) -> Duration {
        self.0.lock().unwrap().total
    }
}

/// A reverse proxy to `upstream` that answers every request `delay` late (a remote service)
/// and keeps, on `busy`, the time it had requests in flight.
async fn delaying_proxy(upstream: &str, delay: Duration, busy: BusyClock) -> Result<String, String> {
    let client = shared::https::client();
    let upstream = upstream.trim_end_matches('/').to_string();
    let app = Router::new().fallback(move |request: axum::extract::Request| {
        let (client, upstream, busy) = (client.clone(), upstream.clone(), busy.clone());
        async move {
            busy.start();
            let answer = forward(&client, &upstream, delay, request).await;
            busy.end();
            answer
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// `request` sent on to `upstream` after `delay`; its answer.
async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    delay: Duration,
    request: axum::extract::Request,
) -> axum::response::Response {
    tokio::time::sleep(delay).await;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut forward = client.request(parts.method, format!("{upstream}{}", parts.uri));
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            forward = forward.header(name, value);
        }
    }
    match forward.body(body).send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
