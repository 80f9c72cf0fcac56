//! Sync jobs: `Jobs` queues one (connect, `POST /calendly/sync`), `Scheduler` the due ones
//! (`schedule.rs`),
//! and `Worker` runs one slice of one per queue message. A slice claims the job's lease for
//! its turn, runs the engine until done, out of budget or rate-limited, then either finishes
//! the job or saves the pause and sends the next turn's message (delayed until Calendly's
//! window resets). Saved first, sent second: a worker that dies in between leaves its own
//! message to come back from the queue, and that message may carry on the paused job (see
//! `SyncJob::claim`).

use crate::app::{AppError, CalendlyAccess, ErrorCode, Subscriptions, WebhookCheck};
use crate::clock::Clock;
use crate::domain::{
    CalendlyScope, DEFAULT_SYNC_INTERVAL_MINUTES, Integration, OrganizationId, SyncJob, SyncJobMessage, SyncJobState,
    SyncTrigger, SyncWindow, Unrecorded,
};
use crate::engine::tokens::TokenError;
use crate::engine::{SliceEnd, SyncEngine, SyncError};
use crate::push::{PushMessage, Pusher};
use crate::queue::{JobQueue, QueueError};
use crate::store::{IntegrationStore, JobStart, ScheduleSeen, StoreError, SyncJobStore};
use crate::telemetry::metrics::{self, Metric};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Transient failures (Calendly or the store unreachable) are retried this many times, with
/// growing delays, before the job fails.
const MAX_RETRIES: u32 = 5;
/// A slice's lease outlives its deadline by this much: requests in flight at the deadline end.
const LEASE_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// The member list of an organization-scope integration is read again past this age.
const MEMBERS_MAX_AGE: chrono::Duration = chrono::Duration::hours(24);
/// How far before the last sync the routing form poll looks (exactly once either way).
const ROUTING_POLL_OVERLAP: chrono::Duration = chrono::Duration::hours(1);

/// Why a worker could not finish with a message: the queue must bring it back.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job item could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The next turn's message could not be sent.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The message is not a job message: it fails every delivery, so SQS hands it to the
    /// dead-letter queue after `maxReceiveCount` (5) tries, where its alarm fires.
    #[error("malformed job message: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// A queued (or already running) sync.
#[derive(Clone, Debug)]
pub struct QueuedSync {
    /// The job, as recorded.
    pub job: SyncJob,
    /// False when a job already under way stands for this request.
    pub created: bool,
}

/// Queuing syncs (connect, `POST /calendly/sync`) and reading the latest: the integration and
/// job items, the queue, the pushes of the job's state and the clock.
#[derive(Clone)]
pub struct Jobs {
    ports: JobPorts,
    window: SyncWindow,
    manual_sync_cooldown: chrono::Duration,
}

impl Jobs {
    /// Jobs covering `window`, one manual sync per organization per `manual_sync_cooldown`.
    pub fn new(ports: JobPorts, window: SyncWindow, manual_sync_cooldown: chrono::Duration) -> Self {
        Self { ports, window, manual_sync_cooldown }
    }

    /// Queues a sync of the organization's integration, or returns the one already under way
    /// (a handed-out scheduled job included).
    pub async fn request_sync(&self, org: &OrganizationId, trigger: SyncTrigger) -> Result<QueuedSync, AppError> {
        let (recorded, integration) = self.ports.jobs.get_sync_job_with_integration(org).await?;
        let integration = integration.filter(|i| i.is_active).ok_or_else(AppError::not_connected)?;
        if integration.needs_reconnect {
            return Err(TokenError::NeedsReconnect.into());
        }
        let now = self.ports.clock.now();
        if let Some(handed_out) = integration.handed_out.as_ref().filter(|h| h.pending(recorded.as_ref(), now)) {
            return Ok(QueuedSync { job: handed_out.job(org.clone()), created: false });
        }
        if trigger == SyncTrigger::Manual {
            self.check_manual_cooldown(recorded.as_ref(), now)?;
        }
        self.queue_sync(&integration, trigger).await
    }

