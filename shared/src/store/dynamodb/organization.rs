//! Organizations and their settings (`settings.calendly` merged key by key).
use crate::domain::{Organization, OrganizationId};
use crate::store::dynamodb::item::from_item;
use crate::store::dynamodb::keys::{ORG_SK, org_pk};
use crate::store::{DynamoStore, OrganizationStore, StoreError};
use async_trait::async_trait;
use serde_json::{Map, Value};

#[async_trait]
impl OrganizationStore for DynamoStore {
    async fn get_organization(&self, org: &OrganizationId) -> Result<Organization, StoreError> {
        let settings = match self.get(org_pk(org), ORG_SK).await? {
            Some(item) => from_item::<Organization>(&item)?.settings,
            None => Map::new(),
        };
        Ok(Organization { id: org.clone(), settings })
    }

    async fn merge_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<Organization, StoreError> {
        let updated = self
            .update_versioned(
                org_pk(org),
                ORG_SK,
                |_| Vec::new(),
                |current: Option<Organization>| {
                    let mut organization = current.unwrap_or(Organization { id: org.clone(), settings: Map::new() });
                    crate::domain::merge_settings(&mut organization.settings, patch);
                    Ok(Some((organization.clone(), organization)))
                },
            )
            .await?;
        updated.ok_or(StoreError::NotFound)
    }

    async fn merge_calendly_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.update_versioned(
            org_pk(org),
            ORG_SK,
            |_| Vec::new(),
            |current: Option<Organization>| {
                let mut organization = current.unwrap_or(Organization { id: org.clone(), settings: Map::new() });
                crate::domain::merge_calendly_settings(&mut organization.settings, patch);
                Ok(Some((organization, ())))
            },
        )
        .await?;
        Ok(())
    }
}
