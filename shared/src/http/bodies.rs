//! The request bodies, one type each: what the document describes is what the handlers
//! deserialize (`json_body`), then convert into the use cases' own drafts and changes, checking
//! what a type alone can't say (trimmed, bounded, an e-mail, a source).

use super::ApiError;
use crate::app::{ErrorCode, ProspectDraft, SettingsChange};
use crate::domain::{CalendlyScope, Email};
use crate::store::ProspectPatch;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::Schema;

/// The longest text a client may set on a prospect field.
const MAX_FIELD_BYTES: usize = 10_000;

/// `Some(None)` for an explicit `null`, `None` for an absent field (with `#[serde(default)]`):
/// on an update, `null` clears and absence keeps.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The fields a client sets on a prospect. `null` or an empty string clears a field on update;
/// `id`, `created_at` and `updated_at` are the server's and ignored if sent back. Any other
/// field is refused (`unknown_field`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProspectInput {
    /// First name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub firstname: Option<Option<String>>,
    /// Last name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub lastname: Option<Option<String>>,
    /// An e-mail address (stored normalized; two prospects can't share one).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub email: Option<Option<String>>,
    /// Phone number.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub phone: Option<Option<String>>,
    /// Company.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub company: Option<Option<String>>,
    /// The e-mail of the salesperson who owns the prospect.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub owner_email: Option<Option<String>>,
    /// That salesperson's name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub owner_name: Option<Option<String>>,
    /// The organization's own fields: keys of letters, digits, `_` and `-` (at most 64 bytes),
    /// string values (at most 1,000 bytes), 100 keys at most. Replaces the whole set on update;
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub custom_fields: Option<Option<std::collections::BTreeMap<String, String>>>,
    /// Default `new`; can't be cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub status: Option<Option<String>>,
    /// Default `manual`; no `#` or control characters. Set at creation only (ignored on update).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub source: Option<Option<String>>,
    /// Replaces every note entry with this one text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub notes: Option<Option<String>>,
    /// The server's: ignored.
    #[schema(read_only, value_type = Option<String>)]
    pub id: Option<IgnoredAny>,
    /// The server's: ignored.
    #[schema(read_only, value_type = Option<String>)]
    pub created_at: Option<IgnoredAny>,
    /// The server's: ignored.
    #[schema(read_only, value_type = Option<String>)]
    pub updated_at: Option<IgnoredAny>,
}

/// A field as the prospect keeps it: trimmed, an empty string being a clear, within its bound.
fn text(field: &str, value: Option<Option<String>>) -> Result<Option<Option<String>>, ApiError> {
    value
        .map(|v| match v {
            Some(s) if s.len() > MAX_FIELD_BYTES => {
                Err(ApiError::bad_request(ErrorCode::InvalidField, format!("{field} is too long")))
            }
            Some(s) => Ok(Some(s.trim().to_string()).filter(|t| !t.is_empty())),
            None => Ok(None),
        })
        .transpose()
}

fn email(value: Option<Option<String>>) -> Result<Option<Option<Email>>, ApiError> {
    text("email", value)?
        .map(|v| {
            v.map(|e| Email::parse(&e).map_err(|err| ApiError::bad_request(ErrorCode::InvalidEmail, err.to_string())))
                .transpose()
        })
        .transpose()
}

