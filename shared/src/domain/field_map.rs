//! Which of a booking's data lands in which prospect field (`PATCH /calendly/settings
//! {"field_map"}`): a salesperson works from fields, not from note text.
//!
//! A map is applied once per booking, with the booking's first write: `fill_empty` only fills
//! a field that is empty when written (a salesperson's edit is never overwritten), `overwrite`
//! sets it whenever the booking has a value.

use super::snapshot::BookingSnapshot;
use super::{CalendlyScope, Prospect};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Entries a map may have.
pub const MAX_FIELD_MAP_ENTRIES: usize = 50;
/// The longest key of a `custom.<key>` target.
pub const MAX_CUSTOM_KEY_BYTES: usize = 64;
/// The longest value a mapped field keeps (an answer is at most `bounds::ANSWER_BYTES`).
pub const MAX_FIELD_VALUE_BYTES: usize = 1_000;
/// Custom fields a prospect may carry.
pub const MAX_CUSTOM_FIELDS: usize = 100;

/// Where a mapped value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldSource {
    /// The answer to the booking question with this text (trimmed, compared case-insensitively).
    Question(String),
    /// The number given for SMS reminders.
    TextReminderNumber,
    /// The invitee's number of an "outbound call" location (the host calls the invitee).
    LocationPhone,
    /// A UTM parameter of the booking link (`utm_source`…).
    Utm(&'static str),
    /// The event host's e-mail (in organization scope, the round-robin assignee).
    HostEmail,
    /// The event host's name.
    HostName,
    /// The event's name.
    EventName,
}

const UTM_FIELDS: [&str; 5] = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];

impl FieldSource {
    /// Parses a source as the settings write it; `None` when it is none of them.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(question) = text.strip_prefix("question:") {
            let question = question.trim();
            return (!question.is_empty()).then(|| Self::Question(question.to_string()));
        }
        Some(match text {
            "text_reminder_number" => Self::TextReminderNumber,
            "location_phone" => Self::LocationPhone,
            "host_email" => Self::HostEmail,
            "host_name" => Self::HostName,
            "event_name" => Self::EventName,
            other => Self::Utm(UTM_FIELDS.into_iter().find(|u| *u == other)?),
        })
    }

    /// The source as the settings write it.
    pub fn name(&self) -> String {
        match self {
            Self::Question(q) => format!("question:{q}"),
            Self::TextReminderNumber => "text_reminder_number".into(),
            Self::LocationPhone => "location_phone".into(),
            Self::Utm(u) => (*u).into(),
            Self::HostEmail => "host_email".into(),
            Self::HostName => "host_name".into(),
            Self::EventName => "event_name".into(),
        }
    }

    /// The booking's value for this source, trimmed; `None` when empty or absent.
    pub fn value_in(&self, booking: &BookingSnapshot) -> Option<String> {
        let host = booking.host.as_ref();
        let tracking = &booking.tracking;
        let value = match self {
            Self::Question(q) => booking
                .questions
                .iter()
                .find(|qa| qa.question.trim().to_lowercase() == q.to_lowercase())
                .map(|qa| qa.answer.clone()),
            Self::TextReminderNumber => booking.invitee_phone.clone(),
            Self::LocationPhone => booking.call_phone.clone(),
            Self::Utm(u) => match *u {
                "utm_source" => tracking.utm_source.clone(),
                "utm_medium" => tracking.utm_medium.clone(),
                "utm_campaign" => tracking.utm_campaign.clone(),
                "utm_content" => tracking.utm_content.clone(),
                _ => tracking.utm_term.clone(),
            },
            Self::HostEmail => host.and_then(|h| h.email.clone()),
            Self::HostName => host.and_then(|h| h.name.clone()),
            Self::EventName => booking.event_name.clone(),
        };
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| super::bounds::clip(&v, MAX_FIELD_VALUE_BYTES))
    }
}

