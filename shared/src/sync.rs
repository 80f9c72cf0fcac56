//! The one sync engine: initial, manual and scheduled syncs, and webhook deliveries (a
//! delivery is a sync of one invitee whose data came in the payload).

use crate::calendly::{CalendlyApi, CalendlyError, CalendlySession, EventQuery, Invitee, ScheduledEvent};
use crate::clock::Clock;
use crate::domain::booking::{self, ChangeKind, Known, ProspectChange};
use crate::domain::{BookingSnapshot, Email, Integration, NoteStyle};
use crate::push::{PushMessage, Pusher};
use crate::store::{CommitConflict, CommitError, Store, StoreError};
use crate::tokens::{TokenError, TokenKeeper};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How many invitee lists are fetched at once: well under Calendly's per-user limit.
const INVITEE_CONCURRENCY: usize = 8;
/// How many times a booking write is re-planned after losing a race.
const MAX_COMMIT_ATTEMPTS: usize = 10;

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub events_seen: u64,
    pub bookings_new: u64,
    pub bookings_changed: u64,
    pub prospects_created: u64,
    pub notes_added: u64,
    pub calendly_requests: u64,
}

impl SyncReport {
    fn add(&mut self, applied: &Applied) {
        match applied.kind {
            Some(ChangeKind::New) => self.bookings_new += 1,
            Some(ChangeKind::Changed) => self.bookings_changed += 1,
            None => {}
        }
        self.prospects_created += u64::from(applied.prospect_created);
        self.notes_added += applied.notes_added as u64;
    }
}

/// What recording one booking did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub kind: Option<ChangeKind>,
    pub prospect_created: bool,
    pub notes_added: usize,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Calendly(#[from] CalendlyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a booking kept changing under concurrent writers; giving up after {MAX_COMMIT_ATTEMPTS} attempts")]
    Contended,
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
    days_past: i64,
    days_ahead: i64,
}

impl SyncEngine {
    /// An engine syncing the window `[now - days_past, now + days_ahead]`.
    pub fn new(
        store: Arc<dyn Store>,
        calendly: Arc<dyn CalendlyApi>,
        pusher: Arc<dyn Pusher>,
        clock: Arc<dyn Clock>,
        tokens: TokenKeeper,
        days_past: i64,
        days_ahead: i64,
    ) -> Self {
        Self { store, calendly, pusher, clock, tokens, days_past, days_ahead }
    }

    /// A Calendly session for one run.
    pub fn session(&self, rate_limit_budget: Duration) -> CalendlySession {
        CalendlySession::new(self.calendly.clone(), rate_limit_budget)
    }

    /// The token keeper (shared with the connect and disconnect flows).
    pub fn tokens(&self) -> &TokenKeeper {
        &self.tokens
    }

    /// Syncs one integration's rolling window, then schedules its next sync.
    pub async fn sync_integration(
        &self,
        integration: &Integration,
        rate_limit_budget: Duration,
    ) -> Result<SyncReport, SyncError> {
        let session = self.session(rate_limit_budget);
        let result = self.sync_window(&session, integration).await;
        let mut report = result?;
        report.calendly_requests = session.requests();
        let now = self.clock.now();
        let next = now + chrono::Duration::minutes(i64::from(integration.sync_interval_minutes));
        self.store.record_sync(&integration.organization_id, now, next).await?;
        tracing::info!(organization_id = %integration.organization_id, ?report, "Calendly sync finished");
        Ok(report)
    }