    /// A manual sync re-reads the whole window from Calendly: one per cooldown per
    /// organization, so no member can spend the organization's Calendly budget by asking
    /// again and again (webhooks already bring every booking within seconds). A job still
    /// under way is no refusal: the answer is that job.
    fn check_manual_cooldown(&self, latest: Option<&SyncJob>, now: DateTime<Utc>) -> Result<(), AppError> {
        let Some(latest) = latest else { return Ok(()) };
        let allowed_at = latest.queued_at + self.manual_sync_cooldown;
        if latest.trigger == SyncTrigger::Manual && !latest.state.is_active() && allowed_at > now {
            return Err(AppError::too_many_requests(
                ErrorCode::SyncCooldown,
                format!(
                    "a manual sync ran moments ago; the next one can start in {} s (one per {} s)",
                    crate::domain::quota::retry_after_seconds(allowed_at, now),
                    self.manual_sync_cooldown.num_seconds()
                ),
                allowed_at,
                now,
            ));
        }
        Ok(())
    }

    /// Records a queued job, then sends its message; a job the queue refused is failed at once
    /// so it blocks nothing.
    pub async fn queue_sync(&self, integration: &Integration, trigger: SyncTrigger) -> Result<QueuedSync, AppError> {
        let org = &integration.organization_id;
        let now = self.ports.clock.now();
        let (start, end) = self.window.at(now);
        let job = SyncJob::queued(org.clone(), integration.id.clone(), trigger, start, end, now);
        let job = match self.ports.jobs.start_sync_job(&job, now).await? {
            JobStart::AlreadyActive(job) => return Ok(QueuedSync { job, created: false }),
            JobStart::Created(job) => job,
        };
        if let Err(e) = self.ports.queue.send(&[job.message()], Duration::ZERO).await {
            tracing::error!(organization_id = %org, error = %e, "could not queue a sync job");
            let reason = e.to_string();
            self.ports
                .jobs
                .update_sync_job(org, &job.id, &|j| {
                    j.finish(now, Some(reason.clone()));
                    true
                })
                .await?;
            return Err(AppError::QueueUnavailable(e));
        }
        self.ports.pusher.push(org, PushMessage::sync(&job)).await;
        tracing::info!(organization_id = %org, job_id = %job.id, ?trigger, "sync job queued");
        Ok(QueuedSync { job, created: true })
    }

    /// The organization's current or latest sync job (a handed-out one not recorded yet
    /// included).
    pub async fn current_sync(&self, org: &OrganizationId) -> Result<Option<SyncJob>, AppError> {
        let (recorded, integration) = self.ports.jobs.get_sync_job_with_integration(org).await?;
        Ok(crate::domain::current_job(recorded, integration.as_ref(), self.ports.clock.now()))
    }
}

/// The queue's consumer: runs one slice of a job per message. It drives the sync engine (which
/// holds the wide store: bookings, prospects, notes, fingerprints, pacing), and itself touches
/// the job and integration items, the queue, the pushes, Calendly for the member list and the
/// subscription check, and the clock.
#[derive(Clone)]
pub struct Worker {
    ports: JobPorts,
    engine: SyncEngine,
    calendly: CalendlyAccess,
    subscriptions: Subscriptions,
    timing: JobTiming,
}

/// How long a worker's slices run and how long a failed one waits.
#[derive(Clone, Copy, Debug)]
pub struct JobTiming {
    /// The longest slice a worker runs a job for before it checkpoints and re-queues.
    pub budget: Duration,
    /// The first retry delay after a transient failure (doubled each time).
    pub retry_delay: Duration,
}

/// The ports of queuing and running jobs (`Jobs`, and `Worker` besides its engine).
#[derive(Clone)]
pub struct JobPorts {
    /// The integration items.
    pub integrations: Arc<dyn IntegrationStore>,
    /// The job items.
    pub jobs: Arc<dyn SyncJobStore>,
    /// Where the next turn's message goes.
    pub queue: Arc<dyn JobQueue>,
    /// The job's state to the organization's browsers.
    pub pusher: Arc<dyn Pusher>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

impl Worker {
    /// A worker over `ports`, running `engine` in slices of `timing`.
    pub fn new(
        ports: JobPorts,
        engine: SyncEngine,
        calendly: CalendlyAccess,
        subscriptions: Subscriptions,
        timing: JobTiming,
    ) -> Self {
        Self { ports, engine, calendly, subscriptions, timing }
    }

    /// The longest slice this worker runs a job for.
    pub fn job_budget(&self) -> Duration {
        self.timing.budget
    }

    /// Handles one delivery of the job queue. `Ok` when the queue may forget it (the slice
    /// ran, or the message was stale or a duplicate); `Err` when it must come back.
    pub async fn handle_job_delivery(&self, body: &str, deadline: Instant) -> Result<(), JobError> {
        let message: SyncJobMessage = serde_json::from_str(body).map_err(JobError::Malformed)?;
        self.run_sync_job(&message, deadline).await
    }

