//! The first sync of a large account under Calendly's real rate limit (500 requests a minute).

use super::*;

/// A first sync of a large account behind Calendly's real limit (500 requests a minute, 60-s
/// windows): the callback's answer time, then the job to its end.
pub(super) async fn first_sync_under_real_limit(rows: &Rows) {
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
    let start = stack
        .services
        .connecting()
        .start_connect(&caller, shared::domain::CalendlyScope::User)
        .await
        .expect("connect starts");
    let code = sim.approve(&host, &start.authorize_url).expect("approved");
    let started = Instant::now();
    let outcome = stack.services.connecting().complete_connect(&code, &start.state, &caller).await.expect("connected");
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
