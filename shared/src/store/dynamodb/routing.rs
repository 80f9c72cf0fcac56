//! Routing form submissions: one join item per submission, written with the prospect change
//! of the submission (or of its booking) in one transaction.
use crate::domain::OrganizationId;
use crate::domain::ProspectId;
use crate::domain::routing::{SubmissionLink, SubmissionPlan};
use crate::store::dynamodb::DynamoStore;
use crate::store::dynamodb::commit_items::{
    Role, integration_active_check, link_item, prospect_change_items, unsuppressed_check,
};
use crate::store::dynamodb::item::{Item, get_s};
use crate::store::dynamodb::keys::{org_pk, submission_sk};
use crate::store::{CommitConflict, CommitError, StoreError, SubmissionStore};
use async_trait::async_trait;

#[async_trait]
impl SubmissionStore for DynamoStore {
    async fn get_submission_link(
        &self,
        org: &OrganizationId,
        submission_uuid: &str,
    ) -> Result<Option<SubmissionLink>, StoreError> {
        Ok(self.get(org_pk(org), &submission_sk(submission_uuid)).await?.as_ref().and_then(link_of))
    }

    async fn commit_submission(&self, plan: &SubmissionPlan) -> Result<(), CommitError> {
        let org = &plan.organization_id;
        let table = self.table.as_str();
        let mut items = Vec::new();
        let (mut claim_index, mut notes_index) = (None, None);
        for (item, role) in prospect_change_items(table, org, &plan.prospect, plan.at)? {
            match role {
                Role::Claim => claim_index = Some(items.len()),
                Role::Notes => notes_index = Some(items.len()),
                Role::Prospect => {}
            }
            items.push(item);
        }
        let link_index = items.len();
        items.push(link_item(table, org, &plan.link)?);
        let mut suppression_indexes = Vec::new();
        for hash in plan.person.iter().flat_map(|p| p.all()) {
            suppression_indexes.push(items.len());
            items.push(unsuppressed_check(table, org, hash)?);
        }
        let integration_index = items.len();
        items.push(integration_active_check(table, org, &plan.integration_id)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(i) if i == link_index => Err(CommitConflict::SubmissionChanged.into()),
            Err(i) if Some(i) == claim_index => Err(CommitConflict::EmailClaimed.into()),
            Err(i) if Some(i) == notes_index => Err(CommitConflict::ProspectMissing.into()),
            Err(i) if suppression_indexes.contains(&i) => Err(CommitConflict::Suppressed.into()),
            Err(i) if i == integration_index => Err(CommitConflict::IntegrationInactive.into()),
            Err(_) => Err(CommitConflict::SubmissionChanged.into()),
        }
    }
}

fn link_of(item: &Item) -> Option<SubmissionLink> {
    let prospect_id = ProspectId::new(get_s(item, "prospect_id")?);
    let noted = item.get("noted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    Some(SubmissionLink { prospect_id, noted })
}
