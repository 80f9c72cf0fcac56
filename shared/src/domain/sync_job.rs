//! A sync job: one sync of one integration, queued, then run by workers in slices that each
//! end at a checkpoint (time budget spent, Calendly's rate-limit window spent, or done).
//!
//! Which worker may run a job is decided here and made atomic by the store: a message carries
//! the job's `turn`, and every pause moves the turn on. A message of the current turn may take
//! the lease; so may one of the turn just before, while nobody holds the lease: that is the
//! message whose worker saved its pause but died (or failed to queue the next turn) before the
//! queue forgot it; SQS brings it back and it carries the job on. Either way one claim wins per
//! turn, so duplicated or older messages find nothing to do and the job runs as one chain.

use super::{IntegrationId, OrganizationId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A job that nobody has touched for this long past its lease or resume time is presumed lost
/// (its message was never sent, or went to the dead-letter queue): a new job may replace it.
pub const STALE_AFTER: Duration = Duration::minutes(15);

/// The rolling window a sync covers: days back and days ahead of when it is queued (Calendly
/// has no updated-since filter: a window re-read is how later cancellations are seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncWindow {
    /// Days before the queue time (bookings canceled late are seen again).
    pub days_past: i64,
    /// Days after the queue time.
    pub days_ahead: i64,
}

impl SyncWindow {
    /// `[now - days_past, now + days_ahead]`.
    pub fn at(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (now - Duration::days(self.days_past), now + Duration::days(self.days_ahead))
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncJobState {
    /// Recorded, its first slice not yet started.
    Queued,
    /// A slice runs, or the job waits between slices (rate-limit pause, retry).
    Running,
    /// Every page of the window was read.
    Succeeded,
    /// Given up (`error` says why).
    Failed,
}

impl SyncJobState {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Queued or running: the job still has work to do.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// What started a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncTrigger {
    /// The first sync after a connect.
    Initial,
    /// `POST /calendly/sync`.
    Manual,
    /// The EventBridge schedule (`sync_interval_minutes`).
    Scheduled,
}

/// What a sync did so far (counters only ever grow; a redone page adds nothing twice because
/// unchanged events and already-recorded bookings count for nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Scheduled events read from Calendly.
    pub events_seen: u64,
    /// Bookings seen for the first time.
    pub bookings_new: u64,
    /// Known bookings that changed.
    pub bookings_changed: u64,
    /// Prospects created.
    pub prospects_created: u64,
    /// Note lines appended.
    pub notes_added: u64,
    /// Requests sent to Calendly.
    pub calendly_requests: u64,
    /// Events whose invitees could not be read or recorded: skipped, retried next sync.
    #[serde(default)]
    pub events_failed: u64,
    /// Why the last of them failed.
    #[serde(default)]
    pub last_event_error: Option<String>,
    /// Bookings of erased invitees left out (the organization's suppression list).
    #[serde(default)]
    pub suppressed: u64,
    /// Routing form submissions the scheduled sync's poll recorded (missed deliveries).
    #[serde(default)]
    pub form_submissions: u64,
    /// Submissions the poll left out for want of an e-mail.
    #[serde(default)]
    pub form_submissions_without_email: u64,
}

/// What a job's commits added, counted by the commits themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedCounts {
    /// Bookings seen for the first time.
    pub bookings_new: u64,
    /// Known bookings that changed.
    pub bookings_changed: u64,
    /// Prospects created.
    pub prospects_created: u64,
    /// Note entries appended.
    pub notes_added: u64,
}

impl CommittedCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Self) {
        self.bookings_new += other.bookings_new;
        self.bookings_changed += other.bookings_changed;
        self.prospects_created += other.prospects_created;
        self.notes_added += other.notes_added;
    }
}

impl SyncReport {
    /// The counters of what was committed, as the store counted them.
    pub fn set_committed(&mut self, counts: CommittedCounts) {
        self.bookings_new = counts.bookings_new;
        self.bookings_changed = counts.bookings_changed;
        self.prospects_created = counts.prospects_created;
        self.notes_added = counts.notes_added;
    }

    /// The counters commits keep (`set_committed`): bookings new and changed, prospects, notes.
    pub fn committed_part(&self) -> (u64, u64, u64, u64) {
        (self.bookings_new, self.bookings_changed, self.prospects_created, self.notes_added)
    }
}

