//! Every function as deployed: its binary (the one the test command built) started under a
//! real Lambda Runtime API emulator (`cargo lambda watch --only-lambda-apis`), with exactly the
//! environment `template.yaml` gives it (intrinsics resolved to local resources: the table,
//! the queue and the secret on moto), nothing from this process's environment, and invoked with
//! each kind of event the template wires to it. A variable the template forgets fails here.

use serde_json::{Value, json};
use serde_norway::Value as Yaml;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const SIGNING_KEY: &str = "runtime-test-signing-key";
const JWT_SECRET: &str = "runtime-test-jwt-secret-of-32-bytes-or-more";

fn template() -> Yaml {
    serde_norway::from_str(&std::fs::read_to_string(format!("{WORKSPACE}/template.yaml")).unwrap()).unwrap()
}

/// One value of the template, resolved: `None` for `AWS::NoValue`. Anything the test can't
/// resolve fails it (a new reference needs a local stand-in here).
fn resolve(value: &Yaml, names: &HashMap<String, String>, conditions: &HashMap<&str, bool>) -> Option<String> {
    let name = |n: &str| names.get(n).cloned().unwrap_or_else(|| panic!("the test resolves no {n}"));
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Tagged(tagged) => match tagged.tag.to_string().as_str() {
            "!Ref" if tagged.value.as_str() == Some("AWS::NoValue") => None,
            "!Ref" | "!GetAtt" => Some(name(tagged.value.as_str().unwrap())),
            "!Sub" => {
                let mut text = tagged.value.as_str().unwrap().to_string();
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}').unwrap();
                    let resolved = name(&text[start + 2..end]);
                    text.replace_range(start..=end, &resolved);
                }
                Some(text)
            }
            "!If" => {
                let parts = tagged.value.as_sequence().unwrap();
                let holds = conditions[parts[0].as_str().unwrap()];
                resolve(&parts[if holds { 1 } else { 2 }], names, conditions)
            }
            other => panic!("the test resolves no {other}"),
        },
        other => panic!("unexpected template value {other:?}"),
    }
}

/// The environment the template gives the function whose binary is `binary`.
fn template_environment(binary: &str, names: &HashMap<String, String>) -> HashMap<String, String> {
    let t = template();
    let conditions =
        HashMap::from([("HasFrontendUrl", false), ("HasAlarmTopic", false), ("SetsApiGatewayLoggingRole", true)]);
    let function = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::Serverless::Function" && r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .unwrap_or_else(|| panic!("no function {binary} in the template"));
    let mut env = HashMap::new();
    let layers =
        [&t["Globals"]["Function"]["Environment"]["Variables"], &function["Properties"]["Environment"]["Variables"]];
    for variables in layers {
        for (key, value) in variables.as_mapping().into_iter().flatten() {
            let key = key.as_str().unwrap().to_string();
            match resolve(value, names, &conditions) {
                Some(v) => env.insert(key, v),
                None => env.remove(&key),
            };
        }
    }
    env
}

