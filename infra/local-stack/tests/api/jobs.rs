//! Syncs as jobs: the callback and `POST /calendly/sync` only queue; workers run resumable
//! slices under Calendly's rate limit; one scheduled tick queues every due organization.
//! Run on the embedded queue and, over the wire, on moto's SQS and DynamoDB.

use crate::helpers::{StoreKind, TestApp, in_days};
use calendly_sim::{BookingSpec, SimConfig};
use local_stack::StackOptions;
use serde_json::{Value, json};
use shared::domain::{OrganizationId, SyncJobMessage};
use std::collections::HashMap;
use std::time::Duration;

fn bookings(n: usize, prefix: &str) -> Vec<BookingSpec> {
    (0..n)
        .map(|i| {
            BookingSpec::new(
                &format!("Invitee {i}"),
                &format!("{prefix}{i}@example.com"),
                "Découverte 30min",
                in_days(1 + (i % 300) as i64),
            )
        })
        .collect()
}

/// A stack on `kind` (and on moto's SQS when `sqs`), with `env` on top.
async fn app_with(kind: StoreKind, sqs: bool, env: &[(&str, &str)], simulator: SimConfig) -> TestApp {
    let mut vars: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let endpoint = || local_stack::dynamo::test_endpoint();
    if matches!(kind, StoreKind::DynamoDb) {
        vars.insert("STORE".into(), "dynamodb".into());
        vars.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint().await);
        vars.insert(
            "TABLE_NAME".into(),
            format!("velvena-jobs-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x")),
        );
    }
    if sqs {
        vars.insert("QUEUE".into(), "sqs".into());
        vars.insert("AWS_ENDPOINT_URL_SQS".into(), endpoint().await);
        vars.entry("TABLE_NAME".into()).or_insert_with(|| {
            format!("velvena-q-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"))
        });
    }
    TestApp::spawn_with(StackOptions { env: vars, simulator, ..Default::default() }).await
}

/// Calendly's limit shrunk in time: `limit` requests a second instead of 500 a minute, so a
/// test crosses many windows in seconds.
fn tight_limit(limit: u32) -> SimConfig {
    SimConfig { rate_limit: limit, rate_window: Duration::from_secs(1), ..SimConfig::default() }
}

/// A window filled up to its reserve means the job had to pause, and it did. (A slow machine
/// may never fill one: then there was nothing to wait for.)
fn assert_paused_when_the_window_filled(app: &TestApp, limit: u32, ended: &Value) {
    let peak = app.sim.peak_window_requests();
    if peak + shared::calendly::RateWindow::RESERVE as u32 >= limit {
        assert!(ended["slices"].as_u64().unwrap() > 1, "the job paused for the window's reset: {ended}");
    }
}

/// Every `calendly:sync` message until the job ends (or `within` passes).
async fn sync_messages(browser: &mut crate::helpers::Browser, within: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(message) = browser.next(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        if message["event"] == "calendly:sync" {
            let data = message["data"].clone();
            let ended = data["state"] == "succeeded" || data["state"] == "failed";
            seen.push(data);
            if ended {
                break;
            }
        }
    }
    seen
}

async fn a_large_account_connects_at_once_and_its_job_syncs_it_under_the_rate_limit(kind: StoreKind) {
    let count = if matches!(kind, StoreKind::Embedded) { 150 } else { 60 };
    let app = app_with(kind, false, &[], tight_limit(30)).await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(count, "big"));
    let mut browser = app.browser("org-a").await;

    let answer = app.connect_queued("org-a", &host).await;
    assert_eq!(answer["connected"], true);
    assert_eq!(answer["sync"]["state"], "queued", "the callback answers before any sync work: {answer}");
    assert_eq!(answer["sync"]["trigger"], "initial");

    let messages = sync_messages(&mut browser, Duration::from_secs(90)).await;
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["bookings_new"], count as u64);
    assert_eq!(ended["prospects_created"], count as u64);
    assert_eq!(ended["events_seen"], count as u64);
    assert_paused_when_the_window_filled(&app, 30, &ended);

    let prospects = app.get("/prospects?limit=100", "org-a").await.expect(200);
    let mut total = prospects["items"].as_array().unwrap().len();
    let mut cursor = prospects["next_cursor"].as_str().map(String::from);
    while let Some(c) = cursor {
        let page = app.get(&format!("/prospects?limit=100&cursor={c}"), "org-a").await.expect(200);
        for p in page["items"].as_array().unwrap() {
            assert_eq!(p["notes"].as_str().unwrap().split("\n\n").count(), 1, "{p}");
        }
        total += page["items"].as_array().unwrap().len();
        cursor = page["next_cursor"].as_str().map(String::from);
    }
    assert_eq!(total, count);

    let sent = app.sim.api_request_count();
    let refused = app.sim.rate_limited_count();
    assert!(refused * 100 <= sent, "{refused} of {sent} requests were answered 429 (at most 1%)");

    // The browser saw the job from its start to its end, counters only growing.
    assert!(messages.iter().any(|m| m["state"] == "running"), "{messages:?}");
    assert_eq!(messages.last().map(|m| m["state"].clone()), Some(json!("succeeded")));
    let seen: Vec<u64> = messages.iter().map(|m| m["events_seen"].as_u64().unwrap()).collect();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(messages.iter().all(|m| m["id"] == ended["id"]));
}

