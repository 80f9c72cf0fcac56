//! The one sync engine: initial, manual and scheduled syncs, and webhook deliveries (a
//! delivery is a sync of one invitee whose data came in the payload).
//!
//! Here, the paging loop of a sync job's slice and its checkpoints; in `record`, recording one
//! booking exactly once (plan, commit under guards, re-plan on a lost race: read that loop
//! whole); in `submissions`, routing form submissions; in `calendly_calls`, calls to Calendly
//! under the tokens' rules; in `upkeep`, the retention sweep and the webhook-gaps notice.

mod calendly_calls;
pub mod people;
pub mod tokens;
pub use calendly_calls::ReconnectAlarm;
mod record;
mod submissions;
mod upkeep;

use crate::calendly::{
    CalendlyApi, CalendlyError, CalendlySession, EventQuery, Invitee, Page, RateWindow, ScheduledEvent,
};
use crate::clock::Clock;
use crate::domain::booking::{self, ChangeKind, Known, ProspectChange};
use crate::domain::ledger;
use crate::domain::privacy::expiry;
use crate::domain::routing::{self, KnownForSubmission, SubmissionSnapshot};
use crate::domain::{BookingSnapshot, Email, Integration, NoteStyle, PersonAddress, SyncJob};
use crate::engine::people::People;
use crate::engine::tokens::{TokenError, TokenKeeper};
use crate::push::{PushMessage, Pusher};
use crate::store::CalendlyData;
use crate::store::{BookingContext, CommitConflict, CommitError, Store, StoreError};
use crate::telemetry::metrics::{self, Metric};
use chrono::Utc;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How many invitee lists are fetched at once: well under Calendly's per-user limit.
const INVITEE_CONCURRENCY: usize = 8;
/// Pages of 100 items one sync's retention sweep deletes at the most (the next sync goes on).
const RETENTION_SWEEP_PAGES: usize = 10;
/// How many times a booking write is re-planned after losing a race.
const MAX_COMMIT_ATTEMPTS: usize = 10;
/// Pages of scheduled events one sync reads at the most: 100,000 events at 100 a page, past
/// what any real organization books in the window (a bound on a looping upstream, not a size)...
const MAX_EVENT_PAGES: u64 = 1_000;
/// ...and pages of one event's invitees (10,000 invitees).
const MAX_INVITEE_PAGES: usize = 100;
/// Page tokens remembered to catch an upstream that hands one out again.
const RECENT_PAGE_TOKENS: usize = 10;
/// A running job's progress is saved and pushed at least this often...
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// ...or every this many events, whichever comes first.
const PROGRESS_EVENTS: u64 = 100;

/// Pages of one form's submissions one poll reads at the most (newest first: the rest is older
/// than the last poll unless a burst of 1,000 came in one interval).
const MAX_SUBMISSION_PAGES: usize = 10;

/// What recording one routing form submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionApplied {
    /// Its note was written (on a new prospect or not).
    Recorded {
        /// Whether a prospect was created.
        prospect_created: bool,
    },
    /// Recorded before (a repeated delivery, or the poll after the delivery).
    AlreadyRecorded,
    /// Its answers give no e-mail and no booking joined it: counted and left out.
    WithoutEmail,
    /// The filter leaves the submitter out (the ignore list, a member).
    Ignored,
    /// The submitter was erased from this organization.
    Suppressed,
}

/// How a slice of a sync job ended (errors aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceEnd {
    /// Every page of the window is done.
    Finished,
    /// The time budget is spent: the next slice continues from the checkpoint right away.
    OutOfTime,
    /// Calendly's window for this user is spent: continue from the checkpoint at `resume_at`.
    RateLimited {
        /// How long until the window resets.
        retry_after: Duration,
    },
}

/// When a slice last reported progress.
struct Progress {
    at: Instant,
    events: u64,
    /// Whether the current page had events to read and write (it is worth its checkpoint).
    worked: bool,
}

impl Progress {
    fn new(job: &SyncJob) -> Self {
        Self { at: Instant::now(), events: job.report.events_seen, worked: false }
    }

    fn due(&self, job: &SyncJob) -> bool {
        self.at.elapsed() >= PROGRESS_EVERY || job.report.events_seen >= self.events + PROGRESS_EVENTS
    }

