//! Sync cost: one sync of a realistic account, on the embedded store and on DynamoDB (moto).

use super::*;

pub(super) async fn sync_cost(rows: &Rows, dynamodb: bool) {
    // moto answers each query by scanning its table (and GSI) in Python, so its time grows
    // with the table: the DynamoDB run uses fewer bookings; requests per booking are what
    // it measures.
    let default = if dynamodb { 200 } else { 1000 };
    let bookings: usize = std::env::var("BENCH_SYNC_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    #[allow(non_snake_case)]
    let BOOKINGS = bookings;
    const LATENCY: Duration = Duration::from_millis(50);
    let label = if dynamodb { "DynamoDB (moto)" } else { "embedded" };
    let stack = stack(dynamodb, 1_000_000).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let host = sim.add_user("Bench Host", "bench@host.example");
    connect(&stack, "bench-org", &host).await;
    let specs: Vec<BookingSpec> = (0..BOOKINGS)
        .map(|i| {
            let start = Utc::now() + ChronoDuration::hours(2 + i as i64 * 3);
            BookingSpec::new(&format!("Invitee {i}"), &format!("invitee{i}@example.com"), "Découverte 30min", start)
        })
        .collect();
    let booked = sim.seed_bookings(&host, specs);
    sim.set_latency(LATENCY);

    let pages = BOOKINGS.div_ceil(100) as u64;
    let lat = LATENCY.as_secs_f64();
    let first = timed_sync(&stack, "bench-org").await;
    let floor = pages + BOOKINGS as u64;
    let min_wall = (pages as f64 + (BOOKINGS as f64 / 8.0).ceil()) * lat;
    rows.push(row(
        format!("sync {BOOKINGS} new bookings, 50 ms/request, {label}: Calendly requests"),
        format!("{}{}", first.calendly_requests, dynamo_text(first.dynamo)),
        format!("floor {floor} ({pages} pages + 1 invitee list per event)"),
        ratio(first.calendly_requests as f64, floor as f64),
    ));
    rows.push(row(
        format!("sync {BOOKINGS} new bookings, {label}: wall time"),
        format!("{:.2} s", first.wall.as_secs_f64()),
        format!("{min_wall:.2} s (pages in sequence, 8 invitee lists at once)"),
        ratio(first.wall.as_secs_f64(), min_wall),
    ));
    let again = timed_sync(&stack, "bench-org").await;
    rows.push(row(
        format!(
            "unchanged re-sync of {BOOKINGS}, {label} (manual-sync cooldown off for the re-syncs): Calendly requests"
        ),
        format!("{}{}", again.calendly_requests, dynamo_text(again.dynamo)),
        format!("{pages} list requests, 0 invitee requests, 0 writes"),
        ratio(again.calendly_requests as f64, pages as f64),
    ));
    // One more booking, by an email that already has a prospect: a note appended.
    sim.seed_bookings(
        &host,
        vec![BookingSpec::new("Invitee 0", "invitee0@example.com", "Suivi", Utc::now() + ChronoDuration::minutes(90))],
    );
    let known = timed_sync(&stack, "bench-org").await;
    let pages = (BOOKINGS + 1).div_ceil(100) as u64;
    rows.push(row(
        format!("re-sync with 1 new booking by a known email, {label}: Calendly requests"),
        format!("{}{}", known.calendly_requests, dynamo_text(known.dynamo)),
        format!("floor {} (pages + 1 invitee list)", pages + 1),
        ratio(known.calendly_requests as f64, (pages + 1) as f64),
    ));
    for b in booked.iter().step_by((BOOKINGS / 10).max(1)).take(10) {
        sim.cancel(b, "bench").await;
    }
    let changed = timed_sync(&stack, "bench-org").await;
    rows.push(row(
        format!("re-sync with 10 canceled, {label}: Calendly requests"),
        format!("{}{} ({:.2} s)", changed.calendly_requests, dynamo_text(changed.dynamo), changed.wall.as_secs_f64()),
        format!("floor {}", pages + 10),
        ratio(changed.calendly_requests as f64, (pages + 10) as f64),
    ));
}