/// Where a job resumes: the window is fixed when the job is queued so page tokens stay valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCheckpoint {
    /// The window's first start time.
    pub window_start: DateTime<Utc>,
    /// The window's last start time.
    pub window_end: DateTime<Utc>,
    /// The token of the page being worked on (`None`: the first page).
    pub page_token: Option<String>,
    /// Pages finished so far.
    pub pages_done: u64,
    /// `events_seen` when the current page started (a resumed page is counted again from here).
    pub events_before_page: u64,
    /// The last page tokens used: one coming back means the upstream loops.
    #[serde(default)]
    pub recent_page_tokens: Vec<String>,
    /// Upcoming bookings first: the window is read from here (the time the job was queued) to
    /// its end, then from its start to here. `None` (jobs queued before): start to end at once.
    #[serde(default)]
    pub split_at: Option<DateTime<Utc>>,
    /// Whether the upcoming part is done and the past part is being read.
    #[serde(default)]
    pub in_past: bool,
}

impl SyncCheckpoint {
    /// The start-time range the current part of the window covers.
    pub fn range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match (self.split_at, self.in_past) {
            (None, _) => (self.window_start, self.window_end),
            (Some(split), false) => (split, self.window_end),
            (Some(split), true) => (self.window_start, split),
        }
    }

    /// The current part's last page is done: on to the past part, if there is one left.
    /// Whether there was.
    pub fn next_part(&mut self) -> bool {
        if self.split_at.is_none() || self.in_past {
            return false;
        }
        self.in_past = true;
        self.page_token = None;
        self.recent_page_tokens.clear();
        true
    }

    /// Back to the first page of the whole window (Calendly no longer takes the page token, or
    /// the scope changed): unchanged events cost nothing but their page.
    pub fn restart(&mut self) {
        self.page_token = None;
        self.pages_done = 0;
        self.events_before_page = 0;
        self.in_past = false;
        self.recent_page_tokens.clear();
    }
}

/// One sync of one integration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncJob {
    /// Its id (a UUID).
    pub id: String,
    /// The organization synced (one job item per organization).
    pub organization_id: OrganizationId,
    /// The integration synced.
    pub integration_id: IntegrationId,
    /// What started it.
    pub trigger: SyncTrigger,
    /// Where it is.
    pub state: SyncJobState,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When its first slice started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it succeeded or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// Its counters.
    pub report: SyncReport,
    /// Where the next slice resumes.
    pub checkpoint: SyncCheckpoint,
    /// Why it failed.
    pub error: Option<String>,
    /// Only a message of this turn may run the job (see the module doc).
    pub turn: u64,
    /// The worker running a slice holds this lease; past it, the slice is presumed dead.
    pub lease_until: Option<DateTime<Utc>>,
    /// Paused until Calendly's rate-limit window resets (the message is delayed until then).
    pub resume_at: Option<DateTime<Utc>>,
    /// Slices run so far (one per worker invocation that took the lease).
    pub slices: u32,
    /// Transient failures (Calendly or the store unreachable) retried so far.
    pub retries: u32,
    /// When it synced (it succeeded, and read Calendly: a scheduled job with auto-sync off
    /// only checks the webhook subscription). Scheduled jobs record their sync here only.
    #[serde(default)]
    pub synced_at: Option<DateTime<Utc>>,
    /// Set on a job the schedule handed out while no write has recorded it yet (see
    /// `HandedOutJob`); never stored.
    #[serde(skip)]
    pub unrecorded: Option<Unrecorded>,
}

/// A handed-out job not recorded yet: its first write takes the place of the job the worker
/// found stored, and only if that one is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrecorded {
    /// The id of the job stored when the slice started (`None`: none was).
    pub replaces: Option<String>,
}

/// A scheduled job as the schedule hands it out: kept on the integration item, written in the
/// same request that moves the integration's next due time, so handing out costs one write.
/// The job item records it only when a worker has something to record: an unchanged sync is
/// written once, when it ends. Until then it is the organization's current job for whoever
/// asks (`current_job`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOutJob {
    /// The job's id.
    pub id: String,
    /// The integration it syncs.
    pub integration_id: IntegrationId,
    /// When it was handed out.
    pub queued_at: DateTime<Utc>,
    /// Its window's first start time.
    pub window_start: DateTime<Utc>,
    /// Its window's last start time.
    pub window_end: DateTime<Utc>,
}

