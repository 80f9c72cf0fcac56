//! Store ports, one narrow trait per capability, and the embedded (in-memory) adapter.
//! Every write that must happen once says how: a revision guard, a claim, or a lease.
//!
//! One file on purpose: the ports side by side show which guard each write carries.

pub mod dynamodb;
pub mod memory;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

mod ports;
pub use ports::*;

use crate::domain::Email;
use crate::domain::Prospect;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The item does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A conditional write lost: the item changed or was claimed meanwhile (what was expected).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A page cursor that this store did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Throttled past the client's retries: retry later.
    #[error("the store is throttling requests")]
    Throttled,
    /// Unreachable or failing (network, 5xx): retry later. The client's error is the cause
    /// (and its chain is in the message: every log line that prints this error names why).
    #[error("the store is unavailable: {}", crate::errors::chain(.0.as_ref()))]
    Unavailable(#[source] crate::errors::BoxError),
    /// The request itself was refused (DynamoDB's `ValidationException`): retrying won't help.
    #[error("the store refused the request: {0}")]
    Rejected(String),
    /// The deployment is wrong (access denied, missing table): retrying won't help.
    #[error("the store is misconfigured: {0}")]
    Misconfigured(String),
    /// A stored item doesn't parse as its type (which item, and why).
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// An item doesn't convert to or from its type (serde's error is the cause).
    #[error("stored item does not convert to or from its type: {0}")]
    Unconvertible(#[source] serde_json::Error),
    /// A request could not be built (the SDK's error is the cause).
    #[error("the store request could not be built: {0}")]
    RequestBuild(#[source] crate::errors::BoxError),
}

/// Why an all-or-nothing booking write did not happen: someone else wrote first.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitConflict {
    /// The booking's revision moved, or it was created meanwhile.
    #[error("the booking changed since it was read")]
    BookingChanged,
    /// Another prospect took the e-mail first.
    #[error("the email was claimed by another prospect")]
    EmailClaimed,
    /// The invitee was erased from this organization: nothing about them is recorded again.
    #[error("the invitee is on the organization's suppression list")]
    Suppressed,
    /// The prospect was deleted meanwhile, or its notes are full or changed since read (the
    /// writer re-reads it to tell which).
    #[error("the prospect to append to is gone, full or changed")]
    ProspectMissing,
    /// The booking's integration is no longer the organization's active one (disconnected, or
    /// replaced by a reconnect): nothing lands after a disconnect, whatever was in flight.
    #[error("the integration is no longer active")]
    IntegrationInactive,
    /// A guest's prospect changed since read (e-mail claimed, prospect gone or full).
    #[error("a guest's prospect changed since it was read")]
    GuestChanged,
    /// A guest was erased from this organization (their e-mail key): they stay erased, the
    /// booking is written without them.
    #[error("a guest is on the organization's suppression list")]
    GuestSuppressed(String),
    /// The join of a routing form submission was written or changed since read.
    #[error("the routing form submission's join changed since it was read")]
    SubmissionChanged,
}

/// A booking commit's failure.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Someone else wrote first: re-read and plan again.
    #[error(transparent)]
    Conflict(#[from] CommitConflict),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of items and the opaque cursor of the next one.
#[derive(Clone, Debug)]
pub struct PageOf<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The next page's cursor; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Changes to a prospect; `Some(None)` clears a field.
#[derive(Clone, Debug, Default)]
pub struct ProspectPatch {
    /// New first name.
    pub firstname: Option<Option<String>>,
    /// New last name.
    pub lastname: Option<Option<String>>,
    /// New e-mail (its uniqueness claim moves with it).
    pub email: Option<Option<Email>>,
    /// New phone.
    pub phone: Option<Option<String>>,
    /// New company.
    pub company: Option<Option<String>>,
    /// New owner's e-mail.
    pub owner_email: Option<Option<String>>,
    /// New owner's name.
    pub owner_name: Option<Option<String>>,
    /// The whole set of custom fields, replacing the old one.
    pub custom_fields: Option<std::collections::BTreeMap<String, String>>,
    /// New pipeline status.
    pub status: Option<String>,
    /// The whole list of note entries, replacing the old one.
    pub notes: Option<Vec<String>>,
}

impl ProspectPatch {
    /// Applies every field but `email` (whose uniqueness claim each store moves itself).
    pub fn apply_fields(&self, prospect: &mut Prospect) {
        if let Some(v) = &self.firstname {
            prospect.firstname = v.clone();
        }
        if let Some(v) = &self.lastname {
            prospect.lastname = v.clone();
        }
        if let Some(v) = &self.phone {
            prospect.phone = v.clone();
        }
        if let Some(v) = &self.company {
            prospect.company = v.clone();
        }
        if let Some(v) = &self.owner_email {
            prospect.owner_email = v.clone();
        }
        if let Some(v) = &self.owner_name {
            prospect.owner_name = v.clone();
        }
        if let Some(v) = &self.custom_fields {
            prospect.custom_fields = v.clone();
        }
        if let Some(v) = &self.status {
            prospect.status = v.clone();
        }
        if let Some(v) = &self.notes {
            prospect.notes = v.clone();
        }
    }
}

/// A family of store requests, by which each function's DynamoDB grant is derived
/// (`wiring::Builds::store_ports`, `dynamodb::actions_of`): a port, or the part of one that a
/// function uses alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorePort {
    /// `OrganizationStore`.
    Organizations,
    /// `OAuthStateStore`.
    OAuthStates,
    /// `IntegrationStore`.
    Integrations,
    /// `IntegrationStore`'s schedule alone: the due index and the hand-outs.
    Schedule,
    /// `BookingStore` (a booking's commit included).
    Bookings,
    /// `BookingContextStore`.
    BookingContext,
    /// `ProspectStore`.
    Prospects,
    /// `NotificationStore`.
    Notifications,
    /// `ConnectionStore`'s records: put and list.
    ConnectionRecords,
    /// `ConnectionStore`'s removal.
    ConnectionRemoval,
    /// `SyncJobStore`.
    SyncJobs,
    /// `RateLimitStore`.
    RateLimits,
    /// `QuotaStore`.
    Quotas,
    /// `PrivacyStore`.
    Privacy,
    /// `PrivacyStore`'s deletion of Calendly data alone (retention's sweep, a purge).
    CalendlyDataDeletion,
    /// `PersonHashKeyStore`.
    PersonHashKey,
    /// `DeliveryLedgerStore`.
    DeliveryLedger,
    /// `SubmissionStore`.
    Submissions,
}

impl StorePort {
    /// Every port.
    pub const ALL: [StorePort; 18] = [
        Self::Organizations,
        Self::OAuthStates,
        Self::Integrations,
        Self::Schedule,
        Self::Bookings,
        Self::BookingContext,
        Self::Prospects,
        Self::Notifications,
        Self::ConnectionRecords,
        Self::ConnectionRemoval,
        Self::SyncJobs,
        Self::RateLimits,
        Self::Quotas,
        Self::Privacy,
        Self::CalendlyDataDeletion,
        Self::PersonHashKey,
        Self::DeliveryLedger,
        Self::Submissions,
    ];
}

/// Every store capability, for wiring that needs them all.
pub trait Store:
    OrganizationStore
    + OAuthStateStore
    + IntegrationStore
    + BookingStore
    + BookingContextStore
    + ProspectStore
    + NotificationStore
    + ConnectionStore
    + SyncJobStore
    + RateLimitStore
    + QuotaStore
    + PrivacyStore
    + PersonHashKeyStore
    + DeliveryLedgerStore
    + SubmissionStore
{
}
impl<T> Store for T where
    T: OrganizationStore
        + OAuthStateStore
        + IntegrationStore
        + BookingStore
        + BookingContextStore
        + ProspectStore
        + NotificationStore
        + ConnectionStore
        + SyncJobStore
        + RateLimitStore
        + QuotaStore
        + PrivacyStore
        + PersonHashKeyStore
        + DeliveryLedgerStore
        + SubmissionStore
{
}

/// Opaque cursors: callers can't read or forge positions into other partitions.
pub(crate) mod cursor {
    use super::StoreError;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub fn encode(position: &str) -> String {
        URL_SAFE_NO_PAD.encode(position)
    }

    pub fn decode(cursor: Option<&str>) -> Result<Option<String>, StoreError> {
        cursor
            .map(|c| {
                URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(StoreError::InvalidCursor)
            })
            .transpose()
    }
}
