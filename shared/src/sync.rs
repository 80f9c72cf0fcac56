//! The one sync engine: initial, manual and scheduled syncs, and webhook deliveries (a
//! delivery is a sync of one invitee whose data came in the payload).
//!
//! One file on purpose: paging, planning, committing and their guards are one loop whose
//! exactly-once argument must be read whole.

use crate::calendly::{
    CalendlyApi, CalendlyError, CalendlySession, EventQuery, Invitee, Page, RateWindow, ScheduledEvent,
};
use crate::clock::Clock;
use crate::domain::booking::{self, ChangeKind, Known, ProspectChange};
use crate::domain::ledger;
use crate::domain::privacy::expiry;
use crate::domain::routing::{self, KnownForSubmission, SubmissionSnapshot};
use crate::domain::{BookingSnapshot, Email, Integration, NoteStyle, PersonAddress, SyncJob};
use crate::people::People;
use crate::push::{PushMessage, Pusher};
use crate::store::CalendlyData;
use crate::store::{BookingContext, CommitConflict, CommitError, Store, StoreError};
use crate::telemetry::metrics::{self, Metric};
use crate::tokens::{TokenError, TokenKeeper};
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

/// What the organization hears when Calendly access is lost for good: one
/// `calendly_reconnect_needed` notification (pushed), and the settings mirror saying the
/// OAuth connection is gone.
pub struct ReconnectAlarm {
    store: Arc<dyn Store>,
    pusher: Arc<dyn Pusher>,
    clock: Arc<dyn Clock>,
}

impl ReconnectAlarm {
    /// An alarm writing to the store and pushing to the organization's browsers.
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, clock: Arc<dyn Clock>) -> Self {
        Self { store, pusher, clock }
    }
}