/// The prospect field a value goes to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldTarget {
    /// `phone`.
    Phone,
    /// `company`.
    Company,
    /// `firstname`.
    Firstname,
    /// `lastname`.
    Lastname,
    /// `owner_email`: the salesperson who owns the prospect.
    OwnerEmail,
    /// `owner_name`.
    OwnerName,
    /// `custom_fields.<key>`.
    Custom(String),
}

impl FieldTarget {
    /// Parses a target as the settings write it; `None` when it is none of them.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(key) = text.strip_prefix("custom.") {
            let valid = !key.is_empty()
                && key.len() <= MAX_CUSTOM_KEY_BYTES
                && key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'));
            return valid.then(|| Self::Custom(key.to_string()));
        }
        Some(match text {
            "phone" => Self::Phone,
            "company" => Self::Company,
            "firstname" => Self::Firstname,
            "lastname" => Self::Lastname,
            "owner_email" => Self::OwnerEmail,
            "owner_name" => Self::OwnerName,
            _ => return None,
        })
    }

    /// The target as the settings write it.
    pub fn name(&self) -> String {
        match self {
            Self::Phone => "phone".into(),
            Self::Company => "company".into(),
            Self::Firstname => "firstname".into(),
            Self::Lastname => "lastname".into(),
            Self::OwnerEmail => "owner_email".into(),
            Self::OwnerName => "owner_name".into(),
            Self::Custom(key) => format!("custom.{key}"),
        }
    }

    fn slot<'a>(&self, prospect: &'a mut Prospect) -> Option<&'a mut Option<String>> {
        Some(match self {
            Self::Phone => &mut prospect.phone,
            Self::Company => &mut prospect.company,
            Self::Firstname => &mut prospect.firstname,
            Self::Lastname => &mut prospect.lastname,
            Self::OwnerEmail => &mut prospect.owner_email,
            Self::OwnerName => &mut prospect.owner_name,
            Self::Custom(_) => return None,
        })
    }
}

/// Whether a mapped value may replace what the prospect already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldMode {
    /// Only into an empty field: what a salesperson typed stays.
    #[default]
    FillEmpty,
    /// Whenever the booking has a value.
    Overwrite,
}

/// One entry of a field map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMapping {
    /// Where the value comes from.
    pub source: FieldSource,
    /// Where it goes.
    pub target: FieldTarget,
    /// Whether it replaces a value.
    pub mode: FieldMode,
}

/// An entry as JSON (`{"source", "target", "mode"}`): how settings store and show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldMappingText {
    /// `question:<question text>`, `text_reminder_number`, `location_phone`, `utm_source`,
    /// `utm_medium`, `utm_campaign`, `utm_content`, `utm_term`, `host_email`, `host_name` or
    /// `event_name`.
    #[schema(max_length = 400)]
    pub source: String,
    /// `phone`, `company`, `firstname`, `lastname`, `owner_email`, `owner_name` or
    /// `custom.<key>` (key: letters, digits, `_`, `-`, at most 64 bytes).
    #[schema(max_length = 100)]
    pub target: String,
    /// `fill_empty` (default) or `overwrite`.
    #[serde(default)]
    pub mode: FieldMode,
}

impl From<&FieldMapping> for FieldMappingText {
    fn from(m: &FieldMapping) -> Self {
        Self { source: m.source.name(), target: m.target.name(), mode: m.mode }
    }
}

/// Why a field map was refused (the entry named).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldMapError {
    /// More than `MAX_FIELD_MAP_ENTRIES`.
    #[error("field_map has at most {MAX_FIELD_MAP_ENTRIES} entries, got {0}")]
    TooMany(usize),
    /// Not a known source.
    #[error("field_map: unknown source '{0}'")]
    UnknownSource(String),
    /// Not a known target.
    #[error(
        "field_map: unknown target '{0}' (phone, company, firstname, lastname, owner_email, owner_name or custom.<key>)"
    )]
    UnknownTarget(String),
    /// The same target twice.
    #[error("field_map: target '{0}' is mapped twice")]
    DuplicateTarget(String),
}

