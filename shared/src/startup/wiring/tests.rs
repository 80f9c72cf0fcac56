use super::*;

fn lookup(pairs: &[(&str, &str)]) -> Lookup {
    let map: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Arc::new(move |name: &str| map.get(name).cloned())
}

#[test]
fn a_function_builds_the_capability_its_row_names_and_no_other() {
    let connector = Lazy::<crate::app::Connector>::for_function("ws-connect");
    assert_eq!(
        connector.wiring.dynamodb_actions(),
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]
    );
    let worker = Lazy::<crate::app::Worker>::for_function("sync-worker");
    assert!(worker.wiring.queue && worker.wiring.push);
    let whole = std::panic::catch_unwind(|| Lazy::<crate::app::Api>::for_function("ws-connect"));
    assert!(whole.is_err(), "ws-connect must not be able to build another function's capability");
    let narrow = std::panic::catch_unwind(|| Lazy::<crate::app::Connector>::for_function("api"));
    assert!(narrow.is_err());
}

#[test]
fn region_and_credentials_come_from_the_environment_or_name_what_is_missing() {
    let lambda = lookup(&[
        ("AWS_REGION", "eu-west-3"),
        ("AWS_ACCESS_KEY_ID", "AKIA"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ]);
    let aws = AwsEnvironment::read(&lambda).unwrap();
    assert_eq!((aws.region.as_str(), aws.session_token.as_deref()), ("eu-west-3", Some("token")));

    let default_region =
        lookup(&[("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let aws = AwsEnvironment::read(&default_region).unwrap();
    assert_eq!((aws.region.as_str(), aws.session_token), ("us-east-1", None));

    let no_credentials = lookup(&[("AWS_REGION", "eu-west-3"), ("AWS_ACCESS_KEY_ID", "")]);
    assert!(matches!(AwsEnvironment::read(&no_credentials), Err(ConfigError::Missing("AWS_ACCESS_KEY_ID"))));
    let no_region = lookup(&[("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    assert!(matches!(AwsEnvironment::read(&no_region), Err(ConfigError::Missing("AWS_REGION"))));
}