#[async_trait::async_trait]
impl crate::tokens::AccessLostAlarm for ReconnectAlarm {
    async fn raise(&self, integration: &Integration) {
        let org = &integration.organization_id;
        let mut mirror = serde_json::Map::new();
        mirror.insert("oauth_connected".into(), serde_json::json!(false));
        if let Err(e) = self.store.merge_calendly_settings(org, &mirror).await {
            tracing::warn!(organization_id = %org, error = %e, "could not mirror the lost connection");
        }
        let notification = crate::domain::Notification::reconnect_needed(integration, self.clock.now());
        match self.store.add_notification(&notification).await {
            Ok(()) => self.pusher.push(org, PushMessage::notification(&notification)).await,
            Err(e) => tracing::warn!(organization_id = %org, error = %e, "could not add the reconnection notification"),
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

    /// Runs a Calendly call with a valid token; after a 401, once more with a fresh token.
    async fn authorized<T, F, Fut>(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        call: F,
    ) -> Result<T, SyncError>
    where
        F: Fn(Arc<dyn CalendlyApi>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, CalendlyError>>,
    {
        let (token, version) = self.tokens.access_token(session, integration).await?;
        match session.call(|api| call(api, token.clone())).await {
            Err(CalendlyError::Unauthorized) => {
                let (token, version) = self.tokens.replace_rejected(session, integration, version).await?;
                match session.call(|api| call(api, token.clone())).await {
                    Err(CalendlyError::Unauthorized) => {
                        self.access_lost(integration, version).await;
                        Err(TokenError::NeedsReconnect.into())
                    }
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    /// Records the fall-back to user scope and tells the organization why.
    async fn organization_scope_lost(&self, integration: &Integration) -> Result<(), SyncError> {
        let org = &integration.organization_id;
        tracing::warn!(organization_id = %org, "Calendly refuses organization scope; back to user scope");
        self.store.fall_back_to_user_scope(org).await?;
        let notification = crate::domain::Notification::scope_reduced(integration, self.clock.now());
        self.store.add_notification(&notification).await?;
        self.pusher.push(org, crate::push::PushMessage::notification(&notification)).await;
        Ok(())
    }

    /// A token fresh from a successful refresh was refused too: the access was revoked in
    /// Calendly. The integration needs its user to reconnect (and drops off the schedule, so
    /// no more token requests are made for it); the organization is told, once.
    async fn access_lost(&self, integration: &Integration, token_version: u64) {
        if let Err(e) = self.tokens.access_lost(integration, token_version).await {
            tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not mark the integration for reconnection");
        }
    }

    /// Reads from Calendly what a delivery left out: the invitee (when it named only its URI)
    /// and its scheduled event. Never waits for a rate limit: a webhook answers in seconds.
    pub async fn fetch_delivered(
        &self,
        integration: &Integration,
        invitee_uri: &crate::calendly::delivery::InviteeUri,
        invitee: Option<Invitee>,
    ) -> Result<(Invitee, ScheduledEvent), SyncError> {
        let session = self.session(Duration::ZERO);
        let (invitee_uuid, event_uuid) = (invitee_uri.invitee_uuid(), invitee_uri.event_uuid());
        let invitee = match invitee {
            Some(invitee) => invitee,
            None => {
                self.authorized(&session, integration, |api, token| {
                    let (e, i) = (event_uuid.to_string(), invitee_uuid.to_string());
                    async move { api.get_invitee(&token, &e, &i).await }
                })
                .await?
            }
        };
        let event = match invitee.scheduled_event.clone() {
            Some(event) => event,
            None => {
                self.authorized(&session, integration, |api, token| {
                    let e = event_uuid.to_string();
                    async move { api.get_scheduled_event(&token, &e).await }
                })
                .await?
            }
        };
        Ok((invitee, event))
    }

    /// Records one delivered routing form submission, in the organization's note style.
    pub async fn apply_delivered_submission(
        &self,
        integration: &Integration,
        snapshot: &SubmissionSnapshot,
    ) -> Result<SubmissionApplied, SyncError> {
        let style = self.store.get_organization(&integration.organization_id).await?.note_style();
        self.apply_submission(integration, snapshot, &style).await
    }

    /// Records one webhook-delivered booking (its payload embeds the scheduled event).
    pub async fn apply_delivered(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
    ) -> Result<Applied, SyncError> {
        // The organization, the booking, the e-mail's prospect and the browsers, read at once.
        let org = &integration.organization_id;
        let email_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
        let mut context = self.store.booking_context(org, &snapshot.invitee_uuid, email_key.as_deref()).await?;
        if let Some(connections) = context.connections.take() {
            self.pusher.reuse_connections(org, connections);
        }
        let style = context.organization.note_style();
        self.record(integration, snapshot, &style, None, Some(context)).await
    }

    /// Records one booking exactly once: plan against what is stored, commit all-or-nothing
    /// under guards, and on losing a race re-read and plan again. Pushes after the commit.
    /// A sync job's commits are counted for it (`counted_for`), in the commit itself.
    pub async fn apply(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
        style: &NoteStyle,
        counted_for: Option<&str>,
    ) -> Result<Applied, SyncError> {
        self.record(integration, snapshot, style, counted_for, None).await
    }

    /// `apply`, its first attempt planned on `context` when the caller read it.
    async fn record(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
        style: &NoteStyle,
        counted_for: Option<&str>,
        mut context: Option<BookingContext>,
    ) -> Result<Applied, SyncError> {
        let org = &integration.organization_id;
        let event_host = snapshot.host.as_ref().and_then(|h| h.email.as_deref());
        let admitted = integration.admits(event_host, snapshot.event_type_uri.as_deref(), &snapshot.invitee_email);
        if !admitted {
            return Ok(Applied::default());
        }
        let email_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
        // Whom the booking is about, valid e-mail or not: every stored person can be erased.
        let person = match PersonAddress::parse(&snapshot.invitee_email) {
            Ok(address) => Some(self.people.person(address.key()).await?),
            Err(_) => None,
        };
        let guest_people = self.guest_people(snapshot).await?;
        let guest_leads = self.guest_leads(integration, snapshot);
        // Guests found erased: left out of the booking itself, and of the CRM.
        let mut refused_guests: Vec<String> = Vec::new();
        let mut stored_prospect_missing = false;
        // The prospect as read after its notes were found full (or changed).
        let mut full_prospect = None;
        let whole_snapshot = snapshot;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let without_refused;
            let snapshot = match refused_guests.is_empty() {
                true => whole_snapshot,
                false => {
                    without_refused = without_guests(whole_snapshot, &refused_guests);
                    &without_refused
                }
            };
            // Read for this attempt, unless the caller read it for the first (later attempts
            // follow a lost race: they read what the winner wrote).
            let first = context.take();
            let stored = match &first {
                Some(context) => context.stored.clone(),
                None => self.store.get_booking(org, &snapshot.invitee_uuid).await?,
            };
            let noted = stored.as_ref().map(|b| b.guests_noted.as_slice()).unwrap_or_default();
            let mut guests = Vec::new();
            for email in &guest_leads {
                let key = email.key();
                if noted.contains(&key) || refused_guests.contains(&key) {
                    continue;
                }
                let prospect = self.store.find_prospect_by_email(org, &key).await?;
                guests.push(booking::KnownGuest { email: email.clone(), prospect });
            }
            // A booking a routing form led to joins the submission's prospect, while it exists.
            let (submission, joined) = match (&stored, &snapshot.routing_form_submission) {
                (None, Some(uuid)) => match self.store.get_submission_link(org, uuid).await? {
                    Some(link) => {
                        let joined = self.store.get_prospect(org, &link.prospect_id).await?;
                        (Some(link), joined)
                    }
                    None => (None, None),
                },
                _ => (None, None),
            };
            let (prospect_with_email, replaced) = match (&stored, &email_key) {
                (None, Some(key)) => {
                    let prospect = match (joined, first) {
                        (Some(joined), _) => Some(joined),
                        (None, Some(context)) => context.prospect_with_email,
                        (None, None) => self.store.find_prospect_by_email(org, key).await?,
                    };
                    let replaced = match &snapshot.old_invitee_uri {
                        Some(old) => self.store.get_booking(org, crate::calendly::last_segment(old)).await?,
                        None => None,
                    };
                    (prospect, replaced)
                }
                _ => (None, None),
            };
            let known = Known {
                stored: stored.as_ref(),
                prospect_with_email: prospect_with_email.as_ref(),
                replaced: replaced.as_ref(),
                stored_prospect_missing,
                full_prospect: full_prospect.as_ref(),
                guests: &guests,
                submission: submission.as_ref(),
            };
            let field_map = integration.field_map();
            let guests_as_prospects = integration.crm.guests_as_prospects;
            let rules = booking::Rules { style, fields: &field_map, guests_as_prospects };
            let Some(mut plan) = booking::plan(org, &integration.id, snapshot, known, rules, self.clock.now()) else {
                return Ok(Applied::default());
            };
            plan.counted_for = counted_for.map(String::from);
            plan.person = person.clone();
            // The invitee listed as their own guest is indexed once, as the invitee.
            let invitee_key = PersonAddress::parse(&snapshot.invitee_email).ok().map(|a| a.key().to_string());
            plan.guest_people = guest_people
                .iter()
                .filter(|(key, _)| !refused_guests.contains(key) && Some(key) != invitee_key.as_ref())
                .cloned()
                .collect();
            // A sync (never a delivery) seeing a booking first that the webhook should have
            // brought: the ledger counts it, with this commit.
            let by_sync = counted_for.is_some() && plan.kind == ChangeKind::New;
            plan.missed_delivery = snapshot.invitee_created_at.filter(|_| {
                by_sync && ledger::missed_by_webhook(integration, snapshot.invitee_created_at, plan.booking.updated_at)
            });
            // The organization's retention, as the table's TTL (and the embedded store) apply it.
            plan.booking.expires_at = expiry(plan.booking.details.end_time, integration.retention_days);
            if let Some(n) = &mut plan.notification {
                n.expires_at = expiry(n.created_at, integration.retention_days);
            }
            match self.store.commit_booking(&plan).await {
                Ok(()) => {
                    let was_active =
                        stored.as_ref().is_some_and(|b| b.details.status == booking::BookingStatus::Active);
                    let outcome = match (plan.kind, plan.booking.details.status) {
                        (ChangeKind::New, _) => "created",
                        (ChangeKind::Changed, booking::BookingStatus::Canceled) if was_active => "canceled",
                        (ChangeKind::Changed, _) => "updated",
                    };
                    metrics::count(Metric::Bookings, Some(outcome), 1);
                    self.push_committed(&plan).await;
                    if plan.missed_delivery.is_some() {
                        self.notice_webhook_gaps(integration, style).await;
                    }
                    return Ok(Applied {
                        kind: Some(plan.kind),
                        prospect_created: matches!(plan.prospect, ProspectChange::Create(_)),
                        notes_added: plan.notes_added(),
                        suppressed: false,
                    });
                }
                // An erased guest stays erased: the booking is written without them.
                Err(CommitError::Conflict(CommitConflict::GuestSuppressed(key))) => refused_guests.push(key),
                // Gone, or its notes full or changed: which one, the prospect itself says.
                Err(CommitError::Conflict(CommitConflict::ProspectMissing)) => {
                    let target = match &plan.prospect {
                        ProspectChange::Append { prospect_id, .. } | ProspectChange::Rewrite { prospect_id, .. } => {
                            Some(prospect_id)
                        }
                        _ => None,
                    };
                    full_prospect = match target {
                        Some(id) => self.store.get_prospect(org, id).await?,
                        None => None,
                    };
                    stored_prospect_missing = full_prospect.is_none();
                }
                // Erased from this organization: stays erased, whoever brings them back.
                Err(CommitError::Conflict(CommitConflict::Suppressed)) => {
                    return Ok(Applied { suppressed: true, ..Applied::default() });
                }
                // Disconnected (or reconnected as another integration) meanwhile: stop here.
                Err(CommitError::Conflict(CommitConflict::IntegrationInactive)) => {
                    return Err(SyncError::Token(TokenError::NotConnected));
                }
                Err(CommitError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, invitee = %snapshot.invitee_uri, "lost a race recording a booking; re-planning");
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(SyncError::Contended)
    }

    /// Records one routing form submission exactly once: its note on the prospect of its
    /// booking if that came first, else on the prospect of the e-mail it gives (created if
    /// new). What it did.
    pub async fn apply_submission(
        &self,
        integration: &Integration,
        snapshot: &SubmissionSnapshot,
        style: &NoteStyle,
    ) -> Result<SubmissionApplied, SyncError> {
        let org = &integration.organization_id;
        let email = snapshot.email();
        if let Some(email) = &email
            && !integration.admits(None, None, email.as_str())
        {
            return Ok(SubmissionApplied::Ignored);
        }
        let person = match &email {
            Some(email) => Some(self.people.person(&email.key()).await?),
            None => None,
        };
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let link = self.store.get_submission_link(org, &snapshot.uuid).await?;
            let linked_prospect = match &link {
                Some(link) => self.store.get_prospect(org, &link.prospect_id).await?,
                None => None,
            };
            let prospect_with_email = match (&linked_prospect, &email) {
                (None, Some(email)) => self.store.find_prospect_by_email(org, &email.key()).await?,
                _ => None,
            };
            let known = KnownForSubmission {
                link: link.as_ref(),
                linked_prospect: linked_prospect.as_ref(),
                prospect_with_email: prospect_with_email.as_ref(),
            };
            let Some(mut plan) =
                routing::plan_submission(org, &integration.id, snapshot, known, style, self.clock.now())
            else {
                return Ok(match (&link, &email) {
                    (Some(_), _) => SubmissionApplied::AlreadyRecorded,
                    (None, None) => SubmissionApplied::WithoutEmail,
                    (None, Some(_)) => SubmissionApplied::Ignored,
                });
            };
            plan.person = person.clone();
            match self.store.commit_submission(&plan).await {
                Ok(()) => {
                    self.push_prospect_change(org, &plan.prospect).await;
                    return Ok(SubmissionApplied::Recorded {
                        prospect_created: matches!(plan.prospect, ProspectChange::Create(_)),
                    });
                }
                Err(CommitError::Conflict(CommitConflict::Suppressed)) => return Ok(SubmissionApplied::Suppressed),
                Err(CommitError::Conflict(CommitConflict::IntegrationInactive)) => {
                    return Err(SyncError::Token(TokenError::NotConnected));
                }
                Err(CommitError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, "lost a race recording a routing form submission; re-planning");
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(SyncError::Contended)
    }

    /// The routing form submissions made since `since`, read from Calendly (a missed delivery
    /// still arrives), each recorded exactly once; how many were recorded, and how many gave
    /// no e-mail. Pages newest first and stops at the first older than `since`.
    pub async fn poll_routing_forms(
        &self,
        integration: &Integration,
        since: chrono::DateTime<Utc>,
        rate_limit_budget: Duration,
    ) -> Result<(u64, u64), SyncError> {
        let session = self.session(rate_limit_budget);
        let organization = integration.calendly_organization_uri.clone();
        let mut forms = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..crate::calendly::MAX_LIST_PAGES {
            let page = self
                .authorized(&session, integration, |api, token| {
                    let (organization, page) = (organization.clone(), page_token.clone());
                    async move { api.list_routing_forms(&token, &organization, page.as_deref()).await }
                })
                .await?;
            forms.extend(page.collection);
            match page.pagination.next_page_token {
                Some(next) if Some(&next) != page_token.as_ref() => page_token = Some(next),
                _ => break,
            }
        }
        let style = self.store.get_organization(&integration.organization_id).await?.note_style();
        let (mut recorded, mut without_email) = (0, 0);
        for form in forms {
            let mut page_token: Option<String> = None;
            for _ in 0..MAX_SUBMISSION_PAGES {
                let page = self
                    .authorized(&session, integration, |api, token| {
                        let (form, page) = (form.uri.clone(), page_token.clone());
                        async move { api.list_routing_form_submissions(&token, &form, page.as_deref()).await }
                    })
                    .await?;
                let mut reached_since = false;
                for submission in page.collection {
                    if submission.created_at < since {
                        reached_since = true;
                        break;
                    }
                    let snapshot = submission.snapshot(Some(form.name.clone()));
                    match self.apply_submission(integration, &snapshot, &style).await? {
                        SubmissionApplied::Recorded { .. } => recorded += 1,
                        SubmissionApplied::WithoutEmail => without_email += 1,
                        _ => {}
                    }
                }
                match page.pagination.next_page_token {
                    Some(next) if !reached_since => page_token = Some(next),
                    _ => break,
                }
            }
        }
        if recorded + without_email > 0 {
            tracing::info!(organization_id = %integration.organization_id, recorded, without_email, "routing form submissions polled");
        }
        Ok((recorded, without_email))
    }

    /// The name of a delivered submission's form, read from Calendly (a delivery names it by
    /// URI only); `None` when Calendly won't say (the note then names no form).
    pub async fn routing_form_name(&self, integration: &Integration, form_uri: &str) -> Option<String> {
        let session = self.session(Duration::ZERO);
        let form = self
            .authorized(&session, integration, |api, token| {
                let uri = form_uri.to_string();
                async move { api.get_routing_form(&token, &uri).await }
            })
            .await;
        match form {
            Ok(form) => Some(form.name),
            Err(e) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not read a routing form's name");
                None
            }
        }
    }

    fn remember_gaps_notice(&self, seen: String) {
        let mut done = self.gaps_noticed.lock().unwrap_or_else(|e| e.into_inner());
        // Keys of past days are of no use: forgotten together now and then.
        if done.len() >= 10_000 {
            done.clear();
        }
        done.insert(seen);
    }

    async fn push_prospect_change(&self, org: &crate::domain::OrganizationId, change: &ProspectChange) {
        match change {
            ProspectChange::Create(p) => self.pusher.push(org, PushMessage::prospect_created(p)).await,
            other => {
                if let Some(id) = other.prospect_id() {
                    match self.store.get_prospect(org, id).await {
                        Ok(Some(p)) => self.pusher.push(org, PushMessage::prospect_updated(&p)).await,
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "could not read the prospect to push its update"),
                    }
                }
            }
        }
    }

    /// The booking's guests the organization takes as leads, when it takes guests at all:
    /// valid e-mails the filter admits (the ignore list, members, the host).
    fn guest_leads(&self, integration: &Integration, snapshot: &BookingSnapshot) -> Vec<Email> {
        if !integration.crm.guests_as_prospects {
            return Vec::new();
        }
        let event_host = snapshot.host.as_ref().and_then(|h| h.email.as_deref());
        snapshot
            .guests
            .iter()
            .filter(|g| integration.admits(event_host, snapshot.event_type_uri.as_deref(), &g.email))
            .filter_map(|g| Email::parse(&g.email).ok())
            .collect()
    }

    /// Every guest the booking names, by address key, as the privacy index knows them (the
    /// booking is indexed under each: their erasure takes them out of it).
    async fn guest_people(
        &self,
        snapshot: &BookingSnapshot,
    ) -> Result<Vec<(String, crate::domain::PersonKeys)>, SyncError> {
        let mut people: Vec<(String, crate::domain::PersonKeys)> = Vec::new();
        for guest in &snapshot.guests {
            let Ok(address) = PersonAddress::parse(&guest.email) else { continue };
            if people.iter().any(|(key, _)| key == address.key()) {
                continue;
            }
            people.push((address.key().to_string(), self.people.person(address.key()).await?));
        }
        Ok(people)
    }

    /// Deletes what the organization's retention let expire and the table's TTL has not yet
    /// (items written before the retention was set carry no TTL), a few pages at a time; the
    /// next sync goes on. How many were deleted.
    pub async fn sweep_expired(&self, integration: &Integration) -> Result<u64, StoreError> {
        let Some(days) = integration.retention_days else { return Ok(0) };
        let cutoff = self.clock.now() - chrono::Duration::days(i64::from(days));
        let org = &integration.organization_id;
        let mut deleted = 0;
        for family in [CalendlyData::Bookings, CalendlyData::Notifications] {
            let mut cursor = None;
            for _ in 0..RETENTION_SWEEP_PAGES {
                let (n, next) =
                    self.store.delete_calendly_data(org, family, Some(cutoff), 100, cursor.as_deref()).await?;
                deleted += n;
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        if deleted > 0 {
            tracing::info!(organization_id = %org, deleted, "items past the retention deleted");
        }
        Ok(deleted)
    }

    /// Once a day, while the ledger counts bookings the webhook missed, the organization is
    /// told how many and since when (`calendly_webhook_gaps`). A failure only loses the notice.
    async fn notice_webhook_gaps(&self, integration: &Integration, style: &NoteStyle) {
        let org = &integration.organization_id;
        let now = self.clock.now();
        let once_key = ledger::gaps_notice_key(now);
        let seen = format!("{org}|{once_key}");
        let noticed = |s: &Self| s.gaps_noticed.lock().unwrap_or_else(|e| e.into_inner()).contains(&seen);
        if noticed(self) {
            return;
        }
        let hours = match self.store.ledger_hours(org).await {
            Ok(hours) => hours,
            Err(e) => return tracing::warn!(organization_id = %org, error = %e, "could not read the delivery ledger"),
        };
        let health = ledger::WebhookHealth::from_hours(&hours, now);
        if health.missed_24h == 0 {
            return;
        }
        let mut notice = ledger::gaps_notification(org, &health, style, now);
        notice.expires_at = expiry(now, integration.retention_days);
        match self.store.add_notification_once(&notice, &once_key).await {
            Ok(added) => {
                self.remember_gaps_notice(seen);
                if added {
                    tracing::warn!(organization_id = %org, missed_24h = health.missed_24h, "bookings reached us by the sync only: the webhook missed them");
                    self.pusher.push(org, PushMessage::notification(&notice)).await;
                }
            }
            Err(e) => tracing::warn!(organization_id = %org, error = %e, "could not add the webhook gaps notice"),
        }
    }

    async fn push_committed(&self, plan: &booking::BookingPlan) {
        let org = &plan.booking.organization_id;
        let changes = std::iter::once(&plan.prospect).chain(plan.guests.iter().map(|g| &g.prospect));
        for change in changes {
            self.push_prospect_change(org, change).await;
        }
        if let Some(n) = &plan.notification {
            self.pusher.push(org, PushMessage::notification(n)).await;
        }
    }
}

/// `snapshot` less the guests whose address keys are `refused` (erased: never recorded again).
fn without_guests(snapshot: &BookingSnapshot, refused: &[String]) -> BookingSnapshot {
    let mut kept = snapshot.clone();
    kept.guests.retain(|g| PersonAddress::parse(&g.email).map_or(true, |a| !refused.iter().any(|r| r == a.key())));
    kept
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
