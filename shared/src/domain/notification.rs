//! Notifications: what the organization's users are told, in French, and what each one points to.

use super::{Integration, NotificationId, OrganizationId, ids};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a notification is about: exactly the kinds this integration emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A booking by someone the CRM did not know: a prospect was created.
    CalendlyProspectCreated,
    /// A known prospect booked again.
    CalendlyAppointmentBooked,
    /// A known prospect moved a booking.
    CalendlyAppointmentRescheduled,
    /// A booking was canceled.
    CalendlyAppointmentCanceled,
    /// The host marked the invitee absent.
    CalendlyNoShow,
    /// Calendly refused the stored tokens for good: someone must connect again.
    CalendlyReconnectNeeded,
    /// The connecting user lost the Calendly organization's owner/admin role: back to user scope.
    CalendlyScopeReduced,
    /// Bookings reached the CRM by the periodic sync only: the webhook missed them (daily).
    CalendlyWebhookGaps,
}

/// A notification shown to every user of an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// The organization whose users see it.
    pub organization_id: OrganizationId,
    /// What it is about.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// A one-line title.
    pub title: String,
    /// The text under the title.
    pub message: String,
    /// What it points to (prospect id, booking, sync job…).
    pub meta: Value,
    /// Whether a user marked it read.
    pub read: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the organization's retention removes it (`None`: kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// A new, unread notification created `now` (its id orders it by time).
    pub fn new(
        organization_id: OrganizationId,
        kind: NotificationKind,
        title: &str,
        message: String,
        meta: Value,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: NotificationId::new(ids::time_ordered_id(now)),
            organization_id,
            kind,
            title: title.into(),
            message,
            meta,
            read: false,
            created_at: now,
            expires_at: None,
        }
    }
}

impl Notification {
    /// Calendly refused the stored tokens for good (`calendly_reconnect_needed`).
    pub fn reconnect_needed(integration: &Integration, now: DateTime<Utc>) -> Self {
        Self::new(
            integration.organization_id.clone(),
            NotificationKind::CalendlyReconnectNeeded,
            "Reconnexion Calendly nécessaire",
            format!(
                "Calendly n'accepte plus l'accès au compte {} : reconnectez Calendly dans les paramètres.",
                integration.email
            ),
            serde_json::json!({ "integration_id": integration.id, "calendly_user_uri": integration.calendly_user_uri }),
            now,
        )
    }

    /// The connecting user lost the Calendly organization's owner/admin role: only their own
    /// bookings are read from now on (`calendly_scope_reduced`).
    pub fn scope_reduced(integration: &Integration, now: DateTime<Utc>) -> Self {
        Self::new(
            integration.organization_id.clone(),
            NotificationKind::CalendlyScopeReduced,
            "Calendly : seuls vos rendez-vous sont synchronisés",
            format!(
                "{} n'est plus propriétaire ni administrateur de l'organisation Calendly : seuls ses propres rendez-vous sont désormais synchronisés.",
                integration.email
            ),
            serde_json::json!({ "integration_id": integration.id, "calendly_organization_uri": integration.calendly_organization_uri }),
            now,
        )
    }
}