    async fn sync_window(&self, session: &CalendlySession, integration: &Integration) -> Result<SyncReport, SyncError> {
        let org = &integration.organization_id;
        let style = self.store.get_organization(org).await?.note_style();
        let now = self.clock.now();
        let mut query = EventQuery {
            user_uri: integration.calendly_user_uri.clone(),
            min_start_time: now - chrono::Duration::days(self.days_past),
            max_start_time: now + chrono::Duration::days(self.days_ahead),
            page_token: None,
        };
        let mut report = SyncReport::default();
        loop {
            let page = self
                .authorized(session, integration, |api, token| {
                    let query = query.clone();
                    async move { api.list_scheduled_events(&token, &query).await }
                })
                .await?;
            report.events_seen += page.collection.len() as u64;

            let uuids: Vec<String> = page.collection.iter().map(|e| e.uuid().to_string()).collect();
            let known = self.store.event_fingerprints(org, &uuids).await?;
            let changed: Vec<ScheduledEvent> =
                page.collection.iter().filter(|e| known.get(e.uuid()) != Some(&e.fingerprint())).cloned().collect();

            // Boxed so the stream's futures have one concrete, Send type.
            let mut results = futures::stream::iter(changed)
                .map(|event| -> futures::future::BoxFuture<'_, Result<Vec<Applied>, SyncError>> {
                    Box::pin(async move { self.sync_event(session, integration, &event, style).await })
                })
                .buffer_unordered(INVITEE_CONCURRENCY);
            while let Some(result) = results.next().await {
                for applied in result? {
                    report.add(&applied);
                }
            }

            match page.pagination.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        Ok(report)
    }

    async fn sync_event(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        event: &ScheduledEvent,
        style: NoteStyle,
    ) -> Result<Vec<Applied>, SyncError> {
        let mut applied = Vec::new();
        let mut page_token: Option<String> = None;
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
                applied.push(self.apply(integration, &invitee.snapshot(event), style).await?);
            }
            match page.pagination.next_page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        // Only once every invitee is recorded: a failure above makes the next sync retry it.
        self.store.put_event_fingerprint(&integration.organization_id, event.uuid(), &event.fingerprint()).await?;
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
                let (token, _) = self.tokens.replace_rejected(session, integration, version).await?;
                Ok(session.call(|api| call(api, token.clone())).await?)
            }
            other => Ok(other?),
        }
    }

    /// Records one webhook-delivered invitee (its payload embeds the scheduled event).
    pub async fn apply_delivered_invitee(
        &self,
        integration: &Integration,
        invitee: &Invitee,
        event: &ScheduledEvent,
    ) -> Result<Applied, SyncError> {
        let style = self.store.get_organization(&integration.organization_id).await?.note_style();
        self.apply(integration, &invitee.snapshot(event), style).await
    }

    /// Records one booking exactly once: plan against what is stored, commit all-or-nothing
    /// under guards, and on losing a race re-read and plan again. Pushes after the commit.
    pub async fn apply(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
        style: NoteStyle,
    ) -> Result<Applied, SyncError> {
        let org = &integration.organization_id;
        let email_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
        let mut stored_prospect_missing = false;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let stored = self.store.get_booking(org, &snapshot.invitee_uuid).await?;
            let (prospect_with_email, replaced) = match (&stored, &email_key) {
                (None, Some(key)) => {
                    let prospect = self.store.find_prospect_by_email(org, key).await?;
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
            };
            let Some(plan) = booking::plan(org, &integration.id, snapshot, known, style, self.clock.now()) else {
                return Ok(Applied::default());
            };
            match self.store.commit_booking(&plan).await {
                Ok(()) => {
                    self.push_committed(&plan).await;
                    return Ok(Applied {
                        kind: Some(plan.kind),
                        prospect_created: matches!(plan.prospect, ProspectChange::Create(_)),
                        notes_added: plan.notes_added(),
                    });
                }
                Err(CommitError::Conflict(CommitConflict::ProspectMissing)) => stored_prospect_missing = true,
                Err(CommitError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, invitee = %snapshot.invitee_uri, "lost a race recording a booking; re-planning");
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(SyncError::Contended)
    }

    async fn push_committed(&self, plan: &booking::BookingPlan) {
        let org = &plan.booking.organization_id;
        match &plan.prospect {
            ProspectChange::Create(p) => self.pusher.push(org, PushMessage::prospect_created(p)).await,
            ProspectChange::Append { prospect_id, .. } => match self.store.get_prospect(org, prospect_id).await {
                Ok(Some(p)) => self.pusher.push(org, PushMessage::prospect_updated(&p)).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the prospect to push its update")
                }
            },
            ProspectChange::None => {}
        }
        if let Some(n) = &plan.notification {
            self.pusher.push(org, PushMessage::notification(n)).await;
        }
    }
}
