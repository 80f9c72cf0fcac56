//! `template.yaml` and the code agree: every function, every route, the table's keys and
//! indexes. (The template's own validity is checked by `scripts/check-template`.)

use serde_norway::Value;
use std::collections::BTreeSet;
use tower::ServiceExt;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// A short-form intrinsic (`!GetAtt X.Arn`, `!Ref X`) as `("GetAtt", "X.Arn")`.
fn intrinsic(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(tagged) => {
            Some((tagged.tag.to_string().trim_start_matches('!').to_string(), tagged.value.as_str()?.to_string()))
        }
        _ => None,
    }
}

fn get_att(target: &str) -> Option<(String, String)> {
    Some(("GetAtt".to_string(), target.to_string()))
}

fn str_of(v: &Value) -> String {
    v.as_str().map(String::from).unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn functions(t: &Value) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(_, r)| (str_of(&r["Metadata"]["BuildProperties"]["Binary"]), r.clone()))
        .collect()
}

#[test]
fn every_function_crate_is_deployed_with_the_rust_runtime() {
    let t = template();
    let deployed: BTreeSet<String> = functions(&t).into_iter().map(|(name, _)| name).collect();
    let crates: BTreeSet<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(deployed, crates);
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["Handler"], "bootstrap");
    for (name, f) in functions(&t) {
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
    }
}

#[test]
fn the_template_routes_exactly_the_routes_the_code_serves() {
    let t = template();
    let mut routed = BTreeSet::new();
    for (name, f) in functions(&t) {
        for (_, event) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"] == "HttpApi" {
                let p = &event["Properties"];
                routed.insert((name.clone(), str_of(&p["Method"]), str_of(&p["Path"])));
            }
        }
    }
    // The OpenAPI document's operations, each tagged with the function that serves it.
    let declared: BTreeSet<(String, String, String)> =
        shared::http::routes().into_iter().map(|r| (r.function, r.method, r.path)).collect();
    assert_eq!(declared.len(), 27, "every operation of the document: {declared:?}");
    assert_eq!(routed, declared);
}

#[tokio::test]
async fn each_function_router_serves_its_declared_routes_and_no_other() {
    let app = crate::helpers::TestApp::spawn().await;
    let routes = shared::http::routes();
    let functions: BTreeSet<String> = routes.iter().map(|r| r.function.clone()).collect();
    for function in &functions {
        for shared::http::Route { function: owner, method, path, .. } in &routes {
            // The Lambda router (built without the document) of `function`.
            let service = shared::http::function_router(function, &app.stack.services).expect("an HTTP function");
            let concrete = path.replace("{id}", "x").replace("{integration_id}", "x");
            let request = axum::http::Request::builder()
                .method(method.as_str())
                .uri(&concrete)
                .body(axum::body::Body::empty())
                .unwrap();
            let answer = service.oneshot(request).await.unwrap();
            let status = answer.status().as_u16();
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
            let unrouted =
                status == 405 || (status == 404 && String::from_utf8_lossy(&body).contains("route not found"));
            if owner == function {
                assert!(!unrouted, "{function} does not serve {method} {path} (got {status})");
            } else if !routes.iter().any(|r| &r.function == function && r.method == *method && r.path == *path) {
                assert!(unrouted, "{function} serves {owner}'s {method} {path} (got {status})");
            }
        }
    }
}

#[test]
fn the_template_table_matches_the_adapter_keys_and_indexes() {
    let t = template();
    let table = &t["Resources"]["Table"]["Properties"];
    let key = |schema: &Value, kind: &str| {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .find(|k| k["KeyType"] == kind)
            .map(|k| str_of(&k["AttributeName"]))
            .unwrap()
    };
    let indexes = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["Projection"]["ProjectionType"], "ALL");
            (str_of(&i["IndexName"]), key(&i["KeySchema"], "HASH"), key(&i["KeySchema"], "RANGE"))
        })
        .collect();
    let shape = shared::store::dynamodb::table::TableShape {
        hash_key: key(&table["KeySchema"], "HASH"),
        range_key: key(&table["KeySchema"], "RANGE"),
        indexes,
        ttl_attribute: str_of(&table["TimeToLiveSpecification"]["AttributeName"]),
    };
    assert_eq!(shape, shared::store::dynamodb::table::expected_shape());
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    for attribute in table["AttributeDefinitions"].as_sequence().unwrap() {
        assert_eq!(attribute["AttributeType"], "S");
    }
}

