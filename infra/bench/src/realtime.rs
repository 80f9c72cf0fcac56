//! A webhook delivery to a browser's screen, and one push fanned out to many connections.

use super::*;

pub(super) async fn webhook_to_browser(rows: &Rows, dynamodb: bool) {
    // On moto, each request scans the growing table in Python: fewer deliveries there.
    let default = if dynamodb { 200 } else { 1000 };
    let deliveries: usize =
        std::env::var("BENCH_WEBHOOK_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
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
    let http = shared::https::client();
    let mut latencies = Vec::with_capacity(DELIVERIES);
    let before = stack.dynamo.as_ref().map(|d| d.metrics().snapshot());
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
    if let Some((reads, writes, transactions, _)) = dynamo_delta(&stack, before) {
        let per = |n: u64| n as f64 / DELIVERIES as f64;
        rows.push(row(
            format!("DynamoDB per webhook delivery of a new booking (a new e-mail), {label}, one browser connected"),
            format!("{:.2} reads, {:.2} writes, {:.2} transactions", per(reads), per(writes), per(transactions)),
            "issue 29's goal: 1 transaction + 2 reads",
            "–",
        ));
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

pub(super) async fn fan_out(rows: &Rows) {
    const CONNECTIONS: usize = 1000;
    // The product caps live connections per organization (200 by default): raised above the
    // fan-out size here, and the row says so.
    let cap = CONNECTIONS + 100;
    let env = HashMap::from([("WS_MAX_CONNECTIONS_PER_ORGANIZATION".to_string(), cap.to_string())]);
    let stack = stack_with(false, 1_000_000, env).await;
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        sockets.push(browser(&stack, "bench-org").await);
    }
    let http = shared::https::client();
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
        format!(
            "fan-out: one message to {CONNECTIONS} connections, last received ({count} received; connection cap raised to {cap})"
        ),
        ms(all),
        format!("1 connection: {}; goal ≤ 1 s", ms(one)),
        ratio(all.as_secs_f64(), 1.0),
    ));
}
