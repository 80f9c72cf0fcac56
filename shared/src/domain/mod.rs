//! The CRM's domain: prospects, Calendly bookings, notifications, organizations, integrations.
//!
//! Over 400 lines because of its tests (settings bounds); the types themselves are short.

pub mod booking;
pub mod bounds;
pub mod email;
pub mod field_map;
pub mod ids;
pub mod integration;
pub mod ledger;
pub mod notes;
pub mod notification;
pub mod privacy;
pub mod quota;
pub mod routing;
pub mod schedule;
pub mod sealed;
pub mod snapshot;
pub mod submission_link;
pub mod sync_job;

pub use booking::Booking;
pub use email::{Email, InvalidEmail, PersonAddress};
pub use field_map::{CrmRules, FieldMap};
pub use ids::{IntegrationId, NotificationId, OrganizationId, ProspectId, UserId};
pub use integration::{
    BookingFilter, ConnectedAccount, DEFAULT_SYNC_INTERVAL_MINUTES, Integration, SYNC_INTERVAL_RANGE, TokenUpdate,
    WEBHOOK_CHECK_INTERVAL_MINUTES,
};
pub use notes::NoteStyle;
pub use notification::{Notification, NotificationKind};
pub use privacy::{CalendlyErasure, ErasureCounts, ErasureRecord, PersonIndex, PersonKeys};
pub use sealed::Sealed;
pub use snapshot::{BookingSnapshot, BookingStatus, Host, QuestionAnswer, Tracking};
pub use sync_job::{
    CommittedCounts, HandedOutJob, SyncCheckpoint, SyncJob, SyncJobMessage, SyncJobState, SyncReport, SyncTrigger,
    SyncWindow, Unrecorded, current_job,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a prospect came from.
pub const SOURCE_CALENDLY: &str = "calendly";
/// The status of a prospect created from a booking.
pub const STATUS_NEW: &str = "new";

/// Whose bookings an integration brings: the connecting user's (`user`), or every member's of
/// their Calendly organization (`organization`: Calendly allows it to owners and admins).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalendlyScope {
    /// The connecting user's own bookings.
    #[default]
    User,
    /// Every member's bookings of the user's Calendly organization.
    Organization,
}

/// A CRM prospect. `notes` is a list of entries, appended to atomically and shown joined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prospect {
    /// Its id.
    pub id: ProspectId,
    /// The organization it belongs to (the partition of every lookup).
    pub organization_id: OrganizationId,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// Its e-mail, normalized: what bookings are matched on (one prospect per e-mail).
    pub email: Option<Email>,
    /// Free-form phone number.
    pub phone: Option<String>,
    /// The company (from a booking: through the field map).
    #[serde(default)]
    pub company: Option<String>,
    /// The e-mail of the salesperson who owns the prospect (from a booking in organization
    /// scope: the event's host, the round-robin assignee).
    #[serde(default)]
    pub owner_email: Option<String>,
    /// That salesperson's name.
    #[serde(default)]
    pub owner_name: Option<String>,
    /// The organization's own fields (`custom.<key>` targets of the field map).
    #[serde(default)]
    pub custom_fields: std::collections::BTreeMap<String, String>,
    /// The CRM pipeline status (`STATUS_NEW` from a booking).
    pub status: String,
    /// Where it came from (`SOURCE_CALENDLY`, `manual`, or a client's label).
    pub source: String,
    /// Note entries, oldest first.
    pub notes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Prospect {
    /// A new lead from Calendly (`source: calendly`, status `new`) with its first notes; its
    /// other fields come from the field map.
    pub fn from_calendly(
        organization_id: &OrganizationId,
        email: Email,
        names: (Option<String>, Option<String>),
        notes: Vec<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: ProspectId::generate(),
            organization_id: organization_id.clone(),
            firstname: names.0,
            lastname: names.1,
            email: Some(email),
            phone: None,
            company: None,
            owner_email: None,
            owner_name: None,
            custom_fields: Default::default(),
            status: STATUS_NEW.to_string(),
            source: SOURCE_CALENDLY.to_string(),
            notes,
            created_at: now,
            updated_at: now,
        }
    }
}

/// An organization and its free-form settings (`settings.calendly` mirrors the integration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// Its id (named by the callers' tokens).
    pub id: OrganizationId,
    /// Free-form settings; `calendly` is written by the server only.
    pub settings: Map<String, Value>,
}

impl Organization {
    /// How this organization writes dates in notes (`settings.timezone`, default Europe/Paris).
    pub fn note_style(&self) -> NoteStyle {
        let details = self.settings.get("calendly_note_details").and_then(Value::as_bool).unwrap_or(true);
        NoteStyle::for_timezone(self.settings.get("timezone").and_then(Value::as_str)).with_details(details)
    }
}

/// The largest an organization's settings may be, serialized (a DynamoDB item holds 400 KB).
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// How deep settings may nest (DynamoDB's limit is 32 levels, the item's own map included).
const MAX_SETTINGS_DEPTH: usize = 16;

/// Why a settings change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// The patch touches `settings.calendly`.
    #[error("settings.calendly is kept by the server (the Calendly connection's mirror)")]
    ReadOnly,
    /// The merged settings exceed `MAX_SETTINGS_BYTES`.
    #[error("settings may be at most {MAX_SETTINGS_BYTES} bytes once merged")]
    TooLarge,
    /// A key is the empty string (DynamoDB refuses empty map keys).
    #[error("settings keys may not be empty")]
    EmptyKey,
    /// Nested deeper than DynamoDB stores.
    #[error("settings nest at most {MAX_SETTINGS_DEPTH} levels")]
    TooDeep,
    /// A number DynamoDB can't store exactly (the number, as written).
    #[error("the number {0} can't be stored (at most 38 digits, magnitude between 1e-130 and 1e126)")]
    Number(String),
}

