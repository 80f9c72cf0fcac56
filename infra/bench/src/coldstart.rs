//! Cold start and memory: each function's release binary started against a local Lambda
//! Runtime API, with its real configuration pointed at local stand-ins (moto for DynamoDB and
//! Secrets Manager, the simulator for Calendly). Measured: exec → first `next` (init), the
//! first invocation (event handed out → response posted), and peak RSS (VmHWM).

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
    pub status: String,
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

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or_default();
    let finished = tokio::time::timeout(Duration::from_secs(30), emulator.done.notified()).await;
    let rss = peak_rss_kib(pid);
    let _ = child.kill().await;
    server.abort();
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
    Ok(ColdStart { init: handed_out - started, first_invocation: responded - handed_out, peak_rss_kib: rss, status })
}