    /// Runs one slice of the job `message` names, if the message is of the job's current turn
    /// and no other worker holds the job.
    pub async fn run_sync_job(&self, message: &SyncJobMessage, deadline: Instant) -> Result<(), JobError> {
        use tracing::Instrument;
        // Every line a job's slices write carries its id: the correlation id of its logs and of
        // its `calendly:sync` pushes.
        let span = tracing::info_span!("job", correlation_id = %message.job_id);
        let work = self.run_slice_of(message, deadline).instrument(span);
        crate::telemetry::correlation::within(message.job_id.to_string(), work).await
    }

    async fn run_slice_of(&self, message: &SyncJobMessage, deadline: Instant) -> Result<(), JobError> {
        let org = &message.organization_id;
        let now = self.ports.clock.now();
        let slice = chrono::Duration::from_std(deadline.saturating_duration_since(Instant::now())).unwrap_or_default();
        let lease_until = now + slice + LEASE_MARGIN;
        // The job item and the integration item (which keeps a handed-out job) in one read.
        let (recorded, integration) = self.ports.jobs.get_sync_job_with_integration(org).await?;
        let integration = integration.map(|i| i.with_sync_of(recorded.as_ref()));
        let Some(mut job) = self.take_turn(message, recorded, integration.as_ref(), now, lease_until).await? else {
            return Ok(());
        };
        let turn = job.turn;
        self.ports.pusher.push(org, PushMessage::sync(&job)).await;

        let integration = self.integration_for(&mut job, integration, now);
        let interval = integration.as_ref().map_or(DEFAULT_SYNC_INTERVAL_MINUTES, |i| i.schedule_interval_minutes());
        let synced = integration.as_ref().is_some_and(|i| i.auto_sync_enabled || job.trigger != SyncTrigger::Scheduled);
        let seen = integration.as_ref().map(ScheduleSeen::of);
        let next_delay = match integration {
            None => None,
            Some(integration) => self.run_turn(&mut job, integration, deadline).await,
        };
        if matches!(job.state, SyncJobState::Succeeded | SyncJobState::Failed) {
            let outcome = if job.state == SyncJobState::Succeeded { "succeeded" } else { "failed" };
            metrics::count(Metric::SyncJobs, Some(outcome), 1);
            if let (Some(started), Some(finished)) = (job.started_at, job.finished_at) {
                let ms = (finished - started).num_milliseconds().max(0);
                metrics::observe(Metric::SyncJobDuration, Some(outcome), ms as f64);
            }
        }
        if job.state == SyncJobState::Succeeded {
            job.synced_at = synced.then_some(job.finished_at.unwrap_or(now));
            // A scheduled job's hand-out moved the schedule already, and its sync is recorded on
            // the job: it ends in one write. Any other job moves the schedule first, the job
            // second: whoever sees it succeeded also sees `next_sync_at` moved.
            if job.trigger != SyncTrigger::Scheduled {
                self.schedule_next(&job, synced, (seen, interval), now).await?;
            }
            tracing::info!(organization_id = %org, job_id = %job.id, report = ?job.report, slices = job.slices, "Calendly sync finished");
        }
        let saved = match job.unrecorded.take() {
            Some(unrecorded) => self.ports.jobs.record_job(&job, unrecorded.replaces.as_deref()).await?,
            None => self
                .ports
                .jobs
                .update_sync_job(org, &job.id, &|stored| {
                    let ours = stored.turn == turn;
                    if ours {
                        *stored = job.clone();
                    }
                    ours
                })
                .await?
                .is_some(),
        };
        if !saved {
            tracing::warn!(organization_id = %org, job_id = %job.id, "the job was replaced while its slice ran");
            return Ok(());
        }
        if let Some(delay) = next_delay {
            // On failure this delivery comes back and carries the paused job on.
            self.ports.queue.send(&[job.message()], delay).await?;
        }
        self.ports.pusher.push(org, PushMessage::sync(&job)).await;
        Ok(())
    }

