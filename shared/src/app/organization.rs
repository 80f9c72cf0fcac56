//! The organization and its free-form settings (`settings.calendly` is the integration's mirror).

use crate::app::{AppError, ErrorCode};
use crate::domain::{Organization, OrganizationId};
use crate::store::OrganizationStore;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The organization's own settings: the organization items, nothing else.
#[derive(Clone)]
pub struct Organizations {
    store: Arc<dyn OrganizationStore>,
}

impl Organizations {
    /// Organizations over `store`.
    pub fn new(store: Arc<dyn OrganizationStore>) -> Self {
        Self { store }
    }

    /// The organization and its settings.
    pub async fn get(&self, org: &OrganizationId) -> Result<Organization, AppError> {
        Ok(self.store.get_organization(org).await?)
    }

    /// Merges `settings` into the organization's, key by key: other keys are kept,
    /// `settings.calendly` is the integration's mirror and can't be written, `timezone` must be
    /// an IANA name, and the whole stays within what an item holds.
    pub async fn merge_settings(
        &self,
        org: &OrganizationId,
        settings: &Map<String, Value>,
    ) -> Result<Organization, AppError> {
        let timezone = settings.get("timezone").filter(|v| !v.is_null());
        if timezone.is_some_and(|tz| tz.as_str().is_none_or(|t| crate::domain::notes::timezone(t).is_none())) {
            return Err(AppError::bad_request(
                ErrorCode::InvalidTimezone,
                "settings.timezone must be an IANA timezone name such as Europe/Paris",
            ));
        }
        // Read as a boolean by every note written: anything else is refused, not guessed.
        if settings.get("calendly_note_details").is_some_and(|v| !v.is_null() && !v.is_boolean()) {
            return Err(AppError::bad_request(
                ErrorCode::InvalidField,
                "settings.calendly_note_details must be a boolean",
            ));
        }
        let current = self.store.get_organization(org).await?;
        crate::domain::check_settings_patch(&current.settings, settings).map_err(|e| {
            let code = match e {
                crate::domain::SettingsError::ReadOnly => ErrorCode::ReadOnlySetting,
                crate::domain::SettingsError::TooLarge => ErrorCode::SettingsTooLarge,
                _ => ErrorCode::InvalidSettings,
            };
            AppError::bad_request(code, e.to_string())
        })?;
        self.store.merge_settings(org, settings).await?;
        Ok(self.store.get_organization(org).await?)
    }
}