/// Checks a client's settings patch against what the table can store and what the server
/// owns, and the merged result against the size limit; nothing is written when it fails.
pub fn check_settings_patch(current: &Map<String, Value>, patch: &Map<String, Value>) -> Result<(), SettingsError> {
    if patch.contains_key("calendly") {
        return Err(SettingsError::ReadOnly);
    }
    fn check(value: &Value, depth: usize) -> Result<(), SettingsError> {
        if depth > MAX_SETTINGS_DEPTH {
            return Err(SettingsError::TooDeep);
        }
        match value {
            Value::Object(map) => {
                if map.keys().any(|k| k.is_empty()) {
                    return Err(SettingsError::EmptyKey);
                }
                map.values().try_for_each(|v| check(v, depth + 1))
            }
            Value::Array(items) => items.iter().try_for_each(|v| check(v, depth + 1)),
            Value::Number(n) => {
                let storable = n.as_f64().is_some_and(|f| f == 0.0 || (1e-130..1e126).contains(&f.abs()));
                let digits = n.to_string().chars().filter(char::is_ascii_digit).count();
                if storable && digits <= 38 { Ok(()) } else { Err(SettingsError::Number(n.to_string())) }
            }
            _ => Ok(()),
        }
    }
    check(&Value::Object(patch.clone()), 1)?;
    let mut merged = current.clone();
    merge_settings(&mut merged, patch);
    if serde_json::to_vec(&merged).map_or(usize::MAX, |b| b.len()) > MAX_SETTINGS_BYTES {
        return Err(SettingsError::TooLarge);
    }
    Ok(())
}

/// A prospect's `source` as given by a client: a short label, no control characters and no
/// `#` (the separator of the table's index keys).
pub fn check_source(source: &str) -> Result<(), &'static str> {
    if source.is_empty() || source.len() > 64 {
        return Err("source has 1 to 64 characters");
    }
    if source.chars().any(|c| c == '#' || c.is_control()) {
        return Err("source may not contain '#' or control characters");
    }
    Ok(())
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

/// The pending half of an OAuth connect: single-use, short-lived, bound to who started it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OAuthState {
    /// The random `state` of the authorize URL (the item's key).
    pub state: String,
    /// The organization that started the connect.
    pub organization_id: OrganizationId,
    /// The user who started it (only they may complete it).
    pub user_id: UserId,
    /// The PKCE code verifier, sealed.
    pub pkce_verifier: Sealed,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The scope the user asked for (organization scope is granted by role at completion).
    #[serde(default)]
    pub scope: CalendlyScope,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn settings_patches_are_checked_against_what_the_table_stores() {
        let current = map(json!({ "timezone": "Europe/Paris" }));
        assert_eq!(check_settings_patch(&current, &map(json!({ "locale": "fr", "n": 3, "f": 1.5, "z": 0 }))), Ok(()));
        assert_eq!(
            check_settings_patch(&current, &map(json!({ "calendly": { "enabled": true } }))),
            Err(SettingsError::ReadOnly)
        );
        assert_eq!(check_settings_patch(&current, &map(json!({ "": 1 }))), Err(SettingsError::EmptyKey));
        assert_eq!(check_settings_patch(&current, &map(json!({ "a": { "": 1 } }))), Err(SettingsError::EmptyKey));
        assert!(matches!(check_settings_patch(&current, &map(json!({ "big": 1e200 }))), Err(SettingsError::Number(_))));
        assert!(matches!(
            check_settings_patch(&current, &map(json!({ "tiny": 1e-200 }))),
            Err(SettingsError::Number(_))
        ));
        let huge = "x".repeat(MAX_SETTINGS_BYTES);
        assert_eq!(check_settings_patch(&current, &map(json!({ "blob": huge }))), Err(SettingsError::TooLarge));
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        assert_eq!(check_settings_patch(&current, &map(json!({ "deep": deep }))), Err(SettingsError::TooDeep));
    }

    #[test]
    fn the_filter_leaves_out_the_host_ignored_addresses_and_domains_and_other_event_types() {
        let filter = BookingFilter {
            event_types: Some(vec!["https://api.calendly.com/event_types/A".into()]),
            ignore_emails: vec!["spam@example.com".into(), "@concurrent.fr".into()],
        };
        let a = Some("https://api.calendly.com/event_types/A");
        assert!(filter.admits("host@velvena.fr", a, "lead@example.com"));
        assert!(!filter.admits("host@velvena.fr", a, "Host@Velvena.fr"), "the host's own bookings");
        assert!(!filter.admits("host@velvena.fr", a, "SPAM@example.com"));
        assert!(!filter.admits("host@velvena.fr", a, "boss@concurrent.fr"));
        assert!(filter.admits("host@velvena.fr", a, "boss@notconcurrent.fr"), "a domain, not a suffix");
        assert!(!filter.admits("host@velvena.fr", Some("https://api.calendly.com/event_types/B"), "lead@example.com"));
        assert!(BookingFilter::default().admits("host@velvena.fr", None, "lead@example.com"));
    }

    #[test]
    fn a_source_is_a_short_label_without_the_key_separator() {
        assert!(check_source("salon-2026").is_ok());
        for bad in ["", "calendly#x", "a\u{0}b", &"s".repeat(65)] {
            assert!(check_source(bad).is_err(), "{bad:?}");
        }
    }
}
