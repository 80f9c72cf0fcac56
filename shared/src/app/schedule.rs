//! The scheduled tick: hands out every integration whose `next_sync_at` has passed, as a
//! queued sync job kept on the integration item (`HandedOutJob`), and runs no sync itself.
//!
//! The schedule is kept in parts (`DuePartition`: shards of organizations, so no index
//! partition takes every organization's writes); a tick reads its parts concurrently, page by
//! page. Near its deadline it stops and hands what is left of each part (the part and its
//! position) to another invocation through the tick queue, which carries on from there with
//! the same range (what was due at the tick's time). So any number of due organizations is
//! handed out within one interval, none twice (a hand-out is conditional on the due time the
//! tick read and moves it past the tick's range; a worker drops a hand-out that meets a job
//! under way) and none skipped (a rest names its position).

use crate::app::AppError;
use crate::clock::Clock;
use crate::domain::schedule::TickRest;
use crate::domain::{HandedOutJob, SyncJobMessage, SyncWindow};
use crate::queue::{JobQueue, TickQueue};
use crate::store::{IntegrationStore, Scheduled, StoreError};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Due integrations read per page...
const SCHEDULE_PAGE: usize = 500;
/// ...and handed out at once, in each part.
const SCHEDULE_CONCURRENCY: usize = 16;
/// Parts read at once: with the concurrency above, at most 64 writes in flight.
const PARTS_AT_ONCE: usize = 4;
/// A part stops taking pages this long before the deadline: a page takes well under a second
/// on DynamoDB (500 conditional writes, 16 at a time), and handing the rest on one request.
pub const HAND_ON_MARGIN: Duration = Duration::from_secs(10);

/// What one tick (or one handed-on rest of it) did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Jobs recorded and queued.
    pub queued: usize,
    /// Organizations another tick handed out, or whose schedule a settings change moved,
    /// since this tick read them.
    pub moved_meanwhile: usize,
    /// Organizations whose job could not be recorded (they stay due: the next tick retries).
    pub failed: Vec<TickFailure>,
    /// Parts handed on to another invocation, near the deadline.
    pub handed_on: usize,
}

/// An organization a tick could not hand out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TickFailure {
    /// The organization.
    pub organization_id: String,
    /// Why.
    pub error: String,
}

impl TickReport {
    fn add(&mut self, other: TickReport) {
        self.queued += other.queued;
        self.moved_meanwhile += other.moved_meanwhile;
        self.failed.extend(other.failed);
        self.handed_on += other.handed_on;
    }
}

/// The scheduled tick's capability: the schedule (integration items), the job queue, the tick
/// queue and the clock (`sync-scheduled` reads no secret and no job item).
#[derive(Clone)]
pub struct Scheduler {
    integrations: Arc<dyn IntegrationStore>,
    queue: Arc<dyn JobQueue>,
    ticks: Arc<dyn TickQueue>,
    clock: Arc<dyn Clock>,
    window: SyncWindow,
    page: usize,
}

/// A part's end: finished, or stopped at a position near the deadline.
struct PartEnd {
    report: TickReport,
    rest: Option<TickRest>,
}

impl Scheduler {
    /// A scheduler whose jobs cover `window` around their tick.
    pub fn new(
        integrations: Arc<dyn IntegrationStore>,
        queue: Arc<dyn JobQueue>,
        ticks: Arc<dyn TickQueue>,
        clock: Arc<dyn Clock>,
        window: SyncWindow,
    ) -> Self {
        Self { integrations, queue, ticks, clock, window, page: SCHEDULE_PAGE }
    }