    /// The job `message` may run a slice of, claimed: a recorded job's lease, taken by a
    /// write; or a handed-out job's first turn, taken without one (unless a job under way
    /// stands for it): its first write records it, in the place of the job read here. `None`
    /// for a stale or duplicate message.
    async fn take_turn(
        &self,
        message: &SyncJobMessage,
        recorded: Option<SyncJob>,
        integration: Option<&Integration>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SyncJob>, JobError> {
        let org = &message.organization_id;
        // A hand-out for the integration a reconnect replaced is no job of this one.
        let handed_out = integration
            .and_then(|i| i.handed_out.as_ref().filter(|h| h.id == message.job_id && h.integration_id == i.id));
        let recorded_is_ours = recorded.as_ref().is_some_and(|j| j.id == message.job_id);
        if let (Some(handed_out), false) = (handed_out, recorded_is_ours)
            && message.turn == 0
        {
            if let Some(under_way) = recorded.as_ref().filter(|j| j.blocks_new_job(now)) {
                tracing::info!(organization_id = %org, job_id = %message.job_id, under_way = %under_way.id, "a sync is under way: the scheduled one is dropped");
                self.ports.integrations.withdraw_hand_out(org, &handed_out.id, None).await?;
                return Ok(None);
            }
            let mut job = handed_out.job(org.clone());
            job.claim(message, now, lease_until);
            job.unrecorded = Some(Unrecorded { replaces: recorded.map(|j| j.id) });
            return Ok(Some(job));
        }
        let claimed =
            self.ports.jobs.update_sync_job(org, &message.job_id, &|j| j.claim(message, now, lease_until)).await?;
        if claimed.is_none() {
            tracing::info!(organization_id = %org, job_id = %message.job_id, turn = message.turn, "stale or duplicate job message dropped");
        }
        Ok(claimed)
    }

    /// The integration the claimed job syncs (with the last sync its job recorded), or `None`
    /// with the job finished: disconnected, replaced by another connect, or waiting for a
    /// reconnect.
    fn integration_for(
        &self,
        job: &mut SyncJob,
        integration: Option<Integration>,
        now: DateTime<Utc>,
    ) -> Option<Integration> {
        match integration {
            Some(i) if i.is_active && i.id == job.integration_id && !i.needs_reconnect => Some(i),
            Some(i) if i.is_active && i.needs_reconnect => {
                job.finish(now, Some(AppError::from(TokenError::NeedsReconnect).to_string()));
                None
            }
            _ => {
                job.finish(now, Some("Calendly was disconnected".into()));
                None
            }
        }
    }

    /// This turn's work: on a scheduled job's first slice the subscription check and the member
    /// list, then one slice of the engine. The delay of the next turn, if one is needed.
    async fn run_turn(&self, job: &mut SyncJob, mut integration: Integration, deadline: Instant) -> Option<Duration> {
        if job.trigger == SyncTrigger::Scheduled && job.slices == 1 {
            self.check_webhook(&integration).await;
            // Retention, for what was written before it was set (what came since has a TTL).
            if let Err(e) = self.engine.sweep_expired(&integration).await {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "the retention sweep failed; the next scheduled sync retries it");
            }
            if integration.auto_sync_enabled {
                integration = self.refresh_members(integration).await;
                self.poll_routing_forms(job, &integration).await;
            }
        }
        if job.trigger == SyncTrigger::Scheduled && !integration.auto_sync_enabled {
            // Auto-sync off: the schedule only came for the subscription check.
            job.finish(self.ports.clock.now(), None);
            return None;
        }
        let outcome = self.engine.run_slice(job, &integration, deadline).await;
        self.end_slice(job, outcome)
    }

