//! `template.yaml` and the code agree: every function, every route, the table's keys and
//! indexes. (The template's own validity is checked by `scripts/check-template`.)

use serde_norway::Value;
use std::collections::BTreeSet;
use tower::ServiceExt;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
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
    let declared: BTreeSet<(String, String, String)> =
        shared::http::ROUTES.iter().map(|(f, m, p)| (f.to_string(), m.to_string(), p.to_string())).collect();
    assert_eq!(routed, declared);
}

#[tokio::test]
async fn each_function_router_serves_its_declared_routes() {
    let app = crate::helpers::TestApp::spawn().await;
    for (function, method, path) in shared::http::ROUTES {
        let router = shared::http::routes_of(function).expect("an HTTP function");
        let service = shared::http::serve(router, app.stack.services.clone());
        let concrete = path.replace("{id}", "x").replace("{integration_id}", "x");
        let request =
            axum::http::Request::builder().method(*method).uri(&concrete).body(axum::body::Body::empty()).unwrap();
        let status = service.oneshot(request).await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405, "{function} does not serve {method} {path} (got {status})");
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