#[test]
fn no_policy_grants_a_wildcard_resource() {
    let t = template();
    for (name, f) in functions(&t) {
        for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
            for statement in policy["Statement"].as_sequence().unwrap() {
                let resources = match &statement["Resource"] {
                    Value::Sequence(list) => list.clone(),
                    other => vec![other.clone()],
                };
                for r in resources {
                    assert_ne!(r.as_str(), Some("*"), "{name} grants a wildcard resource");
                }
                for action in statement["Action"].as_sequence().unwrap() {
                    assert!(!str_of(action).ends_with(":*"), "{name} grants a wildcard action");
                }
            }
        }
    }
}

#[test]
fn sync_jobs_run_from_a_queue_with_partial_failures_a_dead_letter_queue_and_an_alarm() {
    let t = template();
    let resources = &t["Resources"];
    let (_, worker) =
        functions(&t).into_iter().find(|(name, _)| name == "sync-worker").expect("a sync-worker function");
    let jobs = &worker["Properties"]["Events"]["Jobs"];
    assert_eq!(jobs["Type"], "SQS");
    assert_eq!(intrinsic(&jobs["Properties"]["Queue"]), get_att("SyncJobQueue.Arn"));
    assert_eq!(jobs["Properties"]["FunctionResponseTypes"][0], "ReportBatchItemFailures");
    assert!(jobs["Properties"]["ScalingConfig"]["MaximumConcurrency"].as_u64().unwrap() >= 2);

    let queue = &resources["SyncJobQueue"]["Properties"];
    let visibility = queue["VisibilityTimeout"].as_i64().unwrap();
    let worker_timeout = worker["Properties"]["Timeout"].as_i64().unwrap();
    assert!(visibility > worker_timeout, "a message must not come back while its slice may still run");
    assert_eq!(visibility, i64::from(local_stack::jobs::VISIBILITY_TIMEOUT_SECS), "the local queue behaves the same");
    assert!(
        (worker_timeout as u64) > sync_worker::DEADLINE_MARGIN.as_secs(),
        "a slice has time left once it stops before the deadline"
    );
    assert_eq!(intrinsic(&queue["RedrivePolicy"]["deadLetterTargetArn"]), get_att("SyncJobDeadLetterQueue.Arn"));
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap() >= 2);
    let alarm = &resources["SyncJobDeadLetterAlarm"]["Properties"];
    assert_eq!(alarm["Namespace"], "AWS/SQS");
    assert_eq!(alarm["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(intrinsic(&alarm["Dimensions"][0]["Value"]), get_att("SyncJobDeadLetterQueue.QueueName"));
    assert_eq!(alarm["Threshold"], 0);
}

#[test]
fn only_the_functions_that_queue_jobs_may_send_to_the_queue() {
    let t = template();
    let mut senders = BTreeSet::new();
    for (name, f) in functions(&t) {
        let mut sends = false;
        for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
            for statement in policy["Statement"].as_sequence().unwrap() {
                let actions: Vec<String> = statement["Action"].as_sequence().unwrap().iter().map(str_of).collect();
                if actions.iter().any(|a| a.starts_with("sqs:")) {
                    assert_eq!(actions, vec!["sqs:SendMessage".to_string()], "{name} may only send");
                    let resources: Vec<_> = match statement["Resource"].as_sequence() {
                        Some(all) => all.iter().map(intrinsic).collect(),
                        None => vec![intrinsic(&statement["Resource"])],
                    };
                    // Only the scheduler may hand a tick on, and it says where.
                    let mut expected = vec![get_att("SyncJobQueue.Arn")];
                    if name == "sync-scheduled" {
                        expected.push(get_att("TickQueue.Arn"));
                        let tick_url = intrinsic(&f["Properties"]["Environment"]["Variables"]["TICK_QUEUE_URL"]);
                        assert_eq!(tick_url, Some(("Ref".to_string(), "TickQueue".to_string())));
                    }
                    assert_eq!(resources, expected, "{name}");
                    sends = true;
                }
            }
        }
        let has_url = intrinsic(&f["Properties"]["Environment"]["Variables"]["SYNC_QUEUE_URL"])
            == Some(("Ref".to_string(), "SyncJobQueue".to_string()));
        assert_eq!(sends, has_url, "{name}: SYNC_QUEUE_URL and sqs:SendMessage go together");
        if sends {
            senders.insert(name);
        }
    }
    let expected: BTreeSet<String> =
        ["oauth-callback", "sync-manual", "sync-scheduled", "sync-worker"].into_iter().map(String::from).collect();
    assert_eq!(senders, expected);
}