    /// Routing form submissions since the last sync (and an hour before: a submission made
    /// while the last one ran), so a missed delivery still arrives; a failure waits for the
    /// next scheduled sync.
    async fn poll_routing_forms(&self, job: &mut SyncJob, integration: &Integration) {
        if !crate::app::subscription::takes_routing_forms(integration) {
            return;
        }
        let since = integration.last_synced_at.unwrap_or(integration.created_at) - ROUTING_POLL_OVERLAP;
        match self.engine.poll_routing_forms(integration, since, Duration::ZERO).await {
            Ok((recorded, without_email)) => {
                job.report.form_submissions += recorded;
                job.report.form_submissions_without_email += without_email;
            }
            Err(e) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "routing form submissions could not be polled; the next scheduled sync retries");
            }
        }
    }

    /// A finished job moves the organization's schedule: `last_synced_at` (when it synced) and
    /// the next due time, by the interval set now, not at the slice's start: a change made
    /// while the job ran (e.g. right after connecting) applies to this very schedule. Written
    /// on the settings the slice started with, unless they changed (then read again).
    async fn schedule_next(
        &self,
        job: &SyncJob,
        synced: bool,
        (seen, interval): (Option<ScheduleSeen>, u32),
        now: DateTime<Utc>,
    ) -> Result<(), JobError> {
        let org = &job.organization_id;
        let finished = job.finished_at.unwrap_or(now);
        let synced_at = synced.then_some(finished);
        if let Some(seen) = seen {
            let next = finished + chrono::Duration::minutes(i64::from(interval));
            if self.ports.integrations.record_finished_sync(org, synced_at, next, seen).await? {
                return Ok(());
            }
        }
        let interval = match self.ports.integrations.get_integration(org).await? {
            Some(current) if current.is_active => current.schedule_interval_minutes(),
            _ => interval,
        };
        let next = finished + chrono::Duration::minutes(i64::from(interval));
        self.ports.integrations.record_sync(org, synced_at, next).await?;
        Ok(())
    }

    /// Decides what follows a slice: finish, or pause with the delay of the next turn.
    fn end_slice(&self, job: &mut SyncJob, outcome: Result<SliceEnd, SyncError>) -> Option<Duration> {
        let now = self.ports.clock.now();
        let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
        match outcome {
            Ok(SliceEnd::Finished) => {
                job.finish(now, None);
                None
            }
            Ok(SliceEnd::OutOfTime) => {
                job.pause(now, None);
                Some(Duration::ZERO)
            }
            Ok(SliceEnd::RateLimited { retry_after }) => {
                tracing::info!(job_id = %job.id, retry_after_secs = retry_after.as_secs(), "Calendly's window is spent; the job resumes after the reset");
                metrics::count(Metric::RateLimitPauses, None, 1);
                job.pause(now, Some(now + to_chrono(retry_after)));
                Some(retry_after)
            }
            Err(e) => {
                let error = AppError::from(e);
                // A 429 from the token endpoint (rate limits elsewhere pause the job) counts too.
                let transient = matches!(
                    error,
                    AppError::CalendlyUnavailable(_) | AppError::StoreBusy | AppError::CalendlyRateLimited { .. }
                );
                if transient && job.retries < MAX_RETRIES {
                    let delay = self.timing.retry_delay * 2u32.pow(job.retries);
                    job.retries += 1;
                    tracing::warn!(job_id = %job.id, error = %error, retry = job.retries, "sync slice failed; retrying later");
                    job.pause(now, Some(now + to_chrono(delay)));
                    // Shown while it waits; a later success clears it.
                    job.error = Some(error.to_string());
                    Some(delay)
                } else {
                    tracing::warn!(job_id = %job.id, error = %error, "sync job failed");
                    job.finish(now, Some(error.to_string()));
                    None
                }
            }
        }
    }

    /// Organization scope: the member list (whose own e-mails are never prospects) is read
    /// again once a day, so hires and leavers are known. A failure keeps the list it had.
    async fn refresh_members(&self, integration: Integration) -> Integration {
        let now = self.ports.clock.now();
        let fresh = integration.members_read_at.is_some_and(|at| now - at < MEMBERS_MAX_AGE);
        if integration.coverage != CalendlyScope::Organization || fresh {
            return integration;
        }
        let org = &integration.organization_id;
        let session = self.calendly.session(Duration::ZERO);
        let refreshed = async {
            let token = self.calendly.access_token(&session, &integration).await?;
            let (org_uri, user_uri) = (&integration.calendly_organization_uri, &integration.calendly_user_uri);
            let (coverage, members, _) =
                self.calendly.organization_coverage(&session, &token, org_uri, user_uri).await?;
            // A lost role is the sync's to handle (Calendly refuses its listing, it falls back).
            if coverage == CalendlyScope::Organization {
                self.ports.integrations.set_coverage(org, coverage, members.unwrap_or_default(), Some(now)).await?;
            }
            Ok::<_, AppError>(())
        };
        match refreshed.await {
            Ok(()) => match self.ports.integrations.get_integration(org).await {
                Ok(Some(updated)) => return updated,
                Ok(None) => {}
                Err(e) => tracing::warn!(organization_id = %org, error = %e, "could not re-read the integration"),
            },
            Err(e) => {
                tracing::warn!(organization_id = %org, error = %e, "could not refresh the member list; keeping the last one")
            }
        }
        integration
    }

    /// A subscription Calendly disabled (24 h of failed deliveries) would silently stop
    /// real-time updates: each scheduled job checks it first and re-creates it if needed.
    async fn check_webhook(&self, integration: &Integration) {
        match self.subscriptions.ensure_webhook(integration).await {
            Ok(WebhookCheck::Created) => {
                tracing::info!(organization_id = %integration.organization_id, "webhook subscription re-created")
            }
            Ok(WebhookCheck::Kept) => {}
            Err(e) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "webhook subscription check failed")
            }
        }
    }
}

#[cfg(test)]
mod tests;
