//! Prospects and their e-mail claims.
use crate::domain::{Email, OrganizationId, Prospect, ProspectId};
use crate::store::memory::paginate;
use crate::store::{MemoryStore, PageOf, ProspectPatch, ProspectStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl ProspectStore for MemoryStore {
    async fn get_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Option<Prospect>, StoreError> {
        Ok(self.with(|s| s.prospects.get(&(org.clone(), id.clone())).cloned()))
    }

    async fn find_prospect_by_email(
        &self,
        org: &OrganizationId,
        email_key: &str,
    ) -> Result<Option<Prospect>, StoreError> {
        Ok(self.with(|s| {
            let id = s.email_claims.get(&(org.clone(), email_key.to_string()))?;
            s.prospects.get(&(org.clone(), id.clone())).cloned()
        }))
    }

    async fn create_prospect(&self, prospect: &Prospect) -> Result<(), StoreError> {
        let org = &prospect.organization_id;
        self.with(|s| {
            if let Some(email) = &prospect.email {
                let claim = (org.clone(), email.key());
                if s.email_claims.contains_key(&claim) {
                    return Err(StoreError::Conflict(format!("a prospect with email {email} already exists")));
                }
                s.email_claims.insert(claim, prospect.id.clone());
            }
            s.prospects.insert((org.clone(), prospect.id.clone()), prospect.clone());
            Ok(())
        })
    }

    async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
        now: DateTime<Utc>,
    ) -> Result<Prospect, StoreError> {
        self.with(|s| {
            let key = (org.clone(), id.clone());
            let current = s.prospects.get(&key).ok_or(StoreError::NotFound)?.clone();
            let mut updated = current.clone();
            if let Some(new_email) = &patch.email {
                let old_key = current.email.as_ref().map(Email::key);
                let new_key = new_email.as_ref().map(Email::key);
                if new_key != old_key {
                    if let Some(k) = &new_key {
                        if s.email_claims.contains_key(&(org.clone(), k.clone())) {
                            return Err(StoreError::Conflict(format!("a prospect with email {k} already exists")));
                        }
                        s.email_claims.insert((org.clone(), k.clone()), id.clone());
                    }
                    if let Some(k) = old_key {
                        s.email_claims.remove(&(org.clone(), k));
                    }
                }
                updated.email = new_email.clone();
            }
            patch.apply_fields(&mut updated);
            updated.updated_at = now;
            s.prospects.insert(key, updated.clone());
            Ok(updated)
        })
    }

    async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.prospects.remove(&(org.clone(), id.clone())) {
            Some(p) => {
                if let Some(email) = p.email {
                    s.email_claims.remove(&(org.clone(), email.key()));
                }
                true
            }
            None => false,
        }))
    }

    async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, StoreError> {
        let mut prospects: Vec<Prospect> = self.with(|s| {
            s.prospects
                .values()
                .filter(|p| &p.organization_id == org && source.is_none_or(|src| p.source == src))
                .cloned()
                .collect()
        });
        let position = |p: &Prospect| format!("{}#{}", p.created_at.timestamp_micros(), p.id);
        prospects.sort_by_key(|p| std::cmp::Reverse(position(p)));
        paginate(prospects, position, limit, cursor)
    }
}
