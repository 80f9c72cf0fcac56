//! Sync jobs.
use crate::domain::{CommittedCounts, Integration, OrganizationId, SyncJob};
use crate::store::{JobChange, JobStart, MemoryStore, StoreError, SyncJobStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl SyncJobStore for MemoryStore {
    async fn get_sync_job(&self, org: &OrganizationId) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.with(|s| s.sync_jobs.get(org).cloned()))
    }

    async fn get_sync_job_with_integration(
        &self,
        org: &OrganizationId,
    ) -> Result<(Option<SyncJob>, Option<Integration>), StoreError> {
        Ok(self.with(|s| (s.sync_jobs.get(org).cloned(), s.integrations.get(org).cloned())))
    }

    async fn record_job(&self, job: &SyncJob, replaces: Option<&str>) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let stored = s.sync_jobs.get(&job.organization_id).map(|j| j.id.as_str());
            let still = stored == replaces;
            if still {
                let mut recorded = job.clone();
                recorded.unrecorded = None;
                s.sync_jobs.insert(job.organization_id.clone(), recorded);
            }
            still
        }))
    }

    async fn start_sync_job(&self, job: &SyncJob, now: DateTime<Utc>) -> Result<JobStart, StoreError> {
        Ok(self.with(|s| match s.sync_jobs.get(&job.organization_id) {
            Some(current) if !job.may_replace(current, now) => JobStart::AlreadyActive(current.clone()),
            _ => {
                s.sync_jobs.insert(job.organization_id.clone(), job.clone());
                JobStart::Created(job.clone())
            }
        }))
    }

    async fn update_sync_job(
        &self,
        org: &OrganizationId,
        job_id: &str,
        change: JobChange<'_>,
    ) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.with(|s| {
            let job = s.sync_jobs.get_mut(org).filter(|j| j.id == job_id)?;
            let mut changed = job.clone();
            change(&mut changed).then(|| {
                *job = changed.clone();
                changed
            })
        }))
    }

    async fn committed_counts(&self, org: &OrganizationId, job_id: &str) -> Result<CommittedCounts, StoreError> {
        Ok(self.with(|s| s.committed_counts.get(&(org.clone(), job_id.to_string())).copied().unwrap_or_default()))
    }
}