#[test]
fn each_function_is_granted_exactly_what_its_wiring_builds() {
    let t = template();
    for (name, f) in functions(&t) {
        let wiring = shared::startup::wiring::FUNCTIONS
            .iter()
            .find(|w| w.function == name)
            .unwrap_or_else(|| panic!("{name} is missing from shared::startup::wiring::FUNCTIONS"));
        let mut expected: BTreeSet<String> = wiring.dynamodb_actions().iter().map(|a| a.to_string()).collect();
        if wiring.secret {
            expected.insert("secretsmanager:GetSecretValue".into());
        }
        if wiring.push {
            expected.insert("execute-api:ManageConnections".into());
        }
        if wiring.queue {
            expected.insert("sqs:SendMessage".into());
        }
        let granted: BTreeSet<String> = f["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap().iter())
            .flat_map(|s| s["Action"].as_sequence().unwrap().iter().map(str_of))
            .collect();
        assert_eq!(granted, expected, "{name}: the template grants what the wiring builds, no more");
        let queue_url = !f["Properties"]["Environment"]["Variables"]["SYNC_QUEUE_URL"].is_null();
        assert_eq!(queue_url, wiring.queue, "{name}: SYNC_QUEUE_URL goes with a queue");
    }
    assert_eq!(functions(&t).len(), shared::startup::wiring::FUNCTIONS.len());
}

#[test]
fn both_apis_are_throttled_and_log_each_request_without_its_query() {
    let t = template();
    let resources = &t["Resources"];
    let http = &resources["HttpApi"]["Properties"];
    let route = &http["DefaultRouteSettings"];
    assert_eq!(intrinsic(&route["ThrottlingRateLimit"]), Some(("Ref".into(), "ApiThrottlingRateLimit".into())));
    assert_eq!(intrinsic(&route["ThrottlingBurstLimit"]), Some(("Ref".into(), "ApiThrottlingBurstLimit".into())));
    // Query strings carry OAuth codes, states and (on WebSocket's $connect) JWTs: never logged;
    // nor headers (the Authorization header), bodies or identities.
    for (settings, group) in [
        (&http["AccessLogSettings"], "HttpApiAccessLogs"),
        (&resources["WebSocketStage"]["Properties"]["AccessLogSettings"], "WebSocketAccessLogs"),
    ] {
        assert_eq!(intrinsic(&settings["DestinationArn"]), get_att(&format!("{group}.Arn")), "{group}");
        let format: serde_json::Value = serde_json::from_str(&str_of(&settings["Format"])).unwrap();
        let fields: Vec<&str> = format.as_object().unwrap().values().filter_map(|v| v.as_str()).collect();
        assert!(fields.contains(&"$context.status") && fields.contains(&"$context.routeKey"), "{fields:?}");
        let secret_bearing = ["path", "querystring", "header", "body", "identity", "authorizer"];
        assert!(!fields.iter().any(|f| secret_bearing.iter().any(|s| f.to_lowercase().contains(s))), "{fields:?}");
        let log_group = &resources[group];
        assert_eq!(log_group["Type"], "AWS::Logs::LogGroup");
        let retention = intrinsic(&log_group["Properties"]["RetentionInDays"]);
        assert_eq!(retention, Some(("Ref".into(), "LogRetentionDays".into())), "{group}");
    }
    let ws = &resources["WebSocketStage"]["Properties"]["DefaultRouteSettings"];
    assert_eq!(intrinsic(&ws["ThrottlingRateLimit"]), Some(("Ref".into(), "WebSocketThrottlingRateLimit".into())));
    assert_eq!(intrinsic(&ws["ThrottlingBurstLimit"]), Some(("Ref".into(), "WebSocketThrottlingBurstLimit".into())));
}

#[test]
fn every_function_has_alarms_and_every_alarm_watches_what_the_code_emits() {
    use shared::telemetry::metrics::{Metric, NAMESPACE};
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let deployed: BTreeSet<String> = functions(&t).into_iter().map(|(name, _)| name).collect();
    let emitted: BTreeSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    // Each function: its errors and its throttles.
    for (logical, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let logical = str_of(logical);
        for metric in ["Errors", "Throttles"] {
            let alarm = format!("{}{metric}Alarm", logical.trim_end_matches("Function"));
            let alarm = &t["Resources"][alarm.as_str()];
            assert_eq!(alarm["Properties"]["MetricName"], metric, "{logical}");
            let watched = intrinsic(&alarm["Properties"]["Dimensions"][0]["Value"]);
            assert_eq!(watched, Some(("Ref".to_string(), logical.clone())), "{logical} {metric}");
        }
    }
    // Every alarm notifies the optional topic, names its runbook entry (a heading of
    // docs/OPERATIONS.md), and watches metrics the code writes, under the functions' own names.
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/OPERATIONS.md")).unwrap();
    let runbook_anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .collect::<String>()
                .replace(' ', "-")
        })
        .collect();
    let mut alarms = 0;
    for (logical, resource) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm") {
        alarms += 1;
        let properties = &resource["Properties"];
        let actions = match &properties["AlarmActions"] {
            Value::Tagged(tagged) => tagged.tag.to_string(),
            other => panic!("{logical:?}: AlarmActions is {other:?}"),
        };
        assert_eq!(actions, "!If", "{logical:?} notifies AlarmTopicArn when set");
        let description = str_of(&properties["AlarmDescription"]);
        let anchor = description.split("docs/OPERATIONS.md#").nth(1).map(|a| a.trim_end_matches('"').to_string());
        let anchor = anchor.unwrap_or_else(|| panic!("{logical:?} names its runbook entry"));
        assert!(runbook_anchors.contains(&anchor), "{logical:?}: #{anchor} is no heading of docs/OPERATIONS.md");
        let stats: Vec<&Value> = match properties["Metrics"].as_sequence() {
            Some(metrics) => metrics.iter().filter_map(|m| m.get("MetricStat")).map(|s| &s["Metric"]).collect(),
            None => vec![properties],
        };
        for stat in stats.into_iter().filter(|s| s["Namespace"] == NAMESPACE) {
            let name = str_of(&stat["MetricName"]);
            assert!(emitted.contains(name.as_str()), "{logical:?} watches {name}, which the code never writes");
            let function = stat["Dimensions"].as_sequence().unwrap().iter().find(|d| d["Name"] == "Function").unwrap();
            assert!(deployed.contains(&str_of(&function["Value"])), "{logical:?}: {function:?}");
        }
    }
    assert_eq!(alarms, 24, "two per function, the APIs, the two dead-letter queues and three of our metrics");
    // One dashboard shows every metric the code writes.
    let dashboard = &t["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"];
    let body = match dashboard {
        Value::Tagged(tagged) => str_of(&tagged.value),
        other => str_of(other),
    };
    for metric in emitted {
        assert!(body.contains(&format!("\"{metric}\"")), "the dashboard shows {metric}");
    }
}
