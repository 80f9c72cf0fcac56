//! The prospects API's use cases (created by hand; bookings create theirs in the sync engine).

use crate::app::{AppError, ErrorCode, PageCursors};
use crate::clock::Clock;
use crate::domain::{Email, OrganizationId, Prospect, ProspectId};
use crate::push::{PushMessage, Pusher};
use crate::store::{PageOf, ProspectPatch, ProspectStore, StoreError};
use std::sync::Arc;

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
    /// Company.
    pub company: Option<String>,
    /// The owning salesperson's e-mail.
    pub owner_email: Option<String>,
    /// The owning salesperson's name.
    pub owner_name: Option<String>,
    /// The organization's own fields (already checked).
    pub custom_fields: std::collections::BTreeMap<String, String>,
    /// Pipeline status (`new` when absent).
    pub status: Option<String>,
    /// Where it came from (`manual` when absent).
    pub source: Option<String>,
    /// The first note entry.
    pub notes: Option<String>,
}

/// The CRM's prospects by hand: the prospect items, the pushes of their changes, the clock and
/// the cursors, nothing else.
#[derive(Clone)]
pub struct Prospects {
    store: Arc<dyn ProspectStore>,
    pusher: Arc<dyn Pusher>,
    clock: Arc<dyn Clock>,
    cursors: PageCursors,
}

impl Prospects {
    /// Prospects over their ports.
    pub fn new(
        store: Arc<dyn ProspectStore>,
        pusher: Arc<dyn Pusher>,
        clock: Arc<dyn Clock>,
        cursors: PageCursors,
    ) -> Self {
        Self { store, pusher, clock, cursors }
    }

    /// One page of the organization's prospects, optionally of one `source`.
    pub async fn list(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, AppError> {
        if let Some(s) = source {
            crate::domain::check_source(s).map_err(|m| AppError::bad_request(ErrorCode::InvalidSource, m))?;
        }
        // A cursor of one source's list is not one of another's.
        let list = format!("prospects:{}", source.unwrap_or("*"));
        let cursor = self.cursors.position(&list, org, cursor)?;
        let page = self.store.list_prospects(org, source, limit, cursor).await?;
        Ok(self.cursors.signed(&list, org, page))
    }

    /// One prospect; 404 when it is not this organization's.
    pub async fn get(&self, org: &OrganizationId, id: &ProspectId) -> Result<Prospect, AppError> {
        self.store.get_prospect(org, id).await?.ok_or(AppError::NotFound("prospect"))
    }

    /// Creates a prospect by hand (status `new` and source `manual` unless given); it needs an
    /// e-mail or a name; 409 when the e-mail is taken in this organization.
    pub async fn create(&self, org: &OrganizationId, draft: ProspectDraft) -> Result<Prospect, AppError> {
        if draft.email.is_none() && draft.firstname.is_none() && draft.lastname.is_none() {
            return Err(AppError::bad_request(ErrorCode::InvalidBody, "a prospect needs at least an email or a name"));
        }
        let now = self.clock.now();
        let prospect = Prospect {
            id: ProspectId::generate(),
            organization_id: org.clone(),
            firstname: draft.firstname,
            lastname: draft.lastname,
            email: draft.email,
            phone: draft.phone,
            company: draft.company,
            owner_email: draft.owner_email,
            owner_name: draft.owner_name,
            custom_fields: draft.custom_fields,
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
    pub async fn update(
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
    pub async fn delete(&self, org: &OrganizationId, id: &ProspectId) -> Result<(), AppError> {
        if !self.store.delete_prospect(org, id).await? {
            return Err(AppError::NotFound("prospect"));
        }
        self.pusher.push(org, PushMessage::prospect_deleted(id)).await;
        Ok(())
    }
}

fn email_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(message) => AppError::Conflict { code: ErrorCode::EmailTaken, message },
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::RecordingPusher;
    use crate::clock::SystemClock;
    use crate::crypto::CursorSigner;
    use crate::store::MemoryStore;

    fn prospects() -> (Prospects, Arc<RecordingPusher>) {
        let pushed = Arc::new(RecordingPusher::default());
        let cursors = PageCursors::new(CursorSigner::from_hex_key(&"ab".repeat(32)).unwrap_or_else(|e| panic!("{e}")));
        let prospects =
            Prospects::new(Arc::new(MemoryStore::new()), pushed.clone(), Arc::new(SystemClock::default()), cursors);
        (prospects, pushed)
    }

    fn draft(email: &str) -> ProspectDraft {
        ProspectDraft { email: Email::parse(email).ok(), ..ProspectDraft::default() }
    }

    #[tokio::test]
    async fn a_prospect_by_hand_is_pushed_to_its_organization_once_and_keeps_its_email_unique() {
        let (prospects, pushed) = prospects();
        let org = OrganizationId::new("org-a");
        let created = prospects.create(&org, draft("ada@example.com")).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((created.status.as_str(), created.source.as_str()), ("new", "manual"));
        let taken = prospects.create(&org, draft("ADA@example.com")).await;
        assert!(matches!(taken, Err(AppError::Conflict { code: crate::app::ErrorCode::EmailTaken, .. })), "{taken:?}");
        let nameless = prospects.create(&org, ProspectDraft::default()).await;
        assert!(
            matches!(nameless, Err(AppError::BadRequest { code: crate::app::ErrorCode::InvalidBody, .. })),
            "{nameless:?}"
        );
        prospects.delete(&org, &created.id).await.unwrap_or_else(|e| panic!("{e}"));
        let missing = prospects.delete(&OrganizationId::new("org-b"), &created.id).await;
        assert!(matches!(missing, Err(AppError::NotFound("prospect"))));
        let events = pushed.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(events, vec![(org.clone(), "prospect:created"), (org, "prospect:deleted")]);
    }

    #[tokio::test]
    async fn pages_go_on_by_their_own_cursors_only() {
        let (prospects, _) = prospects();
        let org = OrganizationId::new("org-a");
        for i in 0..3 {
            prospects.create(&org, draft(&format!("p{i}@example.com"))).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let first = prospects.list(&org, None, 2, None).await.unwrap_or_else(|e| panic!("{e}"));
        let cursor = first.next_cursor.unwrap_or_default();
        let second = prospects.list(&org, None, 2, Some(&cursor)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.items.len() + second.items.len(), 3);
        let other = prospects.list(&OrganizationId::new("org-b"), None, 2, Some(&cursor)).await;
        assert!(matches!(other, Err(AppError::BadRequest { code: crate::app::ErrorCode::InvalidCursor, .. })));
        let sourced = prospects.list(&org, Some("manual"), 2, Some(&cursor)).await;
        assert!(matches!(sourced, Err(AppError::BadRequest { code: crate::app::ErrorCode::InvalidCursor, .. })));
    }
}