/// An ordered list of mappings; applied in order (the default phone entry falls back from the
/// SMS number to the call location's number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMap(pub Vec<FieldMapping>);

impl FieldMap {
    /// A map as a client writes it: at most 50 entries, each source and target known, no
    /// target twice.
    pub fn parse(entries: &[FieldMappingText]) -> Result<Self, FieldMapError> {
        if entries.len() > MAX_FIELD_MAP_ENTRIES {
            return Err(FieldMapError::TooMany(entries.len()));
        }
        let mut mappings: Vec<FieldMapping> = Vec::with_capacity(entries.len());
        for entry in entries {
            let source = FieldSource::parse(entry.source.trim())
                .filter(|_| entry.source.len() <= 400)
                .ok_or_else(|| FieldMapError::UnknownSource(entry.source.clone()))?;
            let target = FieldTarget::parse(entry.target.trim())
                .ok_or_else(|| FieldMapError::UnknownTarget(entry.target.clone()))?;
            if mappings.iter().any(|m| m.target == target) {
                return Err(FieldMapError::DuplicateTarget(target.name()));
            }
            mappings.push(FieldMapping { source, target, mode: entry.mode });
        }
        Ok(Self(mappings))
    }

    /// The map in force when none is set: the phone from the SMS number, else from an outbound
    /// call's location; in organization scope the host as the prospect's owner. All
    /// `fill_empty`.
    pub fn default_for(coverage: CalendlyScope) -> Self {
        let fill = |source, target| FieldMapping { source, target, mode: FieldMode::FillEmpty };
        let mut map = vec![
            fill(FieldSource::TextReminderNumber, FieldTarget::Phone),
            fill(FieldSource::LocationPhone, FieldTarget::Phone),
        ];
        if coverage == CalendlyScope::Organization {
            map.push(fill(FieldSource::HostEmail, FieldTarget::OwnerEmail));
            map.push(fill(FieldSource::HostName, FieldTarget::OwnerName));
        }
        Self(map)
    }

    /// The entries as JSON.
    pub fn texts(&self) -> Vec<FieldMappingText> {
        self.0.iter().map(FieldMappingText::from).collect()
    }

    /// Sets on `prospect` what this booking brings; whether anything changed.
    pub fn apply(&self, booking: &BookingSnapshot, prospect: &mut Prospect) -> bool {
        let mut changed = false;
        for mapping in &self.0 {
            let Some(value) = mapping.source.value_in(booking) else { continue };
            let slot = match &mapping.target {
                FieldTarget::Custom(key) => {
                    if !prospect.custom_fields.contains_key(key) && prospect.custom_fields.len() >= MAX_CUSTOM_FIELDS {
                        continue;
                    }
                    prospect.custom_fields.entry(key.clone()).or_default()
                }
                other => match other.slot(prospect) {
                    Some(slot) => slot.get_or_insert_with(String::new),
                    None => continue,
                },
            };
            let fills = slot.is_empty() || mapping.mode == FieldMode::Overwrite;
            if fills && *slot != value {
                *slot = value;
                changed = true;
            }
        }
        // A slot opened above and left empty is no value.
        for slot in [
            &mut prospect.phone,
            &mut prospect.company,
            &mut prospect.firstname,
            &mut prospect.lastname,
            &mut prospect.owner_email,
            &mut prospect.owner_name,
        ] {
            if slot.as_deref() == Some("") {
                *slot = None;
            }
        }
        prospect.custom_fields.retain(|_, v| !v.is_empty());
        changed
    }
}

impl Serialize for FieldMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.texts().serialize(s)
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let texts = Vec::<FieldMappingText>::deserialize(d)?;
        Self::parse(&texts).map_err(serde::de::Error::custom)
    }
}

