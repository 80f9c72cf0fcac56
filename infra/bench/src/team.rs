//! A Calendly team at real size under Calendly's real rate limit: a 150-member organization
//! connected in organization scope, then its first sync of 12,000 events.

use super::*;

/// Connects a 151-member organization (an admin and 150 members, 80 bookings each by
/// default) in organization scope behind 500 requests a minute and 50 ms of latency: the
/// callback's answer (requests, time), then the initial job to its end against its floor.
pub(super) async fn team_under_real_limit(rows: &Rows) {
    let per_member: usize = std::env::var("BENCH_TEAM_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let stack = stack(false, 500).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let admin = sim.add_user("Bench Admin", "admin@team.example");
    sim.set_role(&admin, "admin");
    let team = sim.add_team(&admin, 150);
    for (n, member) in std::iter::once(&admin).chain(&team).enumerate() {
        let specs = (0..per_member)
            .map(|i| {
                let start = Utc::now() + ChronoDuration::hours(2 + ((n * per_member + i) % 2000) as i64);
                BookingSpec::new("Invitee", &format!("m{n}i{i}@example.com"), "Démo", start)
            })
            .collect();
        sim.seed_bookings(member, specs);
    }
    let events = per_member * (team.len() + 1);
    sim.set_latency(Duration::from_millis(50));
    let caller = shared::auth::Caller {
        user_id: shared::domain::UserId::new("bench-user"),
        organization_id: OrganizationId::new("bench-team"),
        expires_at: Utc::now() + ChronoDuration::days(1),
    };
    let scope = shared::domain::CalendlyScope::Organization;
    let start = stack.services.connecting().start_connect(&caller, scope).await.expect("connect starts");
    let code = sim.approve(&admin, &start.authorize_url).expect("approved");
    let started = Instant::now();
    let outcome = stack.services.connecting().complete_connect(&code, &start.state, &caller).await.expect("connected");
    let callback = started.elapsed();
    let connect_requests = sim.api_request_count();
    let memberships = sim.request_count("organization_memberships");
    let job = stack.wait_for_sync("bench-team", Duration::from_secs(7200)).await.expect("the initial sync ends");
    let wall = started.elapsed();
    let requests = sim.api_request_count();
    let refused = sim.rate_limited_count();
    let floor = (requests.div_ceil(500).saturating_sub(1) * 60) as f64;
    rows.push(row(
        "connect a 151-member Calendly organization (organization scope, 50 ms latency): callback answer",
        format!(
            "{} ({connect_requests} Calendly requests, {memberships} of them memberships; scope {:?}, {} members)",
            ms(callback),
            outcome.coverage,
            team.len() + 1
        ),
        "< 5 s, whatever the team's size",
        ratio(callback.as_secs_f64(), 5.0),
    ));
    rows.push(row(
        format!("first sync of a {events}-event organization under 500 requests/min: job wall time"),
        format!(
            "{:.1} s, {requests} requests, {refused} answered 429 ({:.2}%), {} slices, {} events, state {}",
            wall.as_secs_f64(),
            refused as f64 * 100.0 / requests.max(1) as f64,
            job.slices,
            job.report.events_seen,
            job.state.as_str()
        ),
        format!("floor {floor:.0} s ({requests} requests in 60-s windows of 500); ≤ 1.5× and ≤ 1% × 429"),
        ratio(wall.as_secs_f64(), floor),
    ));
}
