//! The CRM's domain: prospects, Calendly bookings, notifications, organizations, integrations.

pub mod booking;
pub mod email;
pub mod ids;
pub mod notes;

pub use booking::{Booking, BookingSnapshot, BookingStatus};
pub use email::{Email, InvalidEmail};
pub use ids::{IntegrationId, NotificationId, OrganizationId, ProspectId, UserId};
pub use notes::NoteStyle;

use crate::crypto::Sealed;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a prospect came from.
pub const SOURCE_CALENDLY: &str = "calendly";
/// The status of a prospect created from a booking.
pub const STATUS_NEW: &str = "new";

/// A CRM prospect. `notes` is a list of entries, appended to atomically and shown joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prospect {
    pub id: ProspectId,
    pub organization_id: OrganizationId,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub status: String,
    pub source: String,
    pub notes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Prospect {
    /// The API and push representation: `notes` as one string.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "firstname": self.firstname,
            "lastname": self.lastname,
            "email": self.email,
            "phone": self.phone,
            "status": self.status,
            "source": self.source,
            "notes": notes::render_notes(&self.notes),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A notification shown to every user of an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    pub organization_id: OrganizationId,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    pub meta: Value,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    /// The API representation.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "title": self.title,
            "message": self.message,
            "meta": self.meta,
            "read": self.read,
            "created_at": self.created_at,
        })
    }
}

/// An organization and its free-form settings (`settings.calendly` mirrors the integration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub settings: Map<String, Value>,
}

impl Organization {
    /// How this organization writes dates in notes (`settings.timezone`, default Europe/Paris).
    pub fn note_style(&self) -> NoteStyle {
        NoteStyle::for_timezone(self.settings.get("timezone").and_then(Value::as_str))
    }
}

/// Merges `patch` into `target` key by key; a `null` value removes the key.
pub fn merge_settings(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// Merges `patch` into `settings.calendly` only (created if missing), leaving every other
/// setting untouched.
pub fn merge_calendly_settings(settings: &mut Map<String, Value>, patch: &Map<String, Value>) {
    let calendly = settings.entry("calendly").or_insert_with(|| Value::Object(Map::new()));
    if !calendly.is_object() {
        *calendly = Value::Object(Map::new());
    }
    if let Value::Object(calendly) = calendly {
        merge_settings(calendly, patch);
    }
}

/// One Calendly connection of an organization (there is at most one per organization).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Integration {
    pub id: IntegrationId,
    pub organization_id: OrganizationId,
    pub connected_by: UserId,
    pub calendly_user_uri: String,
    pub calendly_organization_uri: String,
    pub email: String,
    pub name: String,
    pub scheduling_url: Option<String>,
    pub access_token: Sealed,
    pub refresh_token: Sealed,
    pub token_type: String,
    pub scope: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Bumped on every stored token pair: the compare-and-swap guard of refreshes.
    pub token_version: u64,
    /// A refresh in flight holds this lease; others wait for the new pair instead of refreshing.
    pub refresh_lease_until: Option<DateTime<Utc>>,
    pub webhook_subscription_uri: Option<String>,
    pub webhook_active: bool,
    pub webhook_signing_key: Option<Sealed>,
    pub auto_sync_enabled: bool,
    pub sync_interval_minutes: u32,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub next_sync_at: Option<DateTime<Utc>>,
    pub needs_reconnect: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The default interval between scheduled syncs.
pub const DEFAULT_SYNC_INTERVAL_MINUTES: u32 = 30;
/// The allowed range of `sync_interval_minutes`.
pub const SYNC_INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 5..=1440;

/// The pending half of an OAuth connect: single-use, short-lived, bound to who started it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OAuthState {
    pub state: String,
    pub organization_id: OrganizationId,
    pub user_id: UserId,
    pub pkce_verifier: Sealed,
    pub expires_at: DateTime<Utc>,
}
