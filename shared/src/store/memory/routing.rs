//! Routing form submissions' joins, written with their prospect change all or nothing.
use crate::domain::OrganizationId;
use crate::domain::routing::{LinkWrite, SubmissionLink, SubmissionPlan};
use crate::store::memory::State;
use crate::store::{CommitConflict, CommitError, MemoryStore, StoreError, SubmissionStore};
use async_trait::async_trait;

impl State {
    /// Whether a join can be written as planned (none yet, or the one read still as read).
    pub(super) fn link_holds(&self, org: &OrganizationId, write: &LinkWrite) -> bool {
        match write {
            LinkWrite::Create { submission_uuid, .. } => {
                !self.submission_links.contains_key(&(org.clone(), submission_uuid.clone()))
            }
            LinkWrite::Update { submission_uuid, read, .. } => {
                self.submission_links.get(&(org.clone(), submission_uuid.clone())) == Some(read)
            }
        }
    }

    /// Writes a join (its guard checked).
    pub(super) fn write_link(&mut self, org: &OrganizationId, write: &LinkWrite) {
        let (LinkWrite::Create { submission_uuid, link } | LinkWrite::Update { submission_uuid, link, .. }) = write;
        self.submission_links.insert((org.clone(), submission_uuid.clone()), link.clone());
    }
}

#[async_trait]
impl SubmissionStore for MemoryStore {
    async fn get_submission_link(
        &self,
        org: &OrganizationId,
        submission_uuid: &str,
    ) -> Result<Option<SubmissionLink>, StoreError> {
        Ok(self.with(|s| s.submission_links.get(&(org.clone(), submission_uuid.to_string())).cloned()))
    }

    async fn commit_submission(&self, plan: &SubmissionPlan) -> Result<(), CommitError> {
        let org = &plan.organization_id;
        self.with(|s| {
            let active = s.integrations.get(org).is_some_and(|i| i.is_active && i.id == plan.integration_id);
            if !active {
                return Err(CommitConflict::IntegrationInactive.into());
            }
            if !s.link_holds(org, &plan.link) {
                return Err(CommitConflict::SubmissionChanged.into());
            }
            if s.person_suppressed(org, plan.person.as_ref()) {
                return Err(CommitConflict::Suppressed.into());
            }
            match s.prospect_change_holds(org, &plan.prospect) {
                Ok(()) => {}
                Err(super::booking::Guard::Claim) => return Err(CommitConflict::EmailClaimed.into()),
                Err(super::booking::Guard::Notes) => return Err(CommitConflict::ProspectMissing.into()),
            }
            s.write_prospect_change(org, &plan.prospect, plan.at);
            s.write_link(org, &plan.link);
            Ok(())
        })
    }
}