async fn a_job_with_a_tiny_time_budget_goes_on_from_its_checkpoint(kind: StoreKind) {
    let count = if matches!(kind, StoreKind::Embedded) { 120 } else { 30 };
    let app = app_with(kind, false, &[("SYNC_JOB_BUDGET_MS", "1")], SimConfig::default()).await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(count, "slice"));
    let ended = app.connect("org-a", &host).await["sync"].clone();
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert!(ended["slices"].as_u64().unwrap() >= count as u64 / 8, "one slice per few events: {ended}");
    assert_eq!(ended["bookings_new"], count as u64);
    assert_eq!(ended["events_seen"], count as u64);
    // Every event's invitees were fetched once: no slice started over.
    assert_eq!(app.sim.request_count("invitees"), count as u64);
    let prospects = app.prospects("org-a").await;
    assert_eq!(prospects.len(), count.min(100));
    for p in &prospects {
        assert_eq!(p["notes"].as_str().unwrap().split("\n\n").count(), 1, "{p}");
    }
}

/// Events of the killed job: past one page of 100, so the kill comes after a checkpoint.
const KILLED_JOB_EVENTS: u64 = 150;

async fn a_worker_killed_mid_slice_is_replaced_by_its_redelivered_message_without_duplicates(kind: StoreKind) {
    let app = app_with(kind, false, &[], SimConfig::default()).await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.sim.seed_bookings(&host, bookings(KILLED_JOB_EVENTS as usize, "kill"));
    app.sim.set_latency(Duration::from_millis(50));
    let services = &app.stack.services;
    let org = OrganizationId::new("org-a");
    // A job recorded but not yet delivered (as if its message were still in SQS).
    let integration = services.store().get_integration(&org).await.unwrap().unwrap();
    let now = shared::clock::Clock::now(app.stack.clock.as_ref());
    let (start, end) = services.engine().window_at(now);
    let job = shared::domain::SyncJob::queued(
        org.clone(),
        integration.id.clone(),
        shared::domain::SyncTrigger::Manual,
        start,
        end,
        now,
    );
    let started = services.store().start_sync_job(&job, now).await.unwrap();
    assert!(matches!(started, shared::store::JobStart::Created(_)), "{started:?}");
    let message: SyncJobMessage = job.message();
    let invitees_at_start = app.sim.request_count("invitees");

    // The worker dies mid-slice, once its first page is checkpointed: the task is aborted
    // with the lease held.
    // A budget no slice reaches here (moto on a busy machine is slow): the kill ends it.
    let first_slice = Duration::from_secs(600);
    let deadline = tokio::time::Instant::now() + first_slice;
    let worker = {
        let (services, message) = (services.clone(), message.clone());
        tokio::spawn(async move { services.worker().run_sync_job(&message, deadline).await })
    };
    let stored = loop {
        // A busy store may refuse a poll: poll again.
        let Ok(Some(stored)) = services.store().get_sync_job(&org).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        if stored.checkpoint.pages_done >= 1 {
            break stored;
        }
        if worker.is_finished() {
            panic!("the slice ended before its first checkpoint: {:?}, job {stored:?}", worker.await);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // ...and once it has gone well into the next page: bookings committed that its saved
    // progress does not count yet. (Read from the simulator's counter: polling the store
    // would be slower than the worker.)
    let past_checkpoint = invitees_at_start + stored.checkpoint.events_before_page + 16;
    while app.sim.request_count("invitees") < past_checkpoint {
        if worker.is_finished() {
            panic!("the slice ended before going past its checkpoint: {:?}", worker.await);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    assert_eq!(stored.state, shared::domain::SyncJobState::Running, "killed mid-job: {stored:?}");
    let invitee_calls_before = app.sim.request_count("invitees");

    // A duplicate delivery while the lease holds runs nothing.
    services.worker().run_sync_job(&message, deadline).await.unwrap();
    assert_eq!(services.store().get_sync_job(&org).await.unwrap().unwrap().slices, 1);

    // SQS brings the message back after its visibility timeout, past the dead slice's lease
    // (its budget and 30 s).
    app.advance_clocks(chrono::Duration::from_std(first_slice).unwrap() + chrono::Duration::seconds(31));
    services.worker().run_sync_job(&message, tokio::time::Instant::now() + Duration::from_secs(60)).await.unwrap();
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(ended["state"], "succeeded", "{ended}");
    // One more slice at least (more when the store is slow and the slice runs out of time).
    assert!(ended["slices"].as_u64().unwrap() >= 2, "{ended}");
    assert_eq!(ended["events_seen"], KILLED_JOB_EVENTS);
    // The counters are what was committed, the dead slice's commits included.
    for counter in ["bookings_new", "prospects_created", "notes_added"] {
        assert_eq!(ended[counter], KILLED_JOB_EVENTS, "{counter}: {ended}");
    }
    // Resumed, not restarted: only the events in flight at the kill are fetched again.
    let refetched = app.sim.request_count("invitees") - invitee_calls_before;
    assert!(
        refetched <= KILLED_JOB_EVENTS - stored.checkpoint.events_before_page + 8,
        "{refetched} invitee lists after the resume"
    );
    let mut emails = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/prospects?limit=100&cursor={c}"),
            None => "/prospects?limit=100".to_string(),
        };
        let page = app.get(&path, "org-a").await.expect(200);
        for p in page["items"].as_array().unwrap() {
            assert_eq!(p["notes"].as_str().unwrap().split("\n\n").count(), 1, "one note per booking: {p}");
            assert!(emails.insert(p["email"].as_str().unwrap().to_string()), "one prospect per email");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(emails.len() as u64, KILLED_JOB_EVENTS);
}

crate::helpers::on_both_stores!(
    a_worker_killed_mid_slice_is_replaced_by_its_redelivered_message_without_duplicates,
    kind
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduled_tick_queues_and_syncs_every_due_organization() {
    const ORGS: usize = 300;
    let app = app_with(StoreKind::Embedded, false, &[], SimConfig::default()).await;
    app.sim.set_webhook_deliveries(false);
    let mut hosts = Vec::new();
    for i in 0..ORGS {
        let host = app.host(&format!("Host {i}"));
        app.connect_queued(&format!("org-{i}"), &host).await;
        hosts.push(host);
    }
    for i in 0..ORGS {
        app.wait_for_sync(&format!("org-{i}")).await;
    }
    for (i, host) in hosts.iter().enumerate() {
        app.seed(host, "Invitee", &format!("due{i}@example.com"), "Découverte 30min", in_days(2));
    }
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], ORGS as u64, "no cap on one tick: {run}");
    for i in 0..ORGS {
        let ended = app.wait_for_sync_within(&format!("org-{i}"), Duration::from_secs(120)).await;
        assert_eq!(ended["trigger"], "scheduled");
        assert_eq!(ended["state"], "succeeded", "{ended}");
        assert_eq!(ended["bookings_new"], 1);
    }
    let again = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(again["queued"], 0, "each organization is queued once per interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_sqs_with_delayed_messages_for_rate_limit_resets() {
    let app = app_with(StoreKind::DynamoDb, true, &[], tight_limit(12)).await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(30, "sqs"));
    let answer = app.connect_queued("org-a", &host).await;
    assert_eq!(answer["sync"]["state"], "queued");
    let ended = app.wait_for_sync_within("org-a", Duration::from_secs(90)).await;
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["bookings_new"], 30);
    assert_paused_when_the_window_filled(&app, 12, &ended);
    assert!(app.sim.rate_limited_count() * 100 <= app.sim.api_request_count());

    // A scheduled tick over SQS too.
    app.seed(&host, "Late Booker", "late@example.com", "Suivi", in_days(4));
    app.advance_clocks(chrono::Duration::minutes(31));
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1);
    let ended = app.wait_for_sync_within("org-a", Duration::from_secs(60)).await;
    assert_eq!(ended["trigger"], "scheduled");
    assert_eq!(ended["bookings_new"], 1);
}

#[tokio::test]
async fn a_sync_request_answers_202_with_the_job_and_the_status_shows_it() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/calendly/status", "org-a").await.expect(200)["sync"], Value::Null);
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["sync"]["trigger"], "initial");
    assert_eq!(status["sync"]["state"], "succeeded");
    for key in [
        "started_at",
        "finished_at",
        "events_seen",
        "bookings_new",
        "bookings_changed",
        "prospects_created",
        "notes_added",
        "calendly_requests",
        "error",
    ] {
        assert!(status["sync"].get(key).is_some(), "status.sync.{key}");
    }
    let queued = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    assert_eq!(queued["trigger"], "manual");
    assert!(queued["state"] == "queued" || queued["state"] == "running", "{queued}");
    assert_eq!(
        app.get("/calendly/status", "org-b").await.expect(200)["sync"],
        Value::Null,
        "another organization sees no job"
    );
}

