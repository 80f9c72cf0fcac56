//! The store's ports: one narrow trait per item family (a use case holds exactly those it
//! calls), and the values they exchange. `DynamoStore` and `MemoryStore` implement every one.

use super::{CommitError, PageOf, ProspectPatch, StoreError};
use crate::calendly::RateWindow;
use crate::domain::booking::BookingPlan;
use crate::domain::ledger::LedgerHour;
use crate::domain::quota::{Quota, QuotaTake};
use crate::domain::{
    Booking, CalendlyScope, Integration, Notification, OAuthState, Organization, OrganizationId, Prospect, ProspectId,
    SyncJob,
};
use crate::domain::{BookingFilter, CommittedCounts, HandedOutJob, IntegrationId, NotificationId, UserId};
use crate::domain::{ErasureRecord, PersonIndex, PersonKeys};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub use crate::domain::TokenUpdate;

/// Organizations and their settings.
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    /// The organization (empty settings when it has none yet).
    async fn get_organization(&self, org: &OrganizationId) -> Result<Organization, StoreError>;
    /// Merges top-level settings keys (`null` removes one) and returns the result.
    async fn merge_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<Organization, StoreError>;
    /// Merges keys into `settings.calendly` only, leaving every other setting untouched.
    async fn merge_calendly_settings(&self, org: &OrganizationId, patch: &Map<String, Value>)
    -> Result<(), StoreError>;
}