    /// The same scheduler reading `page` integrations a page (tests and benchmarks of
    /// hand-on).
    pub fn with_page(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// One scheduled tick: every part of the schedule from its start, until `deadline`.
    pub async fn tick(&self, deadline: Instant) -> Result<TickReport, AppError> {
        let now = self.clock.now();
        let parts = self.integrations.due_partitions().into_iter().map(|p| TickRest::start(now, p)).collect();
        self.hand_out(parts, deadline).await
    }

    /// Carries on what an earlier invocation of the tick handed on, until `deadline`.
    pub async fn resume(&self, rest: TickRest, deadline: Instant) -> Result<TickReport, AppError> {
        tracing::info!(partition = %rest.partition, hop = rest.hop, tick_at = %rest.tick_at, "scheduled tick resumed");
        self.hand_out(vec![rest], deadline).await
    }

    /// Reads `parts` concurrently; what is left near the deadline is handed on. A part that
    /// failed fails the invocation once the others' rests are handed on (EventBridge or SQS
    /// retries it: what it handed out has moved out of the tick's range).
    async fn hand_out(&self, parts: Vec<TickRest>, deadline: Instant) -> Result<TickReport, AppError> {
        let ends: Vec<Result<PartEnd, AppError>> = futures::stream::iter(parts)
            .map(|part| self.hand_out_part(part, deadline))
            .buffer_unordered(PARTS_AT_ONCE)
            .collect()
            .await;
        let mut report = TickReport::default();
        let (mut rests, mut first_error) = (Vec::new(), None);
        for end in ends {
            match end {
                Ok(end) => {
                    report.add(end.report);
                    rests.extend(end.rest);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a part of the schedule failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        if !rests.is_empty() {
            self.ticks.hand_on(&rests).await.map_err(AppError::QueueUnavailable)?;
            report.handed_on = rests.len();
        }
        tracing::info!(
            queued = report.queued,
            moved_meanwhile = report.moved_meanwhile,
            failed = report.failed.len(),
            handed_on = report.handed_on,
            "scheduled sync tick"
        );
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// One part, page by page: at least one page (so a rest always moves on), then as many
    /// as the deadline leaves time for.
    async fn hand_out_part(&self, mut part: TickRest, deadline: Instant) -> Result<PartEnd, AppError> {
        let mut report = TickReport::default();
        loop {
            let page = self
                .integrations
                .list_due_integrations(part.tick_at, &part.partition, self.page, part.cursor.as_deref())
                .await?;
            report.add(self.hand_out_page(page.items).await?);
            let Some(next) = page.next_cursor else { return Ok(PartEnd { report, rest: None }) };
            part.cursor = Some(next);
            if deadline.saturating_duration_since(Instant::now()) < HAND_ON_MARGIN {
                part.hop += 1;
                return Ok(PartEnd { report, rest: Some(part) });
            }
        }
    }

    /// Hands a job out for each integration (one write each: the job and the next due time
    /// an interval ahead, on the integration item), and queues them ten messages a request.
    /// Whether a job is under way already is the worker's to find (it reads the job item
    /// anyway): the tick reads nothing but the schedule.
    async fn hand_out_page(&self, due: Vec<Scheduled>) -> Result<TickReport, AppError> {
        let now = self.clock.now();
        let outcomes: Vec<(Scheduled, HandedOutJob, Result<bool, StoreError>)> = futures::stream::iter(due)
            .map(|integration| async move {
                let job = HandedOutJob::new(integration.integration_id.clone(), self.window, now);
                let next = now + chrono::Duration::minutes(i64::from(integration.interval_minutes));
                let org = &integration.organization_id;
                let handed = self.integrations.hand_out(org, integration.due(), next, &job).await;
                (integration, job, handed)
            })
            .buffer_unordered(SCHEDULE_CONCURRENCY)
            .collect()
            .await;
        let mut report = TickReport::default();
        let mut handed_out = Vec::new();
        for (integration, job, handed) in outcomes {
            match handed {
                Ok(true) => handed_out.push((integration.organization_id, job)),
                Ok(false) => report.moved_meanwhile += 1,
                Err(e) => {
                    tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not hand out a scheduled sync");
                    let organization_id = integration.organization_id.to_string();
                    report.failed.push(TickFailure { organization_id, error: e.to_string() });
                }
            }
        }
        let messages: Vec<SyncJobMessage> = handed_out.iter().map(|(org, job)| job.message(org.clone())).collect();
        if let Err(e) = self.queue.send(&messages, Duration::ZERO).await {
            // Nothing will run these: take them back, due again now (the next tick retries).
            for (org, job) in &handed_out {
                if let Err(e) = self.integrations.withdraw_hand_out(org, &job.id, Some(now)).await {
                    tracing::warn!(organization_id = %org, error = %e, "could not take back a scheduled sync");
                }
            }
            return Err(AppError::QueueUnavailable(e));
        }
        report.queued = handed_out.len();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{RecordingQueue, RecordingTicks, connected};
    use crate::clock::SystemClock;
    use crate::domain::SyncWindow;
    use crate::store::MemoryStore;
    use chrono::Utc;
    use std::collections::HashSet;

    struct Fixture {
        store: Arc<MemoryStore>,
        queue: Arc<RecordingQueue>,
        ticks: Arc<RecordingTicks>,
        scheduler: Scheduler,
    }

    async fn fixture(organizations: usize, shards: u16, page: usize) -> Fixture {
        let clock = Arc::new(SystemClock::default());
        let store = Arc::new(MemoryStore::new().with_due_shards(shards));
        for n in 0..organizations {
            connected(&store, &format!("org-{n:03}"), clock.now() - chrono::Duration::minutes(1)).await;
        }
        let (queue, ticks) = (Arc::new(RecordingQueue::default()), Arc::new(RecordingTicks::default()));
        let window = SyncWindow { days_past: 30, days_ahead: 365 };
        let scheduler = Scheduler::new(store.clone(), queue.clone(), ticks.clone(), clock, window).with_page(page);
        Fixture { store, queue, ticks, scheduler }
    }

    fn queued_organizations(queue: &RecordingQueue) -> Vec<String> {
        queue.sent.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|m| m.organization_id.to_string()).collect()
    }

    #[tokio::test]
    async fn a_tick_with_time_hands_every_due_organization_out_once_and_nothing_on() {
        let f = fixture(60, 4, 5).await;
        let report =
            f.scheduler.tick(Instant::now() + Duration::from_secs(120)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((report.queued, report.handed_on, report.failed.len()), (60, 0, 0));
        assert!(f.ticks.take().is_empty());
        let again = f.scheduler.tick(Instant::now() + Duration::from_secs(120)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.queued + again.moved_meanwhile, 0, "moved off the schedule until their next interval");
        assert_eq!(queued_organizations(&f.queue).into_iter().collect::<HashSet<_>>().len(), 60);
    }

    #[tokio::test]
    async fn a_tick_out_of_time_hands_its_parts_on_and_their_rests_hand_out_every_one_exactly_once() {
        let f = fixture(60, 4, 5).await;
        // Past the margin from the start: each part takes one page, then hands the rest on.
        let mut report = f.scheduler.tick(Instant::now()).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.queued, 20, "one page of each of the 4 parts");
        assert_eq!(report.handed_on, 4);
        let mut hops = 0;
        loop {
            let rests = f.ticks.take();
            if rests.is_empty() {
                break;
            }
            for rest in rests {
                assert!(rest.cursor.is_some() && rest.hop >= 1, "{rest:?}");
                let resumed = f.scheduler.resume(rest, Instant::now()).await.unwrap_or_else(|e| panic!("{e}"));
                report.queued += resumed.queued;
                report.moved_meanwhile += resumed.moved_meanwhile;
                hops += 1;
            }
        }
        assert!(hops >= 8, "each part went through several invocations: {hops}");
        assert_eq!((report.queued, report.moved_meanwhile), (60, 0));
        let queued = queued_organizations(&f.queue);
        assert_eq!(queued.len(), 60, "no organization twice");
        assert_eq!(queued.into_iter().collect::<HashSet<_>>().len(), 60, "none skipped");
        // Nothing is left due of that tick.
        for partition in f.store.due_partitions() {
            assert!(
                f.store.list_due_integrations(Utc::now(), &partition, 10, None).await.is_ok_and(|p| p.items.is_empty())
            );
        }
    }

    #[tokio::test]
    async fn a_rest_naming_a_part_the_store_does_not_keep_fails_and_hands_nothing_out() {
        let f = fixture(3, 2, 5).await;
        let foreign: TickRest = serde_json::from_value(serde_json::json!({
            "tick_at": Utc::now(), "partition": "DUE#77", "cursor": null, "hop": 1
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.scheduler.resume(foreign, Instant::now()).await.is_err());
        assert!(queued_organizations(&f.queue).is_empty());
    }
}