/// The prospect fields a field map writes, as a whole: what a booking's write sets on a
/// prospect it enriches (guarded by the prospect being as read). Serialized as the prospect's
/// own attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProspectFields {
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Owner's e-mail.
    pub owner_email: Option<String>,
    /// Owner's name.
    pub owner_name: Option<String>,
    /// Custom fields.
    pub custom_fields: BTreeMap<String, String>,
}

impl ProspectFields {
    /// The fields of `prospect`.
    pub fn of(prospect: &Prospect) -> Self {
        Self {
            firstname: prospect.firstname.clone(),
            lastname: prospect.lastname.clone(),
            phone: prospect.phone.clone(),
            company: prospect.company.clone(),
            owner_email: prospect.owner_email.clone(),
            owner_name: prospect.owner_name.clone(),
            custom_fields: prospect.custom_fields.clone(),
        }
    }

    /// Sets them on `prospect`.
    pub fn apply_to(&self, prospect: &mut Prospect) {
        prospect.firstname = self.firstname.clone();
        prospect.lastname = self.lastname.clone();
        prospect.phone = self.phone.clone();
        prospect.company = self.company.clone();
        prospect.owner_email = self.owner_email.clone();
        prospect.owner_name = self.owner_name.clone();
        prospect.custom_fields = self.custom_fields.clone();
    }
}

/// What a booking does to the CRM beyond its note: the field map (`None`: the default one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmRules {
    /// The map set by the organization; `None` applies `FieldMap::default_for` its scope.
    #[serde(default)]
    pub field_map: Option<FieldMap>,
    /// Whether the guests an invitee adds become (or enrich) prospects too.
    #[serde(default)]
    pub guests_as_prospects: bool,
}

impl CrmRules {
    /// The map in force for an integration of this scope.
    pub fn field_map_for(&self, coverage: CalendlyScope) -> FieldMap {
        self.field_map.clone().unwrap_or_else(|| FieldMap::default_for(coverage))
    }
}

