//! Prospects, their e-mail claims and their notes.
use crate::domain::{Email, OrganizationId, Prospect, ProspectId};
use crate::store::dynamodb::item::{from_item, get_n, get_s, n, to_item};
use crate::store::dynamodb::keys::{
    GSI1, GSI2, email_sk, org_pk, prospect_sk, prospects_by_source_gsi2pk, prospects_gsi1pk,
};
use crate::store::dynamodb::shapes::{Query, claim_item, delete_item, prospect_keys, put_item};
use crate::store::dynamodb::{ITEM_VERSION, MAX_ATTEMPTS, backoff};
use crate::store::{DynamoStore, PageOf, ProspectPatch, ProspectStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[async_trait]
impl ProspectStore for DynamoStore {
    async fn get_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Option<Prospect>, StoreError> {
        self.get(org_pk(org), &prospect_sk(id.as_str())).await?.map(|i| from_item(&i)).transpose()
    }

    async fn find_prospect_by_email(
        &self,
        org: &OrganizationId,
        email_key: &str,
    ) -> Result<Option<Prospect>, StoreError> {
        let Some(claim) = self.get(org_pk(org), &email_sk(email_key)).await? else { return Ok(None) };
        let Some(id) = get_s(&claim, "prospect_id") else { return Ok(None) };
        self.get_prospect(org, &ProspectId::new(id)).await
    }

    async fn create_prospect(&self, prospect: &Prospect) -> Result<(), StoreError> {
        let org = &prospect.organization_id;
        let mut item = to_item(prospect, &prospect_keys(prospect))?;
        item.insert(ITEM_VERSION.into(), n(1));
        let mut items = vec![put_item(&self.table, item, Some("attribute_not_exists(pk)"), None)?];
        if let Some(email) = &prospect.email {
            items.push(put_item(
                &self.table,
                claim_item(org, &email.key(), &prospect.id),
                Some("attribute_not_exists(pk)"),
                None,
            )?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Conflict(format!(
                "a prospect with email {} already exists",
                prospect.email.as_ref().map(Email::as_str).unwrap_or_default()
            ))),
        }
    }

    async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
        now: DateTime<Utc>,
    ) -> Result<Prospect, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let item = self.get(org_pk(org), &prospect_sk(id.as_str())).await?.ok_or(StoreError::NotFound)?;
            let version = get_n(&item, ITEM_VERSION).unwrap_or(0);
            let current: Prospect = from_item(&item)?;
            let mut updated = current.clone();
            patch.apply_fields(&mut updated);
            if let Some(v) = &patch.email {
                updated.email = v.clone();
            }
            updated.updated_at = now;

            let mut new_item = to_item(&updated, &prospect_keys(&updated))?;
            new_item.insert(ITEM_VERSION.into(), n(version + 1));
            let mut items = vec![put_item(
                &self.table,
                new_item,
                Some("item_version = :v"),
                Some(HashMap::from([(":v".into(), n(version))])),
            )?];
            let (old_key, new_key) = (current.email.as_ref().map(Email::key), updated.email.as_ref().map(Email::key));
            let mut claim_index = None;
            if old_key != new_key {
                if let Some(k) = &new_key {
                    claim_index = Some(items.len());
                    items.push(put_item(&self.table, claim_item(org, k, id), Some("attribute_not_exists(pk)"), None)?);
                }
                if let Some(k) = &old_key {
                    items.push(delete_item(&self.table, Self::key(org_pk(org), &email_sk(k)), None, None)?);
                }
            }
            match self.transact(items).await? {
                Ok(()) => return Ok(updated),
                Err(i) if Some(i) == claim_index => {
                    return Err(StoreError::Conflict(format!(
                        "a prospect with email {} already exists",
                        new_key.unwrap_or_default()
                    )));
                }
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict("the prospect kept changing under concurrent writers".into()))
    }

    async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<bool, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(item) = self.get(org_pk(org), &prospect_sk(id.as_str())).await? else { return Ok(false) };
            let version = get_n(&item, ITEM_VERSION).unwrap_or(0);
            let prospect: Prospect = from_item(&item)?;
            let mut items = vec![delete_item(
                &self.table,
                Self::key(org_pk(org), &prospect_sk(id.as_str())),
                Some("item_version = :v"),
                Some(HashMap::from([(":v".into(), n(version))])),
            )?];
            if let Some(email) = &prospect.email {
                items.push(delete_item(&self.table, Self::key(org_pk(org), &email_sk(&email.key())), None, None)?);
            }
            match self.transact(items).await? {
                Ok(()) => return Ok(true),
                Err(_) => backoff(attempt).await,
            }
        }
        Err(StoreError::Conflict("the prospect kept changing under concurrent writers".into()))
    }

    async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, StoreError> {
        let base = match source {
            Some(src) => Query::index(GSI2, prospects_by_source_gsi2pk(org, src)),
            None => Query::index(GSI1, prospects_gsi1pk(org)),
        };
        let (items, next_cursor) = self.query(Query { newest_first: true, ..base }, limit, cursor).await?;
        Ok(PageOf { items: items.iter().map(from_item).collect::<Result<_, _>>()?, next_cursor })
    }
}
