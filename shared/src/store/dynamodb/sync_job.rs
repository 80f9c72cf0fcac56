//! Sync jobs: one item per organization, written under conditions.
use crate::domain::{CommittedCounts, Integration, OrganizationId, SyncJob};
use crate::store::dynamodb::item::{from_item, get_s};
use crate::store::dynamodb::keys::{INTEGRATION_SK, SCHEDULE_SK, SK, SYNC_JOB_SK, committed_counts_prefix, org_pk};
use crate::store::dynamodb::shapes::Query;
use crate::store::{DynamoStore, JobChange, JobStart, Scheduled, StoreError, SyncJobStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl SyncJobStore for DynamoStore {
    async fn get_sync_job(&self, org: &OrganizationId) -> Result<Option<SyncJob>, StoreError> {
        self.get(org_pk(org), SYNC_JOB_SK).await?.map(|i| from_item(&i)).transpose()
    }

    async fn get_sync_job_with_integration(
        &self,
        org: &OrganizationId,
    ) -> Result<(Option<SyncJob>, Option<Integration>), StoreError> {
        // The integration's due time and handed-out job are its schedule item's.
        let pk = org_pk(org);
        let keys = [SYNC_JOB_SK, INTEGRATION_SK, SCHEDULE_SK].map(|sk| Self::key(pk.clone(), sk));
        let (mut job, mut integration, mut schedule) = (None, None::<Integration>, None::<Scheduled>);
        for item in self.batch_get(keys.to_vec()).await? {
            let sk = get_s(&item, SK).map(str::to_string);
            match sk.as_deref() {
                Some(SYNC_JOB_SK) => {
                    job = Some(from_item(&item)?);
                    // The job's next write (its record, or its claim) starts from this.
                    self.remember_job(pk.clone(), item);
                }
                Some(INTEGRATION_SK) => integration = Some(from_item(&item)?),
                Some(SCHEDULE_SK) => schedule = Some(from_item(&item)?),
                _ => {}
            }
        }
        if let (Some(integration), Some(schedule)) = (integration.as_mut(), schedule) {
            integration.next_sync_at = schedule.next_sync_at;
            integration.handed_out = schedule.handed_out;
        }
        Ok((job, integration))
    }

    async fn record_job(&self, job: &SyncJob, replaces: Option<&str>) -> Result<bool, StoreError> {
        let mut recorded = job.clone();
        recorded.unrecorded = None;
        let written = self
            .update_versioned(
                org_pk(&job.organization_id),
                SYNC_JOB_SK,
                |_| Vec::new(),
                |current: Option<SyncJob>| {
                    let still = current.as_ref().map(|c| c.id.as_str()) == replaces;
                    Ok(still.then(|| (recorded.clone(), ())))
                },
            )
            .await?;
        Ok(written.is_some())
    }

    async fn start_sync_job(&self, job: &SyncJob, now: DateTime<Utc>) -> Result<JobStart, StoreError> {
        // The domain decides; `item_version` makes the read-decide-write atomic.
        let blocking = std::sync::Mutex::new(None);
        let created = self
            .update_versioned(
                org_pk(&job.organization_id),
                SYNC_JOB_SK,
                |_| Vec::new(),
                |current: Option<SyncJob>| match current {
                    Some(current) if !job.may_replace(&current, now) => {
                        *blocking.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
                        Ok(None)
                    }
                    _ => Ok(Some((job.clone(), ()))),
                },
            )
            .await?;
        match (created, blocking.into_inner().unwrap_or_else(|e| e.into_inner())) {
            (Some(()), _) => Ok(JobStart::Created(job.clone())),
            (None, Some(current)) => Ok(JobStart::AlreadyActive(current)),
            (None, None) => Err(StoreError::Corrupt("a sync job was neither created nor found".into())),
        }
    }

    async fn update_sync_job(
        &self,
        org: &OrganizationId,
        job_id: &str,
        change: JobChange<'_>,
    ) -> Result<Option<SyncJob>, StoreError> {
        self.update_versioned(
            org_pk(org),
            SYNC_JOB_SK,
            |_| Vec::new(),
            |current: Option<SyncJob>| {
                let Some(mut job) = current.filter(|j| j.id == job_id) else { return Ok(None) };
                Ok(change(&mut job).then(|| (job.clone(), job)))
            },
        )
        .await
    }

    async fn committed_counts(&self, org: &OrganizationId, job_id: &str) -> Result<CommittedCounts, StoreError> {
        let prefix = committed_counts_prefix(job_id);
        let shards = self.query_all(Query { sk_prefix: Some(&prefix), ..Query::partition(org_pk(org)) }).await?;
        let mut total = CommittedCounts::default();
        for shard in &shards {
            total.add(&from_item(shard)?);
        }
        Ok(total)
    }
}