    async fn report(&mut self, engine: &SyncEngine, job: &mut SyncJob, session: &CalendlySession) {
        let mut snapshot = job.clone();
        snapshot.report.calendly_requests += session.requests();
        if engine.save_progress(&snapshot).await {
            // A handed-out job is recorded by its first save.
            job.unrecorded = None;
        }
        self.at = Instant::now();
        self.events = job.report.events_seen;
    }
}

pub use crate::domain::SyncReport;

impl SyncReport {
    fn add(&mut self, applied: &Applied) {
        match applied.kind {
            Some(ChangeKind::New) => self.bookings_new += 1,
            Some(ChangeKind::Changed) => self.bookings_changed += 1,
            None => {}
        }
        self.prospects_created += u64::from(applied.prospect_created);
        self.notes_added += applied.notes_added as u64;
        self.suppressed += u64::from(applied.suppressed);
    }
}

/// What recording one booking did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// New or changed; `None` when nothing changed.
    pub kind: Option<ChangeKind>,
    /// Whether a prospect was created.
    pub prospect_created: bool,
    /// Note lines appended or written.
    pub notes_added: usize,
    /// Nothing was recorded: the invitee was erased and is suppressed.
    pub suppressed: bool,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No usable access token (refresh failed, or the user must reconnect).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Calendly refused or failed.
    #[error(transparent)]
    Calendly(#[from] CalendlyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Concurrent writers kept winning the same booking.
    #[error("a booking kept changing under concurrent writers; giving up after {MAX_COMMIT_ATTEMPTS} attempts")]
    Contended,
    /// Calendly's pagination does not end (a token came back, or past the page cap).
    #[error("Calendly's pagination does not end: {0}")]
    Pagination(String),
    /// The same, for one event's invitees: that event is skipped.
    #[error("Calendly's pagination does not end: {0}")]
    EventPagination(String),
}

impl SyncError {
    /// A failure of one event (its invitees forbidden, gone or unreadable, or its booking
    /// contended) rather than of the sync: the event is skipped and retried next time, the
    /// others go on.
    pub fn is_event_scoped(&self) -> bool {
        match self {
            Self::Calendly(CalendlyError::Forbidden(_) | CalendlyError::NotFound | CalendlyError::Decode(_)) => true,
            Self::Calendly(CalendlyError::Api { status, .. }) => (400..500).contains(status) && *status != 429,
            // A write the store refuses for this booking's own content (e.g. an item DynamoDB
            // finds too large): retrying the whole sync would fail on it again.
            Self::Store(StoreError::Rejected(_)) => true,
            Self::Contended | Self::EventPagination(_) => true,
            _ => false,
        }
    }
}

impl From<CommitError> for SyncError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Store(s) => Self::Store(s),
            CommitError::Conflict(_) => Self::Contended,
        }
    }
}

/// The engine and the ports it drives.
#[derive(Clone)]
pub struct SyncEngine {
    store: Arc<dyn Store>,
    calendly: Arc<dyn CalendlyApi>,
    pusher: Arc<dyn Pusher>,
    clock: Arc<dyn Clock>,
    tokens: TokenKeeper,
    people: Arc<People>,
    window: crate::domain::SyncWindow,
    /// The day's gaps notices this instance already saw through (`org|key`): a sync finding
    /// many missed bookings reads the ledger for the first one only.
    gaps_noticed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl SyncEngine {
    /// An engine syncing the window `[now - days_past, now + days_ahead]`; `people` keys the
    /// person index and the suppression list every commit goes through.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        calendly: Arc<dyn CalendlyApi>,
        pusher: Arc<dyn Pusher>,
        clock: Arc<dyn Clock>,
        tokens: TokenKeeper,
        people: Arc<People>,
        days_past: i64,
        days_ahead: i64,
    ) -> Self {
        let window = crate::domain::SyncWindow { days_past, days_ahead };
        Self { store, calendly, pusher, clock, tokens, people, window, gaps_noticed: Arc::default() }
    }