crate::helpers::on_both_stores!(a_large_account_connects_at_once_and_its_job_syncs_it_under_the_rate_limit, kind);

crate::helpers::on_both_stores!(a_job_with_a_tiny_time_budget_goes_on_from_its_checkpoint, kind);

#[tokio::test]
async fn a_queue_that_refuses_the_job_is_a_503_and_blocks_nothing() {
    // SQS unreachable: nothing listens on the discard port.
    let env = [
        ("QUEUE", "sqs"),
        ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9"),
        ("SYNC_QUEUE_URL", "http://127.0.0.1:9/000000000000/velvena-sync-jobs"),
    ];
    let app = app_with(StoreKind::Embedded, false, &env, SimConfig::default()).await;
    let host = app.host("Camille Martin");
    let answer = app.connect_queued("org-a", &host).await;
    assert_eq!(answer["connected"], true, "connected even though the first sync could not be queued");
    assert_eq!(answer["sync"]["state"], "failed");

    let reply = app.post("/calendly/sync", "org-a", json!({})).await;
    assert_eq!(reply.status.as_u16(), 503);
    assert_eq!(reply.error_code(), "queue_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    let sync = app.get("/calendly/status", "org-a").await.expect(200)["sync"].clone();
    assert_eq!(sync["state"], "failed", "a job nobody will run is failed, so the next request can queue one");
    // The schedule still finds it due: its next sync was never moved.
    let part = shared::store::DuePartition::of(&shared::domain::OrganizationId::new("org-a"), 16);
    let due = app.stack.store.list_due_integrations(chrono::Utc::now(), &part, 10, None).await.unwrap();
    assert!(due.items.iter().any(|i| i.organization_id.as_str() == "org-a"));
}

#[tokio::test]
async fn a_page_token_that_comes_back_ends_the_sync_with_an_error_instead_of_looping() {
    let app = TestApp::spawn().await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(3, "loop"));
    // Calendly's own OpenAPI examples hand out one next_page_token forever.
    app.sim.set_repeat_page_token(true);
    let ended = app.connect("org-a", &host).await["sync"].clone();
    assert_eq!(ended["state"], "failed", "{ended}");
    assert!(ended["error"].as_str().unwrap().contains("pagination"), "{ended}");
    assert!(app.sim.request_count("scheduled_events") <= 3, "stopped at the first repeated token");
}

