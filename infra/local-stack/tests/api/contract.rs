//! The contract: the committed OpenAPI document and the route table of docs/API.md are the generated ones, the
//! stack serves it, and every answer and push the other tests see conforms to it (checked in
//! `helpers` on every request and every WebSocket message).

use crate::helpers::TestApp;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn repository_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_default()
}

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(shared::http::openapi()).unwrap())
}

/// A validator for `schema` (a `$ref` into the document's components, or inline).
fn validator(key: String, schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return v.clone();
    }
    // The references (`#/components/schemas/…`) resolve against this root.
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "allOf": [schema],
    });
    let compiled = std::sync::Arc::new(jsonschema::validator_for(&root).expect("the document's schemas compile"));
    cache.lock().unwrap().insert(key, compiled.clone());
    compiled
}

fn check(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not conform to docs/openapi.json: {errors:?}\n{instance:#}");
}

/// The document's path template that `path` (no query) matches.
fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
        .cloned()
}

/// Checks an answer of the API against its operation in the document: the status is one it
/// lists (or `default`), and a JSON body conforms to that response's schema.
pub fn check_answer(method: &str, path_and_query: &str, status: u16, content_type: Option<&str>, body: &Value) {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let Some(template) = template_of(path) else { return }; // not an API route (console, _local)
    let operation = &document()["paths"][&template][method.to_ascii_lowercase()];
    if operation.is_null() {
        return; // a method the route does not take: the 405 is checked by the fuzzer
    }
    let code = status.to_string();
    let response = if operation["responses"][&code].is_null() { "default" } else { code.as_str() };
    let media = &operation["responses"][response]["content"];
    let is_json = content_type.is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        assert!(
            media.is_null() || media.get("application/json").is_none() || (300..400).contains(&status),
            "{method} {path} answered {status} with {content_type:?}, the document says JSON"
        );
        return;
    }
    let schema = &media["application/json"]["schema"];
    assert!(!schema.is_null(), "{method} {path} answered {status} with JSON the document does not describe");
    let v = validator(format!("{method} {template} {response}"), schema);
    check(&v, body, &format!("{method} {path} → {status}"));
}

/// Checks a WebSocket message against `PushEnvelope`.
pub fn check_push(message: &Value) {
    let v = validator("push".into(), &serde_json::json!({ "$ref": "#/components/schemas/PushEnvelope" }));
    check(&v, message, &format!("the push {}", message["event"]));
}

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let generated = shared::http::contract::openapi_json();
    assert!(
        repository_file("docs/openapi.json") == generated,
        "docs/openapi.json is stale: run `cargo run -p local-stack --bin contract`"
    );
    let api = repository_file("docs/API.md");
    assert_eq!(
        shared::http::contract::with_route_table(&api).as_deref(),
        Some(api.as_str()),
        "docs/API.md's route table is stale: run `cargo run -p local-stack --bin contract`"
    );
    let security = repository_file("docs/SECURITY.md");
    assert_eq!(
        shared::startup::wiring::with_grants_table(&security).as_deref(),
        Some(security.as_str()),
        "docs/SECURITY.md's table of grants is stale: run `cargo run -p local-stack --bin contract`"
    );
}

#[test]
fn the_document_describes_every_error_code_and_every_push() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"].as_array().unwrap();
    assert_eq!(codes.len(), shared::app::ErrorCode::ALL.len());
    let pushes = serde_json::to_string(&doc["components"]["schemas"]["PushedEvent"]).unwrap();
    for event in ["prospect:created", "prospect:updated", "prospect:deleted", "notification", "calendly:sync"] {
        assert!(pushes.contains(&format!("\"{event}\"")), "{event} is described");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Every operation that needs a JWT says so, and lists its answers with their bodies.
    for route in shared::http::routes() {
        let public = route.path == "/health"
            || route.path.starts_with("/calendly/webhook")
            || (route.path == "/auth/calendly/callback" && route.method == "GET");
        assert_eq!(route.authenticated, !public, "{} {}", route.method, route.path);
        assert!(!route.summary.is_empty(), "{} {} has a summary", route.method, route.path);
    }
}

#[tokio::test]
async fn the_stack_serves_the_document_and_rejects_answers_that_do_not_conform() {
    let app = TestApp::spawn().await;
    let served = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), shared::http::contract::openapi_json());
    // The checker is not a rubber stamp: a status body missing a field fails it.
    let wrong = serde_json::json!({ "connected": "yes" });
    let refused = std::panic::catch_unwind(|| {
        check_answer("GET", "/calendly/status", 200, Some("application/json"), &wrong);
    });
    assert!(refused.is_err(), "a non-conforming body is caught");
    let refused_push =
        std::panic::catch_unwind(|| check_push(&serde_json::json!({ "event": "prospect:created", "data": {} })));
    assert!(refused_push.is_err(), "a non-conforming push is caught");
}