/// Custom fields a client sets on a prospect: keys as `custom.<key>` accepts them, values
/// within `MAX_FIELD_VALUE_BYTES`, at most `MAX_CUSTOM_FIELDS`.
pub fn check_custom_fields(fields: &BTreeMap<String, String>) -> Result<(), String> {
    if fields.len() > MAX_CUSTOM_FIELDS {
        return Err(format!("custom_fields holds at most {MAX_CUSTOM_FIELDS} keys"));
    }
    for (key, value) in fields {
        if FieldTarget::parse(&format!("custom.{key}")).is_none() {
            return Err(format!(
                "custom_fields: key '{key}' must be 1 to {MAX_CUSTOM_KEY_BYTES} bytes of letters, digits, '_' or '-'"
            ));
        }
        if value.len() > MAX_FIELD_VALUE_BYTES {
            return Err(format!("custom_fields: the value of '{key}' is longer than {MAX_FIELD_VALUE_BYTES} bytes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::booking::tests_support::snapshot;
    use crate::domain::{Email, Host, OrganizationId, ProspectId, QuestionAnswer};

    fn text(source: &str, target: &str, mode: FieldMode) -> FieldMappingText {
        FieldMappingText { source: source.into(), target: target.into(), mode }
    }

    fn prospect() -> Prospect {
        let now = "2026-01-10T12:00:00Z".parse().unwrap();
        Prospect {
            id: ProspectId::new("p"),
            organization_id: OrganizationId::new("org"),
            firstname: Some("John".into()),
            lastname: None,
            email: Email::parse("john@example.com").ok(),
            phone: None,
            company: Some("Typed by a salesperson".into()),
            owner_email: None,
            owner_name: None,
            custom_fields: BTreeMap::new(),
            status: "new".into(),
            source: "calendly".into(),
            notes: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_map_names_what_it_refuses() {
        use FieldMode::FillEmpty as F;
        assert_eq!(
            FieldMap::parse(&[text("question:Société ?", "company", F), text("utm_source", "custom.source", F)])
                .map(|m| m.0.len()),
            Ok(2)
        );
        assert_eq!(
            FieldMap::parse(&[text("utm_nowhere", "company", F)]),
            Err(FieldMapError::UnknownSource("utm_nowhere".into()))
        );
        assert_eq!(FieldMap::parse(&[text("utm_source", "fax", F)]), Err(FieldMapError::UnknownTarget("fax".into())));
        assert_eq!(
            FieldMap::parse(&[text("utm_source", "custom.a b", F)]),
            Err(FieldMapError::UnknownTarget("custom.a b".into()))
        );
        assert_eq!(
            FieldMap::parse(&[text("utm_source", "company", F), text("utm_medium", "company", F)]),
            Err(FieldMapError::DuplicateTarget("company".into()))
        );
        let many: Vec<_> = (0..51).map(|i| text("utm_source", &format!("custom.k{i}"), F)).collect();
        assert_eq!(FieldMap::parse(&many), Err(FieldMapError::TooMany(51)));
    }

    #[test]
    fn fill_empty_keeps_a_salespersons_value_and_overwrite_replaces_it() {
        let mut booking = snapshot("a", "john@example.com");
        booking.questions =
            vec![QuestionAnswer { question: " Nom de votre société ? ".into(), answer: "ACME".into() }];
        booking.tracking.utm_campaign = Some("printemps".into());
        booking.host =
            Some(Host { user_uri: "u".into(), name: Some("Alice".into()), email: Some("alice@v.fr".into()) });
        let fill = FieldMap::parse(&[
            text("question:nom de votre société ?", "company", FieldMode::FillEmpty),
            text("utm_campaign", "custom.campagne", FieldMode::FillEmpty),
            text("host_email", "owner_email", FieldMode::FillEmpty),
        ])
        .unwrap();
        let mut p = prospect();
        assert!(fill.apply(&booking, &mut p));
        assert_eq!(p.company.as_deref(), Some("Typed by a salesperson"));
        assert_eq!(p.custom_fields.get("campagne").map(String::as_str), Some("printemps"));
        assert_eq!(p.owner_email.as_deref(), Some("alice@v.fr"));
        assert!(!fill.apply(&booking, &mut p), "applied twice, nothing more changes");

        let overwrite =
            FieldMap::parse(&[text("question:Nom de votre société ?", "company", FieldMode::Overwrite)]).unwrap();
        assert!(overwrite.apply(&booking, &mut p));
        assert_eq!(p.company.as_deref(), Some("ACME"));
    }

    #[test]
    fn the_default_map_takes_the_sms_number_else_the_call_number_and_the_host_in_organization_scope() {
        let mut booking = snapshot("a", "john@example.com");
        booking.invitee_phone = None;
        booking.call_phone = Some("+33 1 23 45 67 89".into());
        booking.host =
            Some(Host { user_uri: "u".into(), name: Some("Alice".into()), email: Some("alice@v.fr".into()) });
        let mut p = prospect();
        FieldMap::default_for(CalendlyScope::User).apply(&booking, &mut p);
        assert_eq!(p.phone.as_deref(), Some("+33 1 23 45 67 89"));
        assert_eq!(p.owner_email, None, "user scope: the host is the connected user, not an assignee");
        FieldMap::default_for(CalendlyScope::Organization).apply(&booking, &mut p);
        assert_eq!((p.owner_email.as_deref(), p.owner_name.as_deref()), (Some("alice@v.fr"), Some("Alice")));
        booking.invitee_phone = Some("+33 6 00 00 00 00".into());
        let mut fresh = prospect();
        FieldMap::default_for(CalendlyScope::User).apply(&booking, &mut fresh);
        assert_eq!(fresh.phone.as_deref(), Some("+33 6 00 00 00 00"), "the SMS number first");
    }
}