#[tokio::test]
async fn one_event_calendly_refuses_is_skipped_and_the_others_are_synced() {
    let app = TestApp::spawn().await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    let booked = app.sim.seed_bookings(&host, bookings(5, "iso"));
    app.sim.fail_invitees_of(&booked[0], 403);
    app.sim.fail_invitees_of(&booked[3], 404);
    let ended = app.connect("org-a", &host).await["sync"].clone();
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["bookings_new"], 3);
    assert_eq!(ended["events_seen"], 5);
    assert_eq!(ended["events_failed"], 2);
    assert!(ended["last_event_error"].is_string(), "{ended}");
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert!(status["last_synced_at"].is_string(), "the integration's schedule moves on");
    assert_eq!(app.prospects("org-a").await.len(), 3);
    // The skipped events are retried by the next sync (their fingerprints were not stored).
    let before = app.sim.request_count("invitees");
    app.sync("org-a").await;
    assert_eq!(app.sim.request_count("invitees") - before, 2);
}

/// The tick hands a job out while a manual sync runs: the worker finds that one under way,
/// drops the scheduled one and takes its hand-out back, so nothing runs twice and no queued
/// job is left showing.
async fn a_scheduled_sync_meeting_a_sync_under_way_is_dropped_and_leaves_nothing_queued(app: TestApp) {
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(5, "busy"));
    app.connect("org-a", &host).await;
    app.advance_clocks(chrono::Duration::minutes(31));
    app.sim.set_latency(Duration::from_millis(300));
    let lists = app.sim.request_count("scheduled_events");
    let manual = app.post("/calendly/sync", "org-a", json!({})).await.expect(202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.get("/calendly/status", "org-a").await.expect(200)["sync"]["state"] != "running" {
        assert!(tokio::time::Instant::now() < deadline, "the manual sync never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run = app.request(reqwest::Method::POST, "/_local/scheduled-sync", None, None).await.expect(200);
    assert_eq!(run["queued"], 1, "due: handed out, for the worker to find the sync under way");
    let ended = app.wait_for_sync("org-a").await;
    assert_eq!(
        (&ended["id"], &ended["trigger"], &ended["state"]),
        (&manual["id"], &json!("manual"), &json!("succeeded"))
    );
    app.sim.set_latency(Duration::ZERO);
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["sync"]["id"], manual["id"], "no scheduled job left queued: {status}");
    // One sync read the events: the window's upcoming part, then its past part.
    assert_eq!(app.sim.request_count("scheduled_events") - lists, 2, "one sync read the events");
}

crate::helpers::on_both_stores!(a_scheduled_sync_meeting_a_sync_under_way_is_dropped_and_leaves_nothing_queued);

/// An unchanged scheduled sync writes once to hand out (job and next due time on the
/// integration) and once to end (the job, with when it synced), and reads the job with the
/// integration in one request: the request shape the cost per organization rests on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_scheduled_sync_is_written_twice_and_read_four_times() {
    use shared::clock::Clock;
    use shared::store::{IntegrationStore, SyncJobStore};
    let app = app_with(StoreKind::DynamoDb, false, &[], SimConfig::default()).await;
    app.sim.set_webhook_deliveries(false);
    let host = app.host("Camille Martin");
    app.sim.seed_bookings(&host, bookings(3, "same"));
    app.connect("org-a", &host).await;
    app.advance_clocks(chrono::Duration::minutes(31));
    let dynamo = app.stack.dynamo.as_ref().expect("on DynamoDB");
    let (observer, org) = (dynamo.observer(), OrganizationId::new("org-a"));
    let parts = observer.due_partitions().len() as u64;
    let before = dynamo.metrics().snapshot();
    let report = app.stack.services.scheduler().tick(crate::helpers::tick_deadline()).await.unwrap();
    assert_eq!(report.queued, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (recorded, integration) = observer.get_sync_job_with_integration(&org).await.unwrap();
        let current = shared::domain::current_job(recorded, integration.as_ref(), app.stack.clock.now()).unwrap();
        if !current.state.is_active() {
            break current;
        }
        assert!(tokio::time::Instant::now() < deadline, "the scheduled sync never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after = dynamo.metrics().snapshot();
    assert_eq!(
        (job.trigger, job.report.bookings_new, job.report.events_seen),
        (shared::domain::SyncTrigger::Scheduled, 0, 3)
    );
    assert!(job.synced_at.is_some());
    let (reads, writes, transactions) = (after.0 - before.0 - parts, after.1 - before.1, after.2 - before.2);
    assert_eq!((writes, transactions), (2, 0), "one write to hand it out, one to end it");
    assert!(
        reads <= 4,
        "the job with the integration, the pacing window, the events' fingerprints, the browsers: {reads}"
    );
    let status = app.get("/calendly/status", "org-a").await.expect(200);
    assert_eq!(status["last_synced_at"], serde_json::to_value(job.synced_at).unwrap(), "{status}");
}
