//! Privacy answers: erasures, a person's export, a lifted suppression.

use super::*;

/// What an erasure removed from the organization (`POST /privacy/erasures`), and its entry in
/// the audit (`GET /privacy/erasures`). No personal data: the e-mail is only its keyed hash.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// The audit entry's id.
    pub id: String,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// Who asked (the JWT's `sub`).
    pub requested_by: String,
    /// The keyed hash (HMAC-SHA256 under the server's privacy key) of the normalized e-mail.
    pub person: String,
    /// Prospects deleted (with their e-mail claim).
    pub prospects: u64,
    /// Bookings deleted.
    pub bookings: u64,
    /// Notifications deleted.
    pub notifications: u64,
    /// Calendly-side deletion: `not_requested`, `requested` or `unavailable`.
    pub calendly: CalendlyErasure,
    /// Why Calendly couldn't (`unavailable` only): its plan, the scope, or its answer.
    pub calendly_reason: Option<String>,
}

impl From<&ErasureRecord> for ErasureView {
    fn from(e: &ErasureRecord) -> Self {
        Self {
            id: e.id.clone(),
            erased_at: e.erased_at,
            requested_by: e.requested_by.to_string(),
            person: e.person.clone(),
            prospects: e.counts.prospects,
            bookings: e.counts.bookings,
            notifications: e.counts.notifications,
            calendly: e.calendly.clone(),
            calendly_reason: e.calendly_reason.clone(),
        }
    }
}

/// Everything the organization holds about one person (`GET /privacy/export`): empty lists
/// when nothing.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PersonalDataView {
    /// The e-mail asked about, normalized.
    pub email: String,
    /// When this export was made.
    pub exported_at: DateTime<Utc>,
    /// The prospect with that e-mail, with its notes.
    pub prospects: Vec<ProspectView>,
    /// Their Calendly bookings, with answers and tracking.
    pub bookings: Vec<BookingView>,
    /// The notifications about them.
    pub notifications: Vec<NotificationView>,
}

impl PersonalDataView {
    /// The view of `data` about the person at `address`.
    pub fn new(address: &crate::domain::PersonAddress, data: &PersonalData) -> Self {
        Self {
            email: address.key().to_string(),
            exported_at: data.exported_at,
            prospects: data.prospects.iter().map(ProspectView::from).collect(),
            bookings: data.bookings.iter().map(BookingView::from).collect(),
            notifications: data.notifications.iter().map(NotificationView::from).collect(),
        }
    }
}

/// The answer to lifting a suppression (`DELETE /privacy/suppressions`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SuppressionLiftedView {
    /// Whether the person was suppressed (false: nothing to lift; the call is idempotent).
    pub lifted: bool,
}