/// Custom fields as a prospect keeps them: values trimmed, empty ones dropped, keys and sizes
/// checked.
fn custom_fields(
    value: Option<Option<std::collections::BTreeMap<String, String>>>,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ApiError> {
    let Some(fields) = value else { return Ok(None) };
    let fields: std::collections::BTreeMap<String, String> = fields
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.trim().to_string()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    crate::domain::field_map::check_custom_fields(&fields)
        .map_err(|m| ApiError::bad_request(ErrorCode::InvalidField, m))?;
    Ok(Some(fields))
}

fn source(value: Option<Option<String>>) -> Result<Option<String>, ApiError> {
    let source = text("source", value)?.flatten();
    if let Some(s) = &source {
        crate::domain::check_source(s).map_err(|m| ApiError::bad_request(ErrorCode::InvalidSource, m))?;
    }
    Ok(source)
}

impl TryFrom<ProspectInput> for ProspectDraft {
    type Error = ApiError;

    fn try_from(input: ProspectInput) -> Result<Self, ApiError> {
        Ok(Self {
            firstname: text("firstname", input.firstname)?.flatten(),
            lastname: text("lastname", input.lastname)?.flatten(),
            email: email(input.email)?.flatten(),
            phone: text("phone", input.phone)?.flatten(),
            company: text("company", input.company)?.flatten(),
            owner_email: text("owner_email", input.owner_email)?.flatten(),
            owner_name: text("owner_name", input.owner_name)?.flatten(),
            custom_fields: custom_fields(input.custom_fields)?.unwrap_or_default(),
            status: text("status", input.status)?.flatten(),
            source: source(input.source)?,
            notes: text("notes", input.notes)?.flatten(),
        })
    }
}

impl TryFrom<ProspectInput> for ProspectPatch {
    type Error = ApiError;

    fn try_from(input: ProspectInput) -> Result<Self, ApiError> {
        // `source` says where a prospect came from and does not change; a client may send it
        // back (it is then ignored), but only a value create would take.
        source(input.source)?;
        let status = match text("status", input.status)? {
            Some(None) => return Err(ApiError::bad_request(ErrorCode::InvalidField, "status cannot be empty")),
            other => other.flatten(),
        };
        Ok(Self {
            firstname: text("firstname", input.firstname)?,
            lastname: text("lastname", input.lastname)?,
            email: email(input.email)?,
            phone: text("phone", input.phone)?,
            company: text("company", input.company)?,
            owner_email: text("owner_email", input.owner_email)?,
            owner_name: text("owner_name", input.owner_name)?,
            custom_fields: custom_fields(input.custom_fields)?,
            status,
            notes: text("notes", input.notes)?.map(|notes| notes.into_iter().collect()),
        })
    }
}

/// Sync settings and the booking filter; every field is optional, unknown ones are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// Whether the schedule syncs every `sync_interval_minutes`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub auto_sync_enabled: Option<Option<bool>>,
    /// Minutes between scheduled syncs, 5 to 1440.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, nullable = false, minimum = 5, maximum = 1440)]
    pub sync_interval_minutes: Option<Option<u32>>,
    /// Event type URIs whose bookings become prospects; `null` takes them all. With
    /// `ignore_emails`, at most 48 KB as JSON (`invalid_field` past it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, max_items = 200)]
    pub event_types: Option<Option<Vec<String>>>,
    /// E-mail addresses or `@domain` entries to leave out. With `event_types`, at most 48 KB as
    /// JSON (`invalid_field` past it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, nullable = false, max_items = 200)]
    pub ignore_emails: Option<Option<Vec<String>>>,
    /// Whose bookings: `user`, or `organization` (owners and admins of the Calendly organization).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<CalendlyScope>, nullable = false)]
    pub scope: Option<Option<CalendlyScope>>,
    /// Days bookings (after their event's end) and notifications are kept, 30 to 3650; `null`
    /// keeps them. Prospects and their notes are CRM records and stay.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 30, maximum = 3650)]
    pub retention_days: Option<Option<u32>>,
    /// Which booking data fills which prospect field, applied in order once per booking; at
    /// most 50 entries, no target twice. `null` goes back to the default map (the SMS number,
    /// else an outbound call's number, to `phone`; in organization scope the host to
    /// `owner_email`/`owner_name`; all `fill_empty`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<crate::domain::field_map::FieldMappingText>>, max_items = 50)]
    pub field_map: Option<Option<Vec<crate::domain::field_map::FieldMappingText>>>,
    /// Whether the guests an invitee adds become (or enrich) prospects, each with one note
    /// (`Invité(e) au rendez-vous Calendly prévu le … - <event> (par <invitee>)`), the ignore
    /// list and the host rule applying. Off by default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, nullable = false)]
    pub guests_as_prospects: Option<Option<bool>>,
}

/// A field that may be absent but not `null`.
fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::bad_request(ErrorCode::InvalidField, format!("{field} can't be null"))),
        other => Ok(other.flatten()),
    }
}

fn trimmed(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_string()).collect()
}

impl TryFrom<SettingsInput> for SettingsChange {
    type Error = ApiError;

    fn try_from(input: SettingsInput) -> Result<Self, ApiError> {
        Ok(Self {
            scope: not_null("scope", input.scope)?,
            event_types: input.event_types.map(|types| types.map(trimmed)),
            ignore_emails: not_null("ignore_emails", input.ignore_emails)?.map(trimmed),
            auto_sync_enabled: not_null("auto_sync_enabled", input.auto_sync_enabled)?,
            sync_interval_minutes: not_null("sync_interval_minutes", input.sync_interval_minutes)?,
            retention_days: input.retention_days,
            guests_as_prospects: not_null("guests_as_prospects", input.guests_as_prospects)?,
            field_map: input
                .field_map
                .map(|m| {
                    m.map(|entries| crate::domain::FieldMap::parse(&entries))
                        .transpose()
                        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidFieldMap, e.to_string()))
                })
                .transpose()?,
        })
    }
}

/// Settings merged key by key into the organization's (`calendly` is read-only; `timezone` an
/// IANA name; 64 KB and 16 levels at most).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    /// The keys to merge.
    #[schema(schema_with = settings_schema)]
    pub settings: Map<String, Value>,
}

/// Any JSON object whose keys are not empty; `null` values remove keys.
fn settings_schema() -> Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
        .description(Some("Keys to merge; `null` removes a key. `calendly` is read-only."))
        .into()
}