/// Pending OAuth connects.
#[async_trait]
pub trait OAuthStateStore: Send + Sync {
    /// Stores a pending connect; those expired at `now` are purged (by the table's TTL, or by
    /// the embedded store at once).
    async fn put_oauth_state(&self, state: &OAuthState, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Removes and returns a pending connect, atomically, if `org` and `user` started it; one
    /// started by someone else stays untouched. Expired ones count as absent.
    async fn take_oauth_state(
        &self,
        state: &str,
        org: &OrganizationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<StateTake, StoreError>;
}

/// A claim younger than this belongs to a connect still under way (claimed, integration not
/// yet saved): it is never taken over, so of two organizations racing for one account one wins.
pub const CLAIM_SETTLES: chrono::Duration = chrono::Duration::minutes(10);

/// What taking an OAuth state found.
#[derive(Clone, Debug)]
pub enum StateTake {
    /// Ours: removed and returned.
    Taken(OAuthState),
    /// Unknown, expired or already used.
    Absent,
    /// Started by another user or organization: left in place.
    NotYours,
}

/// Calendly integrations (one per organization).
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// The organization's integration, active or not.
    async fn get_integration(&self, org: &OrganizationId) -> Result<Option<Integration>, StoreError>;
    /// An integration by id (webhook routing).
    async fn get_integration_by_id(&self, id: &IntegrationId) -> Result<Option<Integration>, StoreError>;
    /// The active integration connected to this Calendly user (webhooks without an id).
    async fn find_integration_by_calendly_user(&self, user_uri: &str) -> Result<Option<Integration>, StoreError>;
    /// Stores a (re)connected integration, replacing the organization's previous one; the
    /// stored `token_version` moves past the previous one so refreshes in flight lose.
    async fn save_connected_integration(&self, integration: Integration) -> Result<Integration, StoreError>;
    /// Takes the refresh lease if nobody holds it and the tokens are still `token_version`.
    async fn try_acquire_refresh_lease(
        &self,
        org: &OrganizationId,
        token_version: u64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Stores a refreshed pair if the tokens are still `expected_version`; frees the lease.
    async fn store_refreshed_tokens(
        &self,
        org: &OrganizationId,
        expected_version: u64,
        tokens: TokenUpdate,
    ) -> Result<bool, StoreError>;
    /// Frees the lease after a failed refresh.
    async fn release_refresh_lease(&self, org: &OrganizationId, token_version: u64) -> Result<(), StoreError>;
    /// Claims a Calendly user for `org`: true when it is now `org`'s (it was free, already
    /// `org`'s, or left behind by an organization that is not connected to it and claimed it
    /// more than `CLAIM_SETTLES` ago); false when another organization holds it.
    async fn claim_calendly_user(
        &self,
        user_uri: &str,
        org: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Releases `org`'s claim on a Calendly user (disconnect, or a reconnect to another account).
    async fn release_calendly_user(&self, user_uri: &str, org: &OrganizationId) -> Result<(), StoreError>;
    /// Marks the integration as needing the user to reconnect (the refresh token is dead).
    /// True for the one call that marked it.
    async fn mark_needs_reconnect(&self, org: &OrganizationId, token_version: u64) -> Result<bool, StoreError>;
    /// Moves the next scheduled sync (the scheduler, when it queues one) and, for a finished
    /// sync, records when it finished.
    async fn record_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records a finished sync and its next due time, reckoned from the schedule `seen` when
    /// the job started; false, and nothing written, when the schedule changed since (or the
    /// integration is gone): the caller reads it again.
    async fn record_finished_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
        seen: ScheduleSeen,
    ) -> Result<bool, StoreError>;
    /// Hands a scheduled job out: records `job` on the integration and moves its next due time
    /// to `next_sync_at`, in one write, if its due time is still `due` (no other tick handed it
    /// out, no settings change moved it). Whether it was handed out.
    async fn hand_out(
        &self,
        org: &OrganizationId,
        due: DateTime<Utc>,
        next_sync_at: DateTime<Utc>,
        job: &HandedOutJob,
    ) -> Result<bool, StoreError>;
    /// Takes back the handed-out job `job_id` (its message could not be sent, or a job under
    /// way stands for it), due again at `due_again` when given. Whether it was still there.
    async fn withdraw_hand_out(
        &self,
        org: &OrganizationId,
        job_id: &str,
        due_again: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// Changes the auto-sync settings (and the next due time).
    async fn update_sync_settings(
        &self,
        org: &OrganizationId,
        auto_sync_enabled: bool,
        interval_minutes: u32,
        next_sync_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// How many days what came from Calendly is kept (`None`: kept).
    async fn set_retention(&self, org: &OrganizationId, days: Option<u32>) -> Result<(), StoreError>;
    /// What a booking does to the CRM beyond its note (the field map, guests).
    async fn set_crm_rules(&self, org: &OrganizationId, rules: &crate::domain::CrmRules) -> Result<(), StoreError>;
    /// Back to user scope (organization scope was refused by Calendly).
    async fn fall_back_to_user_scope(&self, org: &OrganizationId) -> Result<(), StoreError>;
    /// Sets whose bookings the integration brings (and the members' e-mails, read at `read_at`).
    async fn set_coverage(
        &self,
        org: &OrganizationId,
        coverage: CalendlyScope,
        member_emails: Vec<String>,
        read_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Takes the scope-change lease until `until`, or releases it (`None`); whether taken.
    async fn set_scope_lease(
        &self,
        org: &OrganizationId,
        now: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;
    /// Sets which bookings become prospects.
    async fn set_booking_filter(&self, org: &OrganizationId, filter: &BookingFilter) -> Result<(), StoreError>;
    /// Records the webhook subscription's URI and state (and why there is none), delivering
    /// since `since` when it is a newly active one.
    async fn set_webhook(
        &self,
        org: &OrganizationId,
        subscription_uri: Option<String>,
        active: bool,
        error: Option<String>,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Soft-deletes the integration (`is_active: false`).
    async fn deactivate_integration(&self, org: &OrganizationId, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// The parts the schedule is kept in (`due_shard` of each organization, and any part an
    /// earlier layout wrote): a tick reads each of them, concurrently.
    fn due_partitions(&self) -> Vec<DuePartition>;
    /// Active, healthy integrations of one part of the schedule whose `next_sync_at` has
    /// passed (oldest first), a page at a time (auto-sync off ones too: they are due for their
    /// webhook check). A part this store does not keep is `InvalidCursor`.
    async fn list_due_integrations(
        &self,
        now: DateTime<Utc>,
        partition: &DuePartition,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Scheduled>, StoreError>;
}

pub use crate::domain::schedule::{DEFAULT_DUE_SHARDS, DuePartition, Scheduled};

/// The schedule settings of an integration as a job saw them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleSeen {
    /// `auto_sync_enabled`.
    pub auto_sync_enabled: bool,
    /// `sync_interval_minutes`.
    pub sync_interval_minutes: u32,
}

impl ScheduleSeen {
    /// What `integration` says now.
    pub fn of(integration: &Integration) -> Self {
        Self {
            auto_sync_enabled: integration.auto_sync_enabled,
            sync_interval_minutes: integration.sync_interval_minutes,
        }
    }
}

/// Bookings, and the all-or-nothing write that records one with its note and notification.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// A booking by invitee UUID.
    async fn get_booking(&self, org: &OrganizationId, invitee_uuid: &str) -> Result<Option<Booking>, StoreError>;
    /// Writes the booking, the prospect change and the notification at once, or nothing if
    /// any guard fails (booking revision, email claim, prospect existence).
    async fn commit_booking(&self, plan: &BookingPlan) -> Result<(), CommitError>;
    /// Bookings, newest start first.
    async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, StoreError>;
    /// The stored fingerprints of these scheduled events (absent when never synced).
    async fn event_fingerprints(
        &self,
        org: &OrganizationId,
        event_uuids: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;
    /// Remembers an event's fingerprint once all its invitees are recorded.
    async fn put_event_fingerprint(
        &self,
        org: &OrganizationId,
        event_uuid: &str,
        fingerprint: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
}

/// What recording a delivered booking starts from.
#[derive(Clone, Debug)]
pub struct BookingContext {
    /// The organization (its note style).
    pub organization: Organization,
    /// The booking as stored, if it is.
    pub stored: Option<Booking>,
    /// The prospect holding the invitee's e-mail, if any.
    pub prospect_with_email: Option<Prospect>,
    /// The organization's connections, when the store read them along (`None`: the pusher
    /// reads them itself).
    pub connections: Option<Vec<Connection>>,
}

/// The reads that start a delivered booking's record, together: on DynamoDB one
/// `BatchGetItem` (and the prospect's `GetItem` when the e-mail is known), where reading them
/// one by one took four requests.
#[async_trait]
pub trait BookingContextStore: Send + Sync {
    /// The organization, the stored booking, the prospect of `email_key` and the organization's
    /// connections.
    async fn booking_context(
        &self,
        org: &OrganizationId,
        invitee_uuid: &str,
        email_key: Option<&str>,
    ) -> Result<BookingContext, StoreError>;
}

/// Prospects and their per-organization email uniqueness.
#[async_trait]
pub trait ProspectStore: Send + Sync {
    /// A prospect of this organization.
    async fn get_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Option<Prospect>, StoreError>;
    /// The prospect holding this email (lower-cased key) in this organization.
    async fn find_prospect_by_email(
        &self,
        org: &OrganizationId,
        email_key: &str,
    ) -> Result<Option<Prospect>, StoreError>;
    /// Creates a prospect with its email claim; `Conflict` when the email is taken.
    async fn create_prospect(&self, prospect: &Prospect) -> Result<(), StoreError>;
    /// Applies a patch (moving the email claim atomically); `NotFound`, or `Conflict` on email.
    async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
        now: DateTime<Utc>,
    ) -> Result<Prospect, StoreError>;
    /// Deletes a prospect and its email claim; false when it did not exist.
    async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<bool, StoreError>;
    /// Prospects, newest first, optionally of one source.
    async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, StoreError>;
}

/// Notifications (written by booking commits).
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Notifications, newest first.
    async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, StoreError>;
    /// Adds a notification that no booking carries (the integration lost its access).
    async fn add_notification(&self, notification: &Notification) -> Result<(), StoreError>;
    /// Adds `notification` unless one was added under `once_key` (remembered two days): the
    /// daily notices. Whether it was added.
    async fn add_notification_once(&self, notification: &Notification, once_key: &str) -> Result<bool, StoreError>;
    /// Marks one as read; false when it does not exist.
    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError>;
}

/// The key people are hashed under (one per deployment, sealed): stored once and never changed,
/// so that rolling a configured key re-seals it and changes no person's hash.
#[async_trait]
pub trait PersonHashKeyStore: Send + Sync {
    /// The sealed key, once stored.
    async fn person_hash_key(&self) -> Result<Option<crate::crypto::Sealed>, StoreError>;
    /// Stores `sealed` if the stored key is still `expected` (`None`: none stored yet);
    /// whether it was stored (false: someone else stored or re-sealed it first).
    async fn swap_person_hash_key(
        &self,
        expected: Option<&crate::crypto::Sealed>,
        sealed: &crate::crypto::Sealed,
    ) -> Result<bool, StoreError>;
}

/// The people an organization holds data about, known by keyed hashes of their e-mail only:
/// the index of what commits wrote about each (kept by `commit_booking` in the same write), the
/// suppression list that stops any commit from writing about an erased person again, and the
/// audit of erasures.
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    /// Suppresses the person (from now on every booking commit about them fails with
    /// `CommitConflict::Suppressed`) and returns what commits recorded about them before.
    async fn suppress_person(
        &self,
        org: &OrganizationId,
        person: &PersonKeys,
        now: DateTime<Utc>,
    ) -> Result<PersonIndex, StoreError>;
    /// Empties the person's index once what it named is deleted (the suppression stays).
    async fn forget_person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<(), StoreError>;
    /// What commits recorded about the person (nothing when unknown).
    async fn person_index(&self, org: &OrganizationId, person: &PersonKeys) -> Result<PersonIndex, StoreError>;
    /// Lifts the person's suppression (and forgets them); whether they were suppressed.
    async fn lift_suppression(&self, org: &OrganizationId, person: &PersonKeys) -> Result<bool, StoreError>;
    /// These bookings, those that exist.
    async fn get_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<Vec<Booking>, StoreError>;
    /// These notifications, those that exist.
    async fn get_notifications(
        &self,
        org: &OrganizationId,
        ids: &[NotificationId],
    ) -> Result<Vec<Notification>, StoreError>;
    /// Deletes these bookings (absent ones are no error).
    async fn delete_bookings(&self, org: &OrganizationId, ids: &[String]) -> Result<(), StoreError>;
    /// Takes the guest with this address key out of these bookings (absent ones are no
    /// error); how many named them.
    async fn remove_guest(&self, org: &OrganizationId, ids: &[String], key: &str) -> Result<u64, StoreError>;
    /// Deletes these notifications (absent ones are no error).
    async fn delete_notifications(&self, org: &OrganizationId, ids: &[NotificationId]) -> Result<(), StoreError>;
    /// Records an erasure in the audit.
    async fn record_erasure(&self, erasure: &ErasureRecord) -> Result<(), StoreError>;
    /// Deletes one page (up to `limit`) of one family of what came from Calendly for the
    /// organization, from `cursor` on: all of it, or with `ended_before` only what is dated
    /// before it (bookings by their event's end, notifications by their creation; fingerprints
    /// carry no date and are left to their TTL). How many were deleted, and where to go on
    /// (`None`: the family is done).
    async fn delete_calendly_data(
        &self,
        org: &OrganizationId,
        family: CalendlyData,
        ended_before: Option<DateTime<Utc>>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(u64, Option<String>), StoreError>;
    /// The audit, newest first.
    async fn list_erasures(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<ErasureRecord>, StoreError>;
}

/// The families of what came from Calendly (a purge deletes them all; prospects stay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendlyData {
    /// Bookings (invitees with their answers).
    Bookings,
    /// Scheduled events' fingerprints.
    Fingerprints,
    /// Notifications.
    Notifications,
}

impl CalendlyData {
    /// Every family, in the order a purge goes through them.
    pub const ALL: [CalendlyData; 3] = [Self::Bookings, Self::Fingerprints, Self::Notifications];
}

/// What asking to start a sync job found.
#[derive(Clone, Debug, PartialEq)]
pub enum JobStart {
    /// The job was recorded as the organization's current one.
    Created(SyncJob),
    /// Another job is queued or running: it stands for this request too.
    AlreadyActive(SyncJob),
}

/// A change to a stored job, decided by the domain (`SyncJob::claim`, `pause`, `finish`...);
/// returns false to leave the job as it is.
pub type JobChange<'a> = &'a (dyn Fn(&mut SyncJob) -> bool + Send + Sync);

/// Sync jobs: the organization's current (or latest) one, its lease, checkpoint and progress.
#[async_trait]
pub trait SyncJobStore: Send + Sync {
    /// The organization's current or latest job.
    async fn get_sync_job(&self, org: &OrganizationId) -> Result<Option<SyncJob>, StoreError>;
    /// The recorded job with the integration it belongs with (the handed-out job is on the
    /// integration): one request where the store allows.
    async fn get_sync_job_with_integration(
        &self,
        org: &OrganizationId,
    ) -> Result<(Option<SyncJob>, Option<Integration>), StoreError>;
    /// Records a handed-out job (`job.unrecorded`) in the place of the job `replaces` names
    /// (`None`: no job is stored), if that is still the stored one. Whether it was recorded.
    async fn record_job(&self, job: &SyncJob, replaces: Option<&str>) -> Result<bool, StoreError>;
    /// Records `job` as current unless an active job blocks it (`SyncJob::blocks_new_job`).
    async fn start_sync_job(&self, job: &SyncJob, now: DateTime<Utc>) -> Result<JobStart, StoreError>;
    /// Applies `change` atomically to the current job if it is `job_id`; the job as changed,
    /// or `None` when it is gone, replaced, or the change refused.
    async fn update_sync_job(
        &self,
        org: &OrganizationId,
        job_id: &str,
        change: JobChange<'_>,
    ) -> Result<Option<SyncJob>, StoreError>;
    /// What the commits counted for `job_id` added (`BookingPlan::counted_for`): written by
    /// the commits themselves, so exact whatever happened to the workers.
    async fn committed_counts(&self, org: &OrganizationId, job_id: &str) -> Result<CommittedCounts, StoreError>;
}

/// Calendly's rate-limit window per Calendly user, shared by every worker of every instance.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// The last observed window of this user.
    async fn get_rate_window(&self, user_uri: &str) -> Result<Option<RateWindow>, StoreError>;
    /// Stores an observation unless the stored one is newer (`RateWindow::supersedes`).
    async fn record_rate_window(&self, user_uri: &str, window: &RateWindow) -> Result<(), StoreError>;
}

/// Quotas per organization (and subject within it), shared by every instance.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Counts one use of `quota` by `subject` of `org` at `now`, atomically, unless it is used up.
    async fn take_quota(
        &self,
        org: &OrganizationId,
        quota: &Quota,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<QuotaTake, StoreError>;
}

/// A browser's WebSocket connection, keyed by organization (API Gateway's connection id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's id of the connection (what pushes address).
    pub connection_id: String,
    /// The organization of the token it was opened with: it receives that organization's pushes only.
    pub organization_id: OrganizationId,
    /// The user of that token.
    pub user_id: crate::domain::UserId,
    /// When it was opened.
    pub connected_at: DateTime<Utc>,
    /// API Gateway closes a connection after 2 hours at the most, and the token it was opened
    /// with expires: past the sooner of the two it receives nothing and is closed.
    pub expires_at: DateTime<Utc>,
}

/// Live WebSocket connections, by organization (plus the reverse record for `$disconnect`).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Stores a connection and its reverse record.
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError>;
    /// Removes a connection (from `$disconnect`, which only knows its id); returns it if known.
    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError>;
    /// Every stored connection of the organization, expired ones included (the table's TTL
    /// deletes them days late at the most).
    async fn connections(&self, org: &OrganizationId) -> Result<Vec<Connection>, StoreError>;
    /// The organization's connections that have not expired at `now`.
    async fn live_connections(&self, org: &OrganizationId, now: DateTime<Utc>) -> Result<Vec<Connection>, StoreError> {
        Ok(self.connections(org).await?.into_iter().filter(|c| c.expires_at > now).collect())
    }
}

/// The webhook delivery ledger, by the hour (misses are counted by the booking commits).
#[async_trait]
pub trait DeliveryLedgerStore: Send + Sync {
    /// Counts one signed delivery received for the organization at `at`.
    async fn record_delivery(&self, org: &OrganizationId, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// The ledger's hours (each kept `ledger::LEDGER_KEPT`).
    async fn ledger_hours(&self, org: &OrganizationId) -> Result<Vec<LedgerHour>, StoreError>;
}

/// Routing form submissions: their joins with prospects, and their all-or-nothing writes.
#[async_trait]
pub trait SubmissionStore: Send + Sync {
    /// The join of a submission (by UUID), if its submission or booking wrote one.
    async fn get_submission_link(
        &self,
        org: &OrganizationId,
        submission_uuid: &str,
    ) -> Result<Option<crate::domain::routing::SubmissionLink>, StoreError>;
    /// Writes a submission's prospect change and join at once, under their guards, the
    /// suppression list and the integration being the active one.
    async fn commit_submission(&self, plan: &crate::domain::routing::SubmissionPlan) -> Result<(), CommitError>;
}