    /// The rolling window a sync queued at `now` covers.
    pub fn window_at(&self, now: chrono::DateTime<Utc>) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        self.window.at(now)
    }

    /// The window a sync covers.
    pub fn window(&self) -> crate::domain::SyncWindow {
        self.window
    }

    /// A Calendly session for one run.
    pub fn session(&self, rate_limit_budget: Duration) -> CalendlySession {
        CalendlySession::new(self.calendly.clone(), rate_limit_budget)
    }

    /// The token keeper (shared with the connect and disconnect flows).
    pub fn tokens(&self) -> &TokenKeeper {
        &self.tokens
    }

    /// Runs one slice of a sync job: pages of scheduled events from the job's checkpoint on,
    /// invitees of changed events only, until every page is done, the time budget
    /// (`deadline`) is spent, or Calendly's window for this user is spent. The job's
    /// checkpoint and counters move as it goes; progress is saved and pushed (`calendly:sync`)
    /// at least every 5 s or every 100 events. Never sleeps through a rate-limit window.
    pub async fn run_slice(
        &self,
        job: &mut SyncJob,
        integration: &Integration,
        deadline: Instant,
    ) -> Result<SliceEnd, SyncError> {
        // The person-hash key is read (re-sealed mid-roll) by every job, booked or not.
        self.people.ready().await?;
        let session = self.session(Duration::ZERO);
        let user = &integration.calendly_user_uri;
        // Pacing shared by every worker: what the last slice (maybe another instance) saw.
        let shared_window = self.store.get_rate_window(user).await?;
        if let Some(window) = shared_window.filter(|w| w.spent_at(self.clock.now())) {
            return Ok(SliceEnd::RateLimited {
                retry_after: Duration::from_secs(window.seconds_to_reset(self.clock.now())),
            });
        }
        let (token, _) = self.tokens.access_token(&session, integration).await?;
        if let Some(window) = shared_window {
            self.calendly.restore_rate_window(&token, window);
        }
        // The counters of bookings, prospects and notes are what the commits counted: an earlier
        // slice that died mid-page committed more than its last saved progress says.
        // A job's first slice has nothing committed before it.
        let org = &integration.organization_id;
        if job.slices > 1 {
            job.report.set_committed(self.store.committed_counts(org, &job.id).await?);
        }
        let before = job.report.clone();
        let mut progress = Progress::new(job);
        let result = self.run_pages(&session, job, integration, deadline, &mut progress).await;
        job.report.calendly_requests += session.requests();
        // Read back only when this slice wrote (or may have written) a booking.
        let wrote =
            job.report.committed_part() != before.committed_part() || job.report.events_failed != before.events_failed;
        if wrote || result.is_err() {
            match self.store.committed_counts(org, &job.id).await {
                Ok(counts) => job.report.set_committed(counts),
                Err(e) => tracing::warn!(job_id = %job.id, error = %e, "could not read the job's committed counts"),
            }
        }
        let (token, _) = self.tokens.access_token(&session, integration).await.unwrap_or((token, 0));
        if let Some(window) = self.calendly.rate_window(&token).filter(RateWindow::worth_sharing)
            && let Err(e) = self.store.record_rate_window(user, &window).await
        {
            tracing::warn!(error = %e, "could not share the rate-limit window");
        }
        match result {
            Err(SyncError::Calendly(e)) if e.rate_limit_reset().is_some() => Ok(SliceEnd::RateLimited {
                retry_after: Duration::from_secs(e.rate_limit_reset().unwrap_or(60).max(1)),
            }),
            other => other,
        }
    }

    /// The slice's loop: one page of events at a time, from the checkpoint on.
    async fn run_pages(
        &self,
        session: &CalendlySession,
        job: &mut SyncJob,
        integration: &Integration,
        deadline: Instant,
        progress: &mut Progress,
    ) -> Result<SliceEnd, SyncError> {
        // Owned: organization scope may fall back to user scope mid-run.
        let mut integration = integration.clone();
        // Read once, and only by a slice that has a booking to write.
        let style = tokio::sync::OnceCell::new();
        // Every slice gets through at least one page (and one event of it), however small its
        // budget: a slice that can't make progress would re-queue itself forever.
        let mut pages_this_slice = 0;
        loop {
            if pages_this_slice > 0 && Instant::now() >= deadline {
                return Ok(SliceEnd::OutOfTime);
            }
            pages_this_slice += 1;
            progress.worked = false;
            let checkpoint = job.checkpoint.clone();
            let Some(page) = self.read_page(session, job, &mut integration).await? else { continue };
            let all_done =
                self.sync_page(session, job, &integration, page.collection, &style, deadline, progress).await?;
            if !all_done {
                return Ok(SliceEnd::OutOfTime);
            }
            if let Some(end) = advance_checkpoint(job, checkpoint.page_token, page.pagination.next_page_token)? {
                return Ok(end);
            }
            // A page of changed events is checkpointed (a slice that dies does not read its
            // invitees again); a page of unchanged ones only when progress is due: redoing it
            // costs its one request, and an unchanged sync writes no progress.
            if progress.worked || progress.due(job) {
                progress.report(self, job, session).await;
            }
        }
    }

    /// The events page at the job's checkpoint (upcoming bookings first, then the past part of
    /// the window), or `None` when the window had to start over: Calendly no longer takes the
    /// saved page token, or refuses organization scope (the integration falls back to user
    /// scope, said once).
    async fn read_page(
        &self,
        session: &CalendlySession,
        job: &mut SyncJob,
        integration: &mut Integration,
    ) -> Result<Option<Page<ScheduledEvent>>, SyncError> {
        let checkpoint = &job.checkpoint;
        let (min_start_time, max_start_time) = checkpoint.range();
        let query = EventQuery {
            user_uri: integration.calendly_user_uri.clone(),
            organization_uri: (integration.coverage == crate::domain::CalendlyScope::Organization)
                .then(|| integration.calendly_organization_uri.clone()),
            min_start_time,
            max_start_time,
            page_token: checkpoint.page_token.clone(),
        };
        let read = self
            .authorized(session, integration, |api, token| {
                let query = query.clone();
                async move { api.list_scheduled_events(&token, &query).await }
            })
            .await;
        match read {
            // Unchanged events cost nothing but their page when the window starts over.
            Err(SyncError::Calendly(CalendlyError::Api { status: 400, .. })) if checkpoint.page_token.is_some() => {
                tracing::warn!(organization_id = %integration.organization_id, "Calendly refused the saved page token; restarting the window");
            }
            // The connecting user is no longer an owner or admin: back to their own bookings.
            Err(SyncError::Calendly(CalendlyError::Forbidden(_))) if query.organization_uri.is_some() => {
                self.organization_scope_lost(integration).await?;
                integration.fall_back_to_user_scope();
            }
            other => return other.map(Some),
        }
        job.checkpoint.restart();
        job.report.events_seen = 0;
        Ok(None)
    }

    /// Syncs one page's events, a few at a time: unchanged ones (by fingerprint) and those of
    /// types the filter leaves out are seen, not read. Whether every changed event was synced
    /// (`false`: the budget ran out first).
    #[allow(clippy::too_many_arguments)]
    async fn sync_page(
        &self,
        session: &CalendlySession,
        job: &mut SyncJob,
        integration: &Integration,
        events: Vec<ScheduledEvent>,
        style: &tokio::sync::OnceCell<NoteStyle>,
        deadline: Instant,
        progress: &mut Progress,
    ) -> Result<bool, SyncError> {
        let org = &integration.organization_id;
        let uuids: Vec<String> = events.iter().map(|e| e.uuid().to_string()).collect();
        let known = self.store.event_fingerprints(org, &uuids).await?;
        let now = self.clock.now();
        let (changed, unchanged): (Vec<ScheduledEvent>, Vec<ScheduledEvent>) = events.into_iter().partition(|e| {
            integration.filter.admits_event_type(e.event_type.as_deref())
                && known.get(e.uuid()) != Some(&e.fingerprint_at(now))
        });
        job.report.events_seen = job.checkpoint.events_before_page + unchanged.len() as u64;
        if changed.is_empty() {
            return Ok(true);
        }
        progress.worked = true;
        let style = style
            .get_or_try_init(|| async { Ok::<_, SyncError>(self.store.get_organization(org).await?.note_style()) })
            .await?;

        // Stop launching events once the budget is spent or an error came back; the ones
        // in flight finish, so counters and fingerprints stay true.
        let stop = AtomicBool::new(false);
        let launched = AtomicUsize::new(0);
        let total = changed.len();
        let launch = changed.into_iter().take_while(|_| {
            let go =
                !stop.load(Ordering::Relaxed) && (launched.load(Ordering::Relaxed) == 0 || Instant::now() < deadline);
            if go {
                launched.fetch_add(1, Ordering::Relaxed);
            }
            go
        });
        // Boxed so the stream's futures have one concrete, Send type.
        let job_id = job.id.clone();
        let job_id = job_id.as_str();
        let mut results = futures::stream::iter(launch)
            .map(|event| -> futures::future::BoxFuture<'_, Result<Vec<Applied>, SyncError>> {
                Box::pin(async move { self.sync_event(session, integration, &event, style, job_id).await })
            })
            .buffer_unordered(INVITEE_CONCURRENCY);
        let mut first_error = None;
        let mut done = 0;
        while let Some(result) = results.next().await {
            match result {
                Ok(applied) => {
                    done += 1;
                    job.report.events_seen += 1;
                    for a in &applied {
                        job.report.add(a);
                    }
                    if progress.due(job) {
                        progress.report(self, job, session).await;
                    }
                }
                Err(e) if e.is_event_scoped() => {
                    // One bad event must not stop the others: counted, shown, retried next sync
                    // (its fingerprint is not stored).
                    tracing::warn!(organization_id = %org, error = %e, "one Calendly event could not be synced; skipped");
                    done += 1;
                    job.report.events_seen += 1;
                    job.report.events_failed += 1;
                    job.report.last_event_error = Some(e.to_string());
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(results);
        match first_error {
            Some(e) => Err(e),
            None => Ok(done == total),
        }
    }

    /// Saves a running job's counters and checkpoint (if this slice still owns its turn; a
    /// handed-out job is recorded whole, if the job it replaces is still stored) and pushes
    /// them to the organization's browsers. Whether it was saved.
    pub async fn save_progress(&self, job: &SyncJob) -> bool {
        let saved = match &job.unrecorded {
            Some(unrecorded) => self.store.record_job(job, unrecorded.replaces.as_deref()).await,
            None => self
                .store
                .update_sync_job(&job.organization_id, &job.id, &|stored| stored.record_progress(job))
                .await
                .map(|stored| stored.is_some()),
        };
        match saved {
            Ok(true) => {
                self.pusher.push(&job.organization_id, PushMessage::sync(job)).await;
                true
            }
            Ok(false) => {
                tracing::debug!(job_id = %job.id, "job moved on; progress not saved");
                false
            }
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "could not save the job's progress");
                false
            }
        }
    }

    async fn sync_event(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        event: &ScheduledEvent,
        style: &NoteStyle,
        job_id: &str,
    ) -> Result<Vec<Applied>, SyncError> {
        let mut applied = Vec::new();
        let mut page_token: Option<String> = None;
        let mut seen_tokens = std::collections::HashSet::new();
        loop {
            let uuid = event.uuid().to_string();
            let token_param = page_token.clone();
            let page = self
                .authorized(session, integration, |api, token| {
                    let (uuid, token_param) = (uuid.clone(), token_param.clone());
                    async move { api.list_invitees(&token, &uuid, token_param.as_deref()).await }
                })
                .await?;
            for invitee in &page.collection {
                applied.push(self.apply(integration, &invitee.snapshot(event), style, Some(job_id)).await?);
            }
            match page.pagination.next_page_token {
                Some(token) if !seen_tokens.insert(token.clone()) || seen_tokens.len() >= MAX_INVITEE_PAGES => {
                    return Err(SyncError::EventPagination(format!("the invitees of event {uuid} do not end")));
                }
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        // Only once every invitee is recorded: a failure above makes the next sync retry it.
        let fingerprint = event.fingerprint_at(self.clock.now());
        let expires_at = expiry(event.end_time, integration.retention_days);
        self.store.put_event_fingerprint(&integration.organization_id, event.uuid(), &fingerprint, expires_at).await?;
        Ok(applied)
    }
}

/// Moves the checkpoint past a finished page: the next page token (refusing one that came back
/// or past the page cap), or the window's next part. `Some(Finished)` when nothing is left.
fn advance_checkpoint(
    job: &mut SyncJob,
    current: Option<String>,
    next: Option<String>,
) -> Result<Option<SliceEnd>, SyncError> {
    let recent = &mut job.checkpoint.recent_page_tokens;
    if let Some(current) = current {
        recent.push(current);
        let excess = recent.len().saturating_sub(RECENT_PAGE_TOKENS);
        recent.drain(..excess);
    }
    if let Some(token) = next.as_ref().filter(|t| recent.contains(t)) {
        return Err(SyncError::Pagination(format!("the events page token {token} came back")));
    }
    job.checkpoint.pages_done += 1;
    if next.is_some() && job.checkpoint.pages_done >= MAX_EVENT_PAGES {
        return Err(SyncError::Pagination(format!("more than {MAX_EVENT_PAGES} pages of events")));
    }
    job.checkpoint.events_before_page = job.report.events_seen;
    job.checkpoint.page_token = next;
    if job.checkpoint.page_token.is_none() && !job.checkpoint.next_part() {
        return Ok(Some(SliceEnd::Finished));
    }
    Ok(None)
}
