//! Privacy on DynamoDB (moto): the requests of one erasure of a person with 10 bookings, and of
//! a purge of 1,000 bookings (`POST /calendly/disconnect {"purge": true}`'s work).

use super::*;

pub(super) async fn privacy_cost(rows: &Rows) {
    let bookings: usize = std::env::var("BENCH_PURGE_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let stack = stack(true, 1_000_000).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let host = sim.add_user("Bench Host", "bench@host.example");
    let at = |i: usize| Utc::now() + ChronoDuration::hours(2 + i as i64 * 3);
    let mut specs: Vec<BookingSpec> =
        (0..10).map(|i| BookingSpec::new("Erased Person", "erased@example.com", "Découverte 30min", at(i))).collect();
    specs.extend((10..bookings).map(|i| {
        BookingSpec::new(&format!("Invitee {i}"), &format!("invitee{i}@example.com"), "Découverte 30min", at(i))
    }));
    sim.seed_bookings(&host, specs);
    connect(&stack, "bench-org", &host).await;
    // moto slows down as its table grows: the initial job may end early (a failed slice);
    // syncs again until nothing new comes, so the purge below has every booking.
    for _ in 0..5 {
        match stack.sync_and_wait("bench-org", Duration::from_secs(3600)).await {
            Some(job) if job.report.bookings_new == 0 && job.error.is_none() => break,
            _ => continue,
        }
    }
    let caller = shared::auth::Caller {
        user_id: shared::domain::UserId::new("bench-user"),
        organization_id: OrganizationId::new("bench-org"),
        expires_at: Utc::now() + ChronoDuration::days(1),
    };
    let email = shared::domain::PersonAddress::parse("erased@example.com").unwrap();

    let before = stack.dynamo.as_ref().map(|d| d.metrics().snapshot());
    let started = Instant::now();
    let erased = stack.services.privacy().erase(&caller, &email, false).await.expect("erased");
    let wall = started.elapsed();
    rows.push(row(
        format!(
            "erasure of a person with 10 bookings, DynamoDB (moto): {} bookings, {} notifications, {} prospect",
            erased.counts.bookings, erased.counts.notifications, erased.counts.prospects
        ),
        format!("{}{}", ms(wall), dynamo_text(dynamo_delta(&stack, before))),
        "no scan: the person item names the ids",
        "–",
    ));

    let before = stack.dynamo.as_ref().map(|d| d.metrics().snapshot());
    let started = Instant::now();
    let org = OrganizationId::new("bench-org");
    let purge = stack.services.privacy().purge(&org, Duration::from_secs(3600)).await.expect("purged");
    let wall = started.elapsed();
    rows.push(row(
        format!(
            "purge of {} bookings, {} fingerprints, {} notifications, DynamoDB (moto)",
            purge.bookings, purge.fingerprints, purge.notifications
        ),
        format!("{:.2} s{}", wall.as_secs_f64(), dynamo_text(dynamo_delta(&stack, before))),
        "pages of 100 read, batch deletes of 25",
        "–",
    ));
}