impl HandedOutJob {
    /// A scheduled job of `integration_id` over `window`, handed out at `now`.
    pub fn new(integration_id: IntegrationId, window: SyncWindow, now: DateTime<Utc>) -> Self {
        let (window_start, window_end) = window.at(now);
        Self { id: super::ids::time_ordered_id(now), integration_id, queued_at: now, window_start, window_end }
    }

    /// The queued job it stands for.
    pub fn job(&self, organization_id: OrganizationId) -> SyncJob {
        let mut job = SyncJob::queued(
            organization_id,
            self.integration_id.clone(),
            SyncTrigger::Scheduled,
            self.window_start,
            self.window_end,
            self.queued_at,
        );
        job.id = self.id.clone();
        job
    }

    /// The message that runs it (its first turn).
    pub fn message(&self, organization_id: OrganizationId) -> SyncJobMessage {
        SyncJobMessage { organization_id, job_id: self.id.clone(), turn: 0 }
    }

    /// Whether it still waits for its first record: no job queued as late is recorded (its
    /// own record included), the recorded one is not under way (a worker drops a hand-out
    /// that meets a job under way), and it is not presumed lost.
    pub fn pending(&self, recorded: Option<&SyncJob>, now: DateTime<Utc>) -> bool {
        let superseded = recorded.is_some_and(|r| r.queued_at >= self.queued_at || r.blocks_new_job(now));
        !superseded && now < self.queued_at + STALE_AFTER
    }
}

/// The organization's current (or latest) job: the recorded one, unless the schedule handed a
/// later one out on `integration` that no worker has recorded yet (it is queued, or its first
/// slice has written nothing so far).
pub fn current_job(
    recorded: Option<SyncJob>,
    integration: Option<&super::Integration>,
    now: DateTime<Utc>,
) -> Option<SyncJob> {
    let handed_out = integration.and_then(|i| Some((i.handed_out.as_ref()?, &i.organization_id)));
    match handed_out {
        Some((h, org)) if h.pending(recorded.as_ref(), now) => Some(h.job(org.clone())),
        _ => recorded,
    }
}

/// The queue message that asks a worker to run a job's next slice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJobMessage {
    /// The job's organization (the job item's partition).
    pub organization_id: OrganizationId,
    /// The job it runs.
    pub job_id: String,
    /// The turn it is for: a message of an older turn is a duplicate and does nothing.
    pub turn: u64,
}