/// A function binary running under its own Runtime API emulator; both end when dropped.
struct Deployed {
    emulator: tokio::process::Child,
    function: tokio::process::Child,
    invocations: String,
    http: reqwest::Client,
    /// What the function wrote to stdout (its JSON logs and EMF lines).
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Deployed {
    async fn start(binary: &str, names: &HashMap<String, String>, endpoint: &str) -> Self {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from(WORKSPACE).join("target"), PathBuf::from);
        let path = target.join("debug").join(binary);
        assert!(path.exists(), "{path:?} is missing: build the workspace first (cargo build --workspace)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let emulator = tokio::process::Command::new(format!("{WORKSPACE}/.venv/bin/cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(WORKSPACE)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cargo-lambda is installed (scripts/install-test-deps)");
        let http = shared::https::client();
        let runtime = format!("http://127.0.0.1:{port}");
        for attempt in 0.. {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            assert!(attempt < 200, "the Runtime API emulator did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut env = template_environment(binary, names);
        let memory = template()["Globals"]["Function"]["MemorySize"].as_u64().unwrap().to_string();
        // What Lambda itself sets, and the local endpoints standing in for AWS's.
        env.extend([
            (String::from("AWS_LAMBDA_RUNTIME_API"), format!("http://127.0.0.1:{port}/.rt")),
            (String::from("AWS_LAMBDA_FUNCTION_NAME"), String::from("_")),
            (String::from("AWS_LAMBDA_FUNCTION_VERSION"), String::from("1")),
            (String::from("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), memory),
            (String::from("AWS_LAMBDA_LOG_GROUP_NAME"), format!("/aws/lambda/{binary}")),
            (String::from("AWS_LAMBDA_LOG_STREAM_NAME"), String::from("local")),
            (String::from("AWS_REGION"), String::from("eu-west-3")),
            (String::from("AWS_ACCESS_KEY_ID"), String::from("local")),
            (String::from("AWS_SECRET_ACCESS_KEY"), String::from("local")),
            (String::from("AWS_ENDPOINT_URL_DYNAMODB"), endpoint.to_string()),
            (String::from("AWS_ENDPOINT_URL_SQS"), endpoint.to_string()),
            (String::from("AWS_ENDPOINT_URL_SECRETS_MANAGER"), endpoint.to_string()),
        ]);
        let mut function = tokio::process::Command::new(&path)
            .env_clear()
            .envs(&env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = function.stdout.take().unwrap();
        let kept = stdout.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(lines).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Self { emulator, function, invocations: format!("{runtime}/2015-03-31/functions/_/invocations"), http, stdout }
    }

    /// What the function wrote to stdout, once a line is `wanted` (or after 5 s). The function
    /// writes its logs and metrics before it answers, but this process reads its stdout on a
    /// task of its own, which may not have read them yet when the answer arrives.
    async fn lines_with(&self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.stdout.lock().unwrap().clone();
            if lines.iter().any(|l| wanted(l)) || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The EMF documents the function wrote, once one of them is `wanted` (or after 5 s).
    async fn metrics_with(&self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let emf = |line: &str| serde_json::from_str::<Value>(line).ok().filter(|v| v.get("_aws").is_some());
        let lines = self.lines_with(|line| emf(line).is_some_and(|v| wanted(&v))).await;
        lines.iter().filter_map(|l| emf(l)).collect()
    }

    async fn invoke(&self, event: &Value) -> Value {
        let reply =
            self.http.post(&self.invocations).json(event).timeout(Duration::from_secs(30)).send().await.unwrap();
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "the invocation failed ({status}): {body}");
        body
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = self.function.start_kill();
        let _ = self.emulator.start_kill();
    }
}

fn event(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{WORKSPACE}/events/{file}")).unwrap()).unwrap()
}

fn http_event(method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let mut e = event("api-get-calendly-status.json");
    e["routeKey"] = json!(format!("{method} {path}"));
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    e["headers"]["authorization"] = json!(format!("Bearer {token}"));
    if let Some(body) = body {
        e["headers"]["content-type"] = json!("application/json");
        e["body"] = json!(body.to_string());
    }
    e
}

fn body_of(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_function_binary_answers_its_events_under_a_runtime_api_with_the_templates_environment() {
    let endpoint = local_stack::dynamo::test_endpoint().await;
    let table = local_stack::dynamo::test_store_on(&endpoint).await.table().to_string();
    let sqs = local_stack::jobs::sqs_client(Some(&endpoint), None, None);
    let suffix = shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x");
    let queue = sqs.create_queue().queue_name(format!("velvena-rt-{suffix}")).send().await.unwrap().queue_url.unwrap();
    let ticks =
        sqs.create_queue().queue_name(format!("velvena-rt-ticks-{suffix}")).send().await.unwrap().queue_url.unwrap();
    let secrets = {
        use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-3"))
                .credentials_provider(Credentials::new("local", "local", None, None, "test"))
                .http_client(shared::https::sdk_http_client())
                .endpoint_url(&endpoint)
                .build(),
        )
    };
    let secret = json!({
        "calendly_client_secret": "runtime-client-secret",
        "calendly_webhook_signing_key": SIGNING_KEY,
        "jwt_secret": JWT_SECRET,
        "encryption_key": "ab".repeat(32),
    });
    let secret_arn = secrets
        .create_secret()
        .name(format!("velvena-rt-{suffix}"))
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    // The template's references, as local stand-ins (parameters without a default too).
    let mut names: HashMap<String, String> = HashMap::from([
        ("Table".into(), table),
        ("Secret".into(), secret_arn),
        ("SyncJobQueue".into(), queue),
        ("TickQueue".into(), ticks),
        (String::from("CalendlyClientId"), String::from("runtime-client-id")),
        (String::from("PublicBaseUrl"), String::from("https://api.velvena.example")),
        (String::from("WebSocketApi"), String::from("local")),
        (String::from("AWS::Region"), String::from("eu-west-3")),
        (String::from("AWS::URLSuffix"), String::from("amazonaws.com")),
    ]);
    for (name, parameter) in template()["Parameters"].as_mapping().unwrap() {
        if let Some(default) = parameter
            .get("Default")
            .and_then(|d| d.as_str().map(String::from).or_else(|| d.as_u64().map(|n| n.to_string())))
        {
            names.entry(name.as_str().unwrap().to_string()).or_insert(default);
        }
    }
    let token = shared::auth::JwtVerifier::new(JWT_SECRET).issue(
        "u-1",
        "org-rt",
        chrono::Utc::now() + chrono::Duration::hours(1),
    );

    let (api, webhook, oauth, manual, worker, scheduled, connect, disconnect) = tokio::join!(
        Deployed::start("api", &names, &endpoint),
        Deployed::start("webhook", &names, &endpoint),
        Deployed::start("oauth-callback", &names, &endpoint),
        Deployed::start("sync-manual", &names, &endpoint),
        Deployed::start("sync-worker", &names, &endpoint),
        Deployed::start("sync-scheduled", &names, &endpoint),
        Deployed::start("ws-connect", &names, &endpoint),
        Deployed::start("ws-disconnect", &names, &endpoint),
    );

    // api: a prospect created, then read back (the secret's JWT key, the table).
    let created =
        api.invoke(&http_event("POST", "/prospects", &token, Some(json!({ "email": "ada@example.com" })))).await;
    assert_eq!(created["statusCode"], 201, "{created}");
    // The HTTP API's requestId (the access log's key) is the request's correlation id: on its
    // answer and on every log line it wrote.
    let request_id = event("api-get-calendly-status.json")["requestContext"]["requestId"].as_str().unwrap().to_string();
    assert_eq!(created["headers"]["x-correlation-id"], request_id.as_str(), "{created}");
    let logged = api.lines_with(|l| l.contains("\"message\":\"request\"")).await;
    let line = logged.iter().find(|l| l.contains("\"message\":\"request\"")).unwrap_or_else(|| panic!("{logged:?}"));
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["correlation_id"], request_id.as_str(), "{line}");
    let status = api.invoke(&http_event("GET", "/calendly/status", &token, None)).await;
    assert_eq!(
        (status["statusCode"].as_u64(), body_of(&status)["connected"].as_bool()),
        (Some(200), Some(false)),
        "{status}"
    );

    // webhook: a delivery signed with the secret's key, for no integration of ours: 410.
    let mut delivery = event("webhook-invitee-created.json");
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, delivery["body"].as_str().unwrap()).unwrap();
    delivery["headers"]["calendly-webhook-signature"] =
        json!(shared::calendly::webhook_signature::signature_header(SIGNING_KEY, chrono::Utc::now().timestamp(), &raw));
    let answered = webhook.invoke(&delivery).await;
    assert_eq!(
        (answered["statusCode"].as_u64(), body_of(&answered)["status"].as_str()),
        (Some(410), Some("gone")),
        "{answered}"
    );
    // Its metrics, as CloudWatch reads them from the function's output when the invocation ends.
    let metrics = webhook.metrics_with(|m| m["Outcome"] == "gone").await;
    let gone = metrics.iter().find(|m| m["Outcome"] == "gone").unwrap_or_else(|| panic!("{metrics:?}"));
    assert_eq!((gone["Function"].as_str(), gone["WebhookDeliveries"].as_f64()), (Some("webhook"), Some(1.0)), "{gone}");
    assert_eq!(gone["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Velvena/Calendly");

    // oauth-callback: a state nobody issued is refused, cleanly.
    let mut callback = event("oauth-callback.json");
    callback["headers"]["authorization"] = json!(format!("Bearer {token}"));
    let refused = oauth.invoke(&callback).await;
    assert_eq!(refused["statusCode"].as_u64().map(|s| s / 100), Some(4), "{refused}");

    // sync-manual: nothing connected.
    let sync = manual.invoke(&http_event("POST", "/calendly/sync", &token, Some(json!({})))).await;
    assert_eq!(body_of(&sync)["error"]["code"], "calendly_not_connected", "{sync}");

    // sync-worker: a batch with a job message for no job (dropped) and a malformed one (failed).
    let batch = worker.invoke(&event("sync-worker.json")).await;
    let failures: Vec<&str> =
        batch["batchItemFailures"].as_array().unwrap().iter().map(|f| f["itemIdentifier"].as_str().unwrap()).collect();
    assert_eq!(failures, ["2e1424d4-f796-459a-8184-9c92662be6da"], "only the malformed one comes back: {batch}");

    // sync-scheduled: the EventBridge tick.
    let tick = scheduled.invoke(&event("sync-scheduled.json")).await;
    assert_eq!((tick["queued"].as_u64(), tick["handed_on"].as_u64()), (Some(0), Some(0)), "{tick}");
    // sync-scheduled: a part handed on by the tick queue (read from its position) and a
    // malformed message (reported, so SQS brings it back and then sets it aside).
    let resumed = scheduled.invoke(&event("sync-scheduled-handed-on.json")).await;
    let failures: Vec<&str> = resumed["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, ["b7c8d9e0-f1a2-4b3c-9d4e-5f6a7b8c9d0e"], "{resumed}");

    // ws-connect / ws-disconnect.
    let mut connecting = event("ws-connect.json");
    connecting["queryStringParameters"]["token"] = json!(token);
    connecting["multiValueQueryStringParameters"]["token"] = json!([token]);
    let connected = connect.invoke(&connecting).await;
    assert_eq!(connected["statusCode"], 200, "{connected}");
    let gone = disconnect.invoke(&event("ws-disconnect.json")).await;
    assert_eq!(gone["statusCode"], 200, "{gone}");
}
