//! The prospects API's use cases (created by hand; bookings create theirs in the sync engine).

use crate::app::{AppError, Services};
use crate::domain::Email;
use crate::domain::{OrganizationId, Prospect, ProspectId};
use crate::push::PushMessage;
use crate::store::{PageOf, ProspectPatch, StoreError};

/// A prospect as a user types it: empty fields are `None`.
#[derive(Clone, Debug, Default)]
pub struct ProspectDraft {
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// E-mail, already normalized (at most one prospect per e-mail).
    pub email: Option<Email>,
    /// Phone.
    pub phone: Option<String>,
    /// Pipeline status (`new` when absent).
    pub status: Option<String>,
    /// Where it came from (`manual` when absent).
    pub source: Option<String>,
    /// The first note entry.
    pub notes: Option<String>,
}

impl Services {
    /// One page of the organization's prospects, optionally of one `source`.
    pub async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, AppError> {
        if let Some(s) = source {
            crate::domain::check_source(s).map_err(|m| AppError::bad_request("invalid_source", m))?;
        }
        // A cursor of one source's list is not one of another's.
        let list = format!("prospects:{}", source.unwrap_or("*"));
        let cursor = self.cursor_position(&list, org, cursor)?;
        let page = self.store.list_prospects(org, source, limit, cursor).await?;
        Ok(self.signed_page(&list, org, page))
    }

    /// One prospect; 404 when it is not this organization's.
    pub async fn prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Prospect, AppError> {
        self.store.get_prospect(org, id).await?.ok_or(AppError::NotFound("prospect"))
    }

    /// Creates a prospect by hand (status `new` and source `manual` unless given); it needs an
    /// e-mail or a name; 409 when the e-mail is taken in this organization.
    pub async fn create_prospect(&self, org: &OrganizationId, draft: ProspectDraft) -> Result<Prospect, AppError> {
        if draft.email.is_none() && draft.firstname.is_none() && draft.lastname.is_none() {
            return Err(AppError::bad_request("invalid_body", "a prospect needs at least an email or a name"));
        }
        let now = self.clock.now();
        let prospect = Prospect {
            id: ProspectId::generate(),
            organization_id: org.clone(),
            firstname: draft.firstname,
            lastname: draft.lastname,
            email: draft.email,
            phone: draft.phone,
            status: draft.status.unwrap_or_else(|| crate::domain::STATUS_NEW.to_string()),
            source: draft.source.unwrap_or_else(|| "manual".to_string()),
            notes: draft.notes.into_iter().collect(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_prospect(&prospect).await.map_err(email_conflict)?;
        self.pusher.push(org, PushMessage::prospect_created(&prospect)).await;
        Ok(prospect)
    }

    /// Updates a prospect; 404 when it is not this organization's.
    pub async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
    ) -> Result<Prospect, AppError> {
        let updated = self.store.update_prospect(org, id, patch, self.clock.now()).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound("prospect"),
            other => email_conflict(other),
        })?;
        self.pusher.push(org, PushMessage::prospect_updated(&updated)).await;
        Ok(updated)
    }

    /// Deletes a prospect; 404 when it is not this organization's.
    pub async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<(), AppError> {
        if !self.store.delete_prospect(org, id).await? {
            return Err(AppError::NotFound("prospect"));
        }
        self.pusher.push(org, PushMessage::prospect_deleted(id)).await;
        Ok(())
    }
}

fn email_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(message) => AppError::Conflict { code: "email_taken", message },
        other => other.into(),
    }
}