impl SyncJob {
    /// A queued job over the window `[window_start, window_end]`.
    pub fn queued(
        organization_id: OrganizationId,
        integration_id: IntegrationId,
        trigger: SyncTrigger,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: super::ids::time_ordered_id(now),
            organization_id,
            integration_id,
            trigger,
            state: SyncJobState::Queued,
            queued_at: now,
            started_at: None,
            finished_at: None,
            updated_at: now,
            report: SyncReport::default(),
            checkpoint: SyncCheckpoint {
                window_start,
                window_end,
                page_token: None,
                pages_done: 0,
                events_before_page: 0,
                recent_page_tokens: Vec::new(),
                split_at: Some(now.clamp(window_start, window_end)),
                in_past: false,
            },
            error: None,
            turn: 0,
            lease_until: None,
            resume_at: None,
            slices: 0,
            retries: 0,
            synced_at: None,
            unrecorded: None,
        }
    }

    /// The message that runs the current turn.
    pub fn message(&self) -> SyncJobMessage {
        SyncJobMessage { organization_id: self.organization_id.clone(), job_id: self.id.clone(), turn: self.turn }
    }

    /// When an active job is presumed lost if nothing touched it.
    pub fn stale_at(&self) -> DateTime<Utc> {
        [Some(self.updated_at), self.lease_until, self.resume_at].into_iter().flatten().max().unwrap_or(self.updated_at)
            + STALE_AFTER
    }

    /// Whether this job still stands for "a sync is under way" at `now` (a new one must not start).
    pub fn blocks_new_job(&self, now: DateTime<Utc>) -> bool {
        self.state.is_active() && now < self.stale_at()
    }

    /// Whether this new job may take `current`'s place: when nothing is under way, or when it
    /// is a reconnect's initial sync (the old job's window and page tokens belong to the
    /// previous connection; its messages become stale with it).
    pub fn may_replace(&self, current: &SyncJob, now: DateTime<Utc>) -> bool {
        self.trigger == SyncTrigger::Initial || !current.blocks_new_job(now)
    }

    /// Takes the lease for one slice if `message` is of the current turn and no live slice
    /// holds it. Returns whether the caller may run the slice.
    pub fn claim(&mut self, message: &SyncJobMessage, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> bool {
        let free = self.lease_until.is_none_or(|l| l <= now);
        let current = message.turn == self.turn;
        let adopts_pause = message.turn + 1 == self.turn && self.lease_until.is_none();
        if message.job_id != self.id || !(current || adopts_pause) || !self.state.is_active() || !free {
            return false;
        }
        self.state = SyncJobState::Running;
        self.started_at.get_or_insert(now);
        self.lease_until = Some(lease_until);
        self.resume_at = None;
        self.slices += 1;
        self.updated_at = now;
        true
    }

    /// Takes a running slice's counters and checkpoint, if that slice still owns this turn.
    pub fn record_progress(&mut self, from: &SyncJob) -> bool {
        let owns = from.id == self.id && from.turn == self.turn && self.state == SyncJobState::Running;
        if owns {
            self.report = from.report.clone();
            self.checkpoint = from.checkpoint.clone();
            self.updated_at = from.updated_at.max(self.updated_at);
        }
        owns
    }

    /// Ends the slice without finishing: the next turn resumes from the checkpoint, no earlier
    /// than `resume_at` when given (a rate-limit reset).
    pub fn pause(&mut self, now: DateTime<Utc>, resume_at: Option<DateTime<Utc>>) {
        self.turn += 1;
        self.lease_until = None;
        self.resume_at = resume_at;
        self.updated_at = now;
    }

    /// Ends the job.
    pub fn finish(&mut self, now: DateTime<Utc>, error: Option<String>) {
        self.state = if error.is_some() { SyncJobState::Failed } else { SyncJobState::Succeeded };
        self.error = error;
        self.turn += 1;
        self.lease_until = None;
        self.resume_at = None;
        self.finished_at = Some(now);
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(now: DateTime<Utc>) -> SyncJob {
        SyncJob::queued(
            OrganizationId::new("org"),
            IntegrationId::new("int"),
            SyncTrigger::Manual,
            now - Duration::days(30),
            now + Duration::days(365),
            now,
        )
    }

    #[test]
    fn one_claim_per_turn_and_stale_turns_are_refused() {
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        let mut job = job(now);
        let first = job.message();
        assert!(job.claim(&first, now, lease));
        assert!(!job.clone().claim(&first, now, lease), "a duplicate finds the lease held");
        job.pause(now, None);
        let second = job.message();
        assert!(job.claim(&second, now, lease));
        assert!(!job.clone().claim(&first, now, lease), "the previous turn can't take a held lease");
        job.pause(now, None);
        assert!(!job.clone().claim(&first, now, lease), "a message two turns old is stale");
        assert!(job.claim(&job.message(), now, lease));
        assert_eq!(job.slices, 3);
    }

    #[test]
    fn the_previous_turn_carries_on_a_pause_whose_next_message_was_lost() {
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        let mut job = job(now);
        let first = job.message();
        assert!(job.claim(&first, now, lease));
        job.pause(now, None);
        // The next turn's message never got sent; SQS redelivers the first one.
        let mut adopted = job.clone();
        assert!(adopted.claim(&first, now, lease));
        // Had it been sent after all, it now finds the lease held: still one chain.
        assert!(!adopted.claim(&job.message(), now, lease));
    }

    #[test]
    fn a_dead_slice_lease_can_be_taken_over_by_its_redelivered_message() {
        let now = Utc::now();
        let mut job = job(now);
        let message = job.message();
        assert!(job.claim(&message, now, now + Duration::seconds(60)));
        assert!(!job.claim(&message, now + Duration::seconds(59), now + Duration::seconds(120)));
        assert!(job.claim(&message, now + Duration::seconds(61), now + Duration::seconds(120)));
    }

    #[test]
    fn a_finished_job_runs_no_more_and_blocks_nothing() {
        let now = Utc::now();
        let mut job = job(now);
        let message = job.message();
        assert!(job.blocks_new_job(now));
        job.finish(now, None);
        assert_eq!(job.state, SyncJobState::Succeeded);
        assert!(!job.blocks_new_job(now));
        assert!(!job.claim(&message, now, now + Duration::seconds(60)));
    }

    #[test]
    fn an_untouched_job_stops_blocking_once_stale() {
        let now = Utc::now();
        let job = job(now);
        assert!(job.blocks_new_job(now + STALE_AFTER - Duration::seconds(1)));
        assert!(!job.blocks_new_job(now + STALE_AFTER + Duration::seconds(1)));
    }
}
