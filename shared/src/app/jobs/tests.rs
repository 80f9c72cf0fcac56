use super::*;
use crate::app::fakes::{RecordingPusher, RecordingQueue, connected};
use crate::app::{AppError, ErrorCode};
use crate::clock::SystemClock;
use crate::store::MemoryStore;
use std::sync::atomic::Ordering;

struct Fixture {
    jobs: Jobs,
    store: Arc<MemoryStore>,
    queue: Arc<RecordingQueue>,
    pushed: Arc<RecordingPusher>,
    clock: Arc<SystemClock>,
}

fn fixture() -> Fixture {
    let (store, queue) = (Arc::new(MemoryStore::new()), Arc::new(RecordingQueue::default()));
    let (pushed, clock) = (Arc::new(RecordingPusher::default()), Arc::new(SystemClock::default()));
    let window = SyncWindow { days_past: 30, days_ahead: 90 };
    let cooldown = chrono::Duration::seconds(60);
    let jobs = Jobs::new(
        JobPorts {
            integrations: store.clone(),
            jobs: store.clone(),
            queue: queue.clone(),
            pusher: pushed.clone(),
            clock: clock.clone(),
        },
        window,
        cooldown,
    );
    Fixture { jobs, store, queue, pushed, clock }
}

async fn finish(store: &MemoryStore, job: &SyncJob, now: DateTime<Utc>) {
    let finished = store
        .update_sync_job(&job.organization_id, &job.id, &|j| {
            j.finish(now, None);
            true
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(finished.is_some());
}

#[tokio::test]
async fn a_manual_sync_is_queued_once_then_refused_until_its_cooldown_has_passed() {
    let f = fixture();
    let org = OrganizationId::new("org-a");
    assert!(matches!(f.jobs.request_sync(&org, SyncTrigger::Manual).await, Err(AppError::Conflict { .. })));
    connected(&f.store, "org-a", f.clock.now()).await;

    let first = f.jobs.request_sync(&org, SyncTrigger::Manual).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(first.created);
    // Asked again while it runs: the same job, nothing more queued.
    let again = f.jobs.request_sync(&org, SyncTrigger::Manual).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.created, again.job.id.as_str()), (false, first.job.id.as_str()));
    assert_eq!(f.queue.sent.lock().unwrap_or_else(|e| e.into_inner()).len(), 1);
    assert_eq!(f.pushed.0.lock().unwrap_or_else(|e| e.into_inner()).as_slice(), &[(org.clone(), "calendly:sync")]);

    finish(&f.store, &first.job, f.clock.now()).await;
    let refused = f.jobs.request_sync(&org, SyncTrigger::Manual).await;
    assert!(
        matches!(refused, Err(AppError::TooManyRequests { code: ErrorCode::SyncCooldown, retry_after_secs, .. }) if retry_after_secs <= 60),
        "{refused:?}"
    );
    // The schedule is no manual request: it is never held back by the cooldown.
    let scheduled = f.jobs.request_sync(&org, SyncTrigger::Scheduled).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(scheduled.created);
    finish(&f.store, &scheduled.job, f.clock.now()).await;
    f.clock.advance(chrono::Duration::seconds(61));
    assert!(f.jobs.request_sync(&org, SyncTrigger::Manual).await.is_ok_and(|q| q.created));
}

#[tokio::test]
async fn a_sync_asked_for_while_a_scheduled_one_waits_unrecorded_is_that_one() {
    let f = fixture();
    let org = OrganizationId::new("org-c");
    let now = f.clock.now();
    let integration = connected(&f.store, "org-c", now - chrono::Duration::minutes(1)).await;
    let window = SyncWindow { days_past: 30, days_ahead: 90 };
    let handed_out = crate::domain::HandedOutJob::new(integration.id.clone(), window, now);
    let due = integration.next_sync_at.unwrap_or_else(|| panic!("due"));
    let next = now + chrono::Duration::minutes(30);
    assert!(f.store.hand_out(&org, due, next, &handed_out).await.unwrap_or_else(|e| panic!("{e}")));

    let asked = f.jobs.request_sync(&org, SyncTrigger::Manual).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((asked.created, asked.job.id.as_str()), (false, handed_out.id.as_str()));
    assert_eq!((asked.job.state, asked.job.trigger), (SyncJobState::Queued, SyncTrigger::Scheduled));
    assert!(f.queue.sent.lock().unwrap_or_else(|e| e.into_inner()).is_empty(), "nothing more queued");
    let current = f.jobs.current_sync(&org).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(current.map(|j| j.id), Some(handed_out.id.clone()));

    // Lost (never recorded within the stale time): it no longer stands for a sync.
    f.clock.advance(crate::domain::sync_job::STALE_AFTER + chrono::Duration::seconds(1));
    assert!(f.jobs.request_sync(&org, SyncTrigger::Manual).await.is_ok_and(|q| q.created));
}

#[tokio::test]
async fn a_job_the_queue_refuses_is_failed_at_once_so_the_next_request_is_not_blocked() {
    let f = fixture();
    let org = OrganizationId::new("org-b");
    connected(&f.store, "org-b", f.clock.now()).await;
    f.queue.refuse.store(true, Ordering::SeqCst);
    let refused = f.jobs.request_sync(&org, SyncTrigger::Scheduled).await;
    assert!(matches!(refused, Err(AppError::QueueUnavailable(_))), "{refused:?}");
    let job = f.jobs.current_sync(&org).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("a job"));
    assert!(!job.state.is_active() && job.error.is_some(), "{job:?}");
    f.queue.refuse.store(false, Ordering::SeqCst);
    assert!(f.jobs.request_sync(&org, SyncTrigger::Scheduled).await.is_ok_and(|q| q.created));
}
