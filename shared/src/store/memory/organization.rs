//! Organizations and their settings.
use crate::domain::{Organization, OrganizationId};
use crate::store::{MemoryStore, OrganizationStore, StoreError};
use async_trait::async_trait;
use serde_json::{Map, Value};

#[async_trait]
impl OrganizationStore for MemoryStore {
    async fn get_organization(&self, org: &OrganizationId) -> Result<Organization, StoreError> {
        Ok(self.with(|s| Organization {
            id: org.clone(),
            settings: s.organizations.get(org).cloned().unwrap_or_default(),
        }))
    }

    async fn merge_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<Organization, StoreError> {
        Ok(self.with(|s| {
            let settings = s.organizations.entry(org.clone()).or_default();
            crate::domain::merge_settings(settings, patch);
            Organization { id: org.clone(), settings: settings.clone() }
        }))
    }

    async fn merge_calendly_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            crate::domain::merge_calendly_settings(s.organizations.entry(org.clone()).or_default(), patch);
        });
        Ok(())
    }
}
