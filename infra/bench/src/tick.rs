//! One scheduled tick over many due organizations, and what a month of them costs.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the embedded run measured per sync, for the DynamoDB run to price with.
#[derive(Clone, Copy, Debug)]
pub(super) struct PerSync {
    /// Mean job time (first slice to end), seconds.
    pub job_secs: f64,
    /// Bytes of log lines one sync writes (JSON lines and its share of the EMF lines).
    pub log_bytes: f64,
}

/// One scheduled tick of `orgs` due organizations with nothing new: how fast the queue drains,
/// and what one organization's sync costs (counted here, priced below). On the embedded store
/// it also counts the log lines the syncs write, as the Lambda functions write them.
pub(super) async fn scheduled_tick(rows: &Rows, dynamodb: bool, embedded: Option<PerSync>) -> PerSync {
    // moto keeps growing (~15 MB per organization set up here) and serializes every request:
    // its run uses fewer organizations.
    let default = if dynamodb { 300 } else { 2000 };
    let orgs: usize = std::env::var("BENCH_TICK_ORGS").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let workers: usize = std::env::var("BENCH_TICK_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let label = if dynamodb { "DynamoDB (moto)" } else { "embedded" };
    let env = HashMap::from([("SYNC_WORKERS".to_string(), workers.to_string())]);
    let stack = stack_with(dynamodb, 1_000_000, env).await;
    let sim = stack.simulator.clone().unwrap();
    sim.set_webhook_deliveries(false);
    let set_up = Instant::now();
    let names: Vec<String> = (0..orgs).map(|i| format!("tick-org-{i}")).collect();
    futures::stream::iter(names.iter().enumerate())
        .for_each_concurrent(32, |(i, org)| {
            let (stack, sim) = (&stack, &sim);
            async move {
                let host = sim.add_user(&format!("Host {i}"), &format!("host{i}@example.com"));
                sim.seed_bookings(
                    &host,
                    vec![BookingSpec::new(
                        "Invitee",
                        &format!("t{i}@example.com"),
                        "Démo",
                        Utc::now() + ChronoDuration::days(2),
                    )],
                );
                connect(stack, org, &host).await;
            }
        })
        .await;
    eprintln!("bench: {orgs} organizations connected and synced in {:.1} s ({label})", set_up.elapsed().as_secs_f64());

    // Calendly answers in ~100 ms from here; the tick is measured with that latency.
    sim.set_latency(Duration::from_millis(100));
    let clock: &shared::clock::SystemClock = &stack.clock;
    clock.advance(ChronoDuration::minutes(31));
    sim.advance_clock(ChronoDuration::minutes(31));
    let (calendly_before, dynamo_before) =
        (sim.api_request_counts(), stack.dynamo.as_ref().map(|d| d.metrics().snapshot()));
    if !dynamodb {
        shared::telemetry::init_json_with(|| CountingWriter);
        shared::telemetry::metrics::registry().take_documents("sync-worker", 0);
        COUNTING.store(true, Ordering::SeqCst);
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let run = stack.services.scheduler().tick(deadline).await.expect("the tick runs");
    let tick = started.elapsed();
    let mut durations = Vec::with_capacity(orgs);
    for org in &names {
        let job = job_ended(&stack, org, Duration::from_secs(3600)).await.expect("the job ends");
        assert_eq!(job.trigger, shared::domain::SyncTrigger::Scheduled, "{org} was not synced by the tick");
        if let (Some(s), Some(f)) = (job.started_at, job.finished_at) {
            durations.push((f - s).to_std().unwrap_or_default());
        }
    }
    let drained = started.elapsed();
    COUNTING.store(false, Ordering::SeqCst);
    let log_bytes = if dynamodb { 0.0 } else { logged_per_sync(rows, orgs) };
    let calendly_after = sim.api_request_counts();
    let calls = |kind: &str| calendly_after[kind] - calendly_before[kind];
    let per_org_calendly = calendly_after.keys().map(|k| calls(k)).sum::<u64>() as f64 / orgs as f64;
    let calendly_kinds: Vec<String> = calendly_after
        .keys()
        .filter(|k| calls(k) > 0)
        .map(|k| format!("{k} {:.1}", calls(k) as f64 / orgs as f64))
        .collect();
    rows.push(row(
        format!("one scheduled tick of {orgs} due organizations, {label}: tick (queues them all)"),
        format!("{} ({} queued)", ms(tick), run.queued),
        "seconds at any scale (no cap)",
        "–",
    ));
    rows.push(row(
        format!("one scheduled tick of {orgs} due organizations, {label}: all synced"),
        format!(
            "{:.1} s = {:.0} organizations/s with {workers} jobs at once; {:.1} Calendly requests each ({}; 100 ms per request)",
            drained.as_secs_f64(),
            orgs as f64 / drained.as_secs_f64(),
            per_org_calendly,
            calendly_kinds.join(", ")
        ),
        "300 in < 2 min",
        ratio(drained.as_secs_f64() * 300.0 / orgs as f64, 120.0),
    ));
    let mean_job = durations.iter().map(Duration::as_secs_f64).sum::<f64>() / durations.len().max(1) as f64;
    let measured = PerSync { job_secs: mean_job, log_bytes };
    if let (Some(before), Some(d)) = (dynamo_before, stack.dynamo.as_ref()) {
        let now = d.metrics().snapshot();
        let per = |a: u64, b: u64| (a - b) as f64 / orgs as f64;
        // What the writes cost depends on the items' sizes: the hand-out updates the schedule
        // item, the end puts the job item; each costs a unit per started KB.
        let observer = d.observer();
        let first = OrganizationId::new(&names[0]);
        let kb = |bytes: Option<usize>| bytes.unwrap_or(0).div_ceil(1024).max(1) as f64;
        let schedule = observer.billed_item_size(&first, "SCHEDULE").await.ok().flatten();
        let job = observer.billed_item_size(&first, "SYNCJOB").await.ok().flatten();
        let integration = observer.billed_item_size(&first, "CALENDLY").await.ok().flatten();
        let (reads, writes) = (per(now.0, before.0), per(now.1, before.1));
        let requests = Requests {
            reads,
            writes,
            transactions: per(now.2, before.2),
            // The worker's first read takes three items (the job, the integration, its
            // schedule) in one request.
            read_units: reads + 2.0,
            write_units: kb(schedule) + kb(job) + (writes - 2.0).max(0.0),
            sizes: (schedule.unwrap_or(0), job.unwrap_or(0), integration.unwrap_or(0)),
        };
        let log_bytes = embedded.map_or(ESTIMATED_LOG_BYTES, |e| e.log_bytes);
        let tick_share = tick.as_secs_f64() / orgs as f64;
        cost_row(rows, "measured on moto", requests, PerSync { job_secs: mean_job, log_bytes }, tick_share);
        // moto serializes every request, so its jobs wait on one lock: also price a job as long
        // as the embedded run's plus 5 ms per DynamoDB request (DynamoDB's usual latency).
        if let Some(embedded) = embedded {
            let job_secs = embedded.job_secs + (requests.reads + requests.writes + requests.transactions) * 0.005;
            let timing = "embedded run's job time + 5 ms per DynamoDB request";
            cost_row(rows, timing, requests, PerSync { job_secs, log_bytes }, 0.0);
        }
    }
    measured
}

/// Log bytes counted while a part counts (`COUNTING`), through the JSON subscriber Lambda uses.
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Where the bench's JSON log lines go: counted, then dropped.
struct CountingWriter;

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if COUNTING.load(Ordering::Relaxed) {
            LOG_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Used when no embedded run measured the log volume.
const ESTIMATED_LOG_BYTES: f64 = 1_500.0;
/// Lambda's own lines per invocation (START, END, REPORT), estimated from their published form.
const PLATFORM_LOG_BYTES: f64 = 350.0;
/// The worker's SQS batch (`BatchSize` in template.yaml): a tick hands out its page at once, so
/// at scale the batches are full.
const BATCH: f64 = 10.0;

/// The log volume per sync of the run just counted: the JSON lines (tick and jobs, divided
/// among the organizations), plus a batch's EMF lines and Lambda's platform lines shared by
/// its syncs. A row says what it found.
fn logged_per_sync(rows: &Rows, orgs: usize) -> f64 {
    let lines = LOG_BYTES.swap(0, Ordering::SeqCst) as f64 / orgs as f64;
    // The registry gathered every job's metrics; one invocation's EMF lines hold a batch's: its
    // counts, and ten values of each distribution.
    let documents = shared::telemetry::metrics::registry().take_documents("sync-worker", Utc::now().timestamp_millis());
    let emf: usize = documents
        .into_iter()
        .map(|mut document| {
            if let Some(fields) = document.as_object_mut() {
                for value in fields.values_mut() {
                    if let Some(values) = value.as_array_mut().filter(|v| v.iter().all(Value::is_number)) {
                        values.truncate(BATCH as usize);
                    }
                }
            }
            document.to_string().len() + 1
        })
        .sum();
    let per_sync = lines + (emf as f64 + PLATFORM_LOG_BYTES) / BATCH;
    rows.push(row(
        "log volume per scheduled sync with nothing new (JSON lines as on Lambda)",
        format!(
            "{per_sync:.0} bytes: {lines:.0} of the function's lines, {:.0} of a batch's EMF lines ({emf} bytes per invocation), {:.0} of Lambda's START/END/REPORT (≈ {PLATFORM_LOG_BYTES:.0} per invocation, estimated)",
            emf as f64 / BATCH,
            PLATFORM_LOG_BYTES / BATCH
        ),
        "CloudWatch Logs bills ingestion per GB",
        "–",
    ));
    per_sync
}

/// DynamoDB requests per sync, as counted, and the capacity units they cost.
#[derive(Clone, Copy, Debug)]
pub(super) struct Requests {
    reads: f64,
    writes: f64,
    transactions: f64,
    /// Read units (strongly consistent, items under 4 KB: one per item read).
    read_units: f64,
    /// Write units (one per started KB of each item written).
    write_units: f64,
    /// The billed sizes of the schedule item, the job item and the integration item, bytes.
    sizes: (usize, usize, usize),
}

/// AWS cost of keeping one organization in sync for a month at the default 30-minute interval,
/// from what one scheduled sync was counted to use. On-demand prices, us-east-1, as published
/// in Nov 2026 (DynamoDB after its Nov 2024 on-demand price cut):
/// Lambda arm64 $0.0000133334 per GB-s and $0.20 per million requests; SQS standard $0.40 per
/// million requests; DynamoDB on-demand $0.625 per million write request units and $0.125 per
/// million read request units; CloudWatch Logs $0.50 per GB ingested. Writes cost a WRU per
/// started KB of the item, strongly consistent reads an RRU per item (under 4 KB), a
/// transaction two WRU per item (none when nothing changed).
pub(super) fn cost_row(rows: &Rows, timing: &str, requests: Requests, per_sync: PerSync, tick_secs: f64) {
    const SYNCS_PER_MONTH: f64 = 48.0 * 30.0;
    const GB: f64 = 128.0 / 1024.0;
    const LAMBDA_GB_S: f64 = 0.000_013_333_4;
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    const SQS_REQUEST: f64 = 0.40 / 1e6;
    const WRU: f64 = 0.625 / 1e6;
    const RRU: f64 = 0.125 / 1e6;
    const LOG_GB: f64 = 0.50 / 1e9;
    let Requests { reads, writes, transactions, read_units, write_units, sizes } = requests;
    let PerSync { job_secs, log_bytes } = per_sync;
    // Worker: one invocation per batch of ten, whose records run at once (the handler runs
    // ten slices concurrently, each waiting on Calendly and DynamoDB most of its time), so an
    // invocation lasts about one job: a tenth of a job's GB-s per sync (modelled, not
    // measured on Lambda); the tick's share. SQS: a tenth of a SendMessageBatch, of a receive
    // and of a DeleteMessageBatch per message.
    let lambda = (job_secs / BATCH + tick_secs) * GB * LAMBDA_GB_S + LAMBDA_REQUEST / BATCH;
    let sqs = 3.0 / BATCH * SQS_REQUEST;
    let dynamodb = read_units * RRU + (write_units + 2.0 * transactions) * WRU;
    let logs = log_bytes * LOG_GB;
    let month = SYNCS_PER_MONTH * (lambda + sqs + dynamodb + logs);
    rows.push(row(
        format!("AWS cost per organization-month, 30-min interval (1,440 syncs, nothing new; {timing})"),
        format!(
            "${month:.4}: DynamoDB ${:.4} ({reads:.1} reads, {writes:.1} writes per sync = {read_units:.1} RRU, {write_units:.1} WRU: schedule item {} bytes, job item {} bytes, integration item {} bytes), Lambda ${:.4} ({:.0} ms a job at 128 MB, ten at once per invocation), SQS ${:.4}, logs ${:.4} ({log_bytes:.0} bytes/sync)",
            SYNCS_PER_MONTH * dynamodb,
            sizes.0,
            sizes.1,
            sizes.2,
            SYNCS_PER_MONTH * lambda,
            job_secs * 1000.0,
            SYNCS_PER_MONTH * sqs,
            SYNCS_PER_MONTH * logs,
        ),
        "us-east-1 on-demand: Lambda arm64 $0.0000133334/GB-s + $0.20/M req; SQS $0.40/M; DynamoDB $0.625/M WRU, $0.125/M RRU; Logs $0.50/GB; goal ≤ $0.004 at 10,000 organizations",
        ratio(month, 0.004),
    ));
    // At scale: the per-organization figure times the organizations, and what does not grow
    // with them: the tick's invocations (8,640 a month, each reading 17 parts) and the worker
    // queue's pollers' empty long polls (5 pollers, one 20-s poll each, a month: 648,000).
    let fixed = 8_640.0 * (LAMBDA_REQUEST + 0.1 * GB * LAMBDA_GB_S + 17.0 * RRU) + 648_000.0 * SQS_REQUEST;
    for (interval, syncs) in [("30-min", SYNCS_PER_MONTH), ("5-min", 12.0 * 24.0 * 30.0)] {
        let per_org = syncs * (lambda + sqs + dynamodb + logs);
        let at = |orgs: f64| per_org * orgs + fixed;
        rows.push(row(
            format!("AWS cost per month, {interval} interval, nothing new ({timing})"),
            format!(
                "1,000 organizations ${:.2} · 10,000 ${:.0} · 100,000 ${:.0} (${:.4} per organization at 10,000, of which logs ${:.4}; ${fixed:.2} a month whatever the count)",
                at(1e3),
                at(1e4),
                at(1e5),
                at(1e4) / 1e4,
                syncs * logs
            ),
            "as above, with the tick's and the queue pollers' fixed share",
            "–",
        ));
    }
}

/// Counts the job messages a tick sends, and the organizations they name.
#[derive(Default)]
struct CountingQueue(Mutex<(usize, std::collections::HashSet<String>)>);

#[async_trait::async_trait]
impl shared::queue::JobQueue for CountingQueue {
    async fn send(
        &self,
        messages: &[shared::domain::SyncJobMessage],
        _: Duration,
    ) -> Result<(), shared::queue::QueueError> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.0 += messages.len();
        seen.1.extend(messages.iter().map(|m| m.organization_id.to_string()));
        Ok(())
    }
}

/// Keeps what a tick hands on, for the next "invocation" to resume.
#[derive(Default)]
struct KeptRests(Mutex<Vec<shared::domain::schedule::TickRest>>);

#[async_trait::async_trait]
impl shared::queue::TickQueue for KeptRests {
    async fn hand_on(&self, rests: &[shared::domain::schedule::TickRest]) -> Result<(), shared::queue::QueueError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(rests);
        Ok(())
    }
}

/// This process's resident memory, in MB.
fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// The schedule at internet scale: `BENCH_SCALE_ORGS` (100,000) due organizations in the
/// embedded store, handed out by one tick with a Lambda's time, then again by ticks that run
/// out of time after every page and hand the rest on: how long, how much memory, how many
/// invocations, and that each organization is handed out exactly once.
pub(super) async fn tick_at_scale(rows: &Rows) {
    use shared::clock::Clock;
    use shared::store::IntegrationStore;
    let orgs: usize = std::env::var("BENCH_SCALE_ORGS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let clock = Arc::new(shared::clock::SystemClock::default());
    let window = shared::domain::SyncWindow { days_past: 30, days_ahead: 365 };
    let seed = |store: Arc<shared::store::MemoryStore>| {
        let clock = clock.clone();
        async move {
            let now = clock.now();
            for n in 0..orgs {
                let account = shared::domain::ConnectedAccount {
                    id: shared::domain::IntegrationId::generate(),
                    organization_id: OrganizationId::new(format!("scale-org-{n}")),
                    connected_by: shared::domain::UserId::new("user"),
                    calendly_user_uri: format!("https://api.calendly.com/users/scale-{n}"),
                    calendly_organization_uri: format!("https://api.calendly.com/organizations/scale-{n}"),
                    email: format!("host{n}@example.com"),
                    name: "Host".into(),
                    scheduling_url: None,
                };
                let integration = shared::domain::Integration::connected(
                    account,
                    now + ChronoDuration::hours(2),
                    now - ChronoDuration::minutes(1),
                );
                store.save_connected_integration(integration).await.unwrap();
            }
        }
    };
    let before = resident_mb();
    let store = Arc::new(shared::store::MemoryStore::new());
    seed(store.clone()).await;
    let seeded = resident_mb();
    let (queue, ticks) = (Arc::new(CountingQueue::default()), Arc::new(KeptRests::default()));
    let scheduler = shared::app::Scheduler::new(store.clone(), queue.clone(), ticks.clone(), clock.clone(), window);
    let started = Instant::now();
    let report = scheduler.tick(tokio::time::Instant::now() + Duration::from_secs(108)).await.unwrap();
    let took = started.elapsed();
    let after = resident_mb();
    let (sent, unique) = {
        let seen = queue.0.lock().unwrap_or_else(|e| e.into_inner());
        (seen.0, seen.1.len())
    };
    rows.push(row(
        format!("one scheduled tick of {orgs} due organizations, embedded store, 16 parts read 4 at a time"),
        format!(
            "{} ({} queued, {sent} messages for {unique} organizations, {} handed on); memory: {:.0} MB for the {orgs} integrations, +{:.0} MB for the tick (its {sent} jobs)",
            ms(took),
            report.queued,
            report.handed_on,
            seeded - before,
            after - seeded
        ),
        "one interval (5 min) at any scale; each organization once",
        ratio(took.as_secs_f64(), 300.0),
    ));

    // Out of time after every page: each part is handed through invocation after invocation.
    let store = Arc::new(shared::store::MemoryStore::new());
    seed(store.clone()).await;
    let (queue, ticks) = (Arc::new(CountingQueue::default()), Arc::new(KeptRests::default()));
    let scheduler = shared::app::Scheduler::new(store.clone(), queue.clone(), ticks.clone(), clock, window);
    let started = Instant::now();
    let mut invocations = 1;
    let mut queued = scheduler.tick(tokio::time::Instant::now()).await.unwrap().queued;
    loop {
        let rests = std::mem::take(&mut *ticks.0.lock().unwrap_or_else(|e| e.into_inner()));
        if rests.is_empty() {
            break;
        }
        for rest in rests {
            invocations += 1;
            queued += scheduler.resume(rest, tokio::time::Instant::now()).await.unwrap().queued;
        }
    }
    let took = started.elapsed();
    let (sent, unique) = {
        let seen = queue.0.lock().unwrap_or_else(|e| e.into_inner());
        (seen.0, seen.1.len())
    };
    rows.push(row(
        "same, every invocation out of time after one page of 500 (hand-on through the tick queue)".to_string(),
        format!(
            "{} over {invocations} invocations; {queued} queued, {sent} messages for {unique} organizations (none twice, none skipped: {})",
            ms(took),
            sent == orgs && unique == orgs
        ),
        "each organization exactly once",
        "–",
    ));
}
