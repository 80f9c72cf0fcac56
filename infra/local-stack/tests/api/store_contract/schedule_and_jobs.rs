//! The schedule's due index, hand-outs and sync jobs, on both stores.

use super::*;

/// Every due integration, over every part of the schedule.
pub(super) async fn all_due(store: &Arc<dyn Store>, now: DateTime<Utc>) -> Vec<shared::store::Scheduled> {
    let mut due = Vec::new();
    for partition in store.due_partitions() {
        due.extend(store.list_due_integrations(now, &partition, 100, None).await.unwrap().items);
    }
    due
}

pub(super) async fn due_integrations_page_through_every_one_of_them(store: Arc<dyn Store>) {
    let now = Utc::now();
    for i in 0..40 {
        store
            .save_connected_integration(integration(&org(&format!("org-{i:02}")), &format!("int-{i:02}")))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut parts_used = 0;
    for partition in store.due_partitions() {
        let mut cursor: Option<String> = None;
        let mut in_part = 0;
        loop {
            let page = store.list_due_integrations(now, &partition, 3, cursor.as_deref()).await.unwrap();
            assert!(page.items.len() <= 3);
            for i in &page.items {
                // Each is kept in its organization's own part.
                assert_eq!(DuePartition::of(&i.organization_id, DEFAULT_DUE_SHARDS), partition);
                // The scheduler moves each one off the index while it pages: no page may skip any.
                store.record_sync(&i.organization_id, None, now + Duration::minutes(30)).await.unwrap();
            }
            in_part += page.items.len();
            seen.extend(page.items.into_iter().map(|i| i.organization_id));
            match page.next_cursor {
                // A position in one part is no position in another.
                Some(c) => {
                    let shard = if partition == DuePartition::shard(0) { 1 } else { 0 };
                    let crossed = store.list_due_integrations(now, &DuePartition::shard(shard), 3, Some(&c)).await;
                    assert!(matches!(crossed, Err(StoreError::InvalidCursor)), "{crossed:?}");
                    cursor = Some(c)
                }
                None => break,
            }
        }
        parts_used += usize::from(in_part > 0);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40);
    assert!(parts_used >= 8, "40 organizations spread over the parts: {parts_used} used");
    // A part the store does not keep is refused, not read.
    let foreign = serde_json::from_value::<DuePartition>(serde_json::json!("DUE#999")).unwrap();
    assert!(matches!(store.list_due_integrations(now, &foreign, 3, None).await, Err(StoreError::InvalidCursor)));
}

pub(super) fn sync_job(o: &OrganizationId, trigger: SyncTrigger, now: DateTime<Utc>) -> SyncJob {
    SyncJob::queued(
        o.clone(),
        IntegrationId::new("int"),
        trigger,
        now - Duration::days(30),
        now + Duration::days(365),
        now,
    )
}

pub(super) async fn one_active_sync_job_per_organization_and_one_worker_per_turn(store: Arc<dyn Store>) {
    let now = Utc::now();
    let o = org("org-a");
    let first = sync_job(&o, SyncTrigger::Manual, now);
    assert_eq!(store.start_sync_job(&first, now).await.unwrap(), JobStart::Created(first.clone()));
    let second = sync_job(&o, SyncTrigger::Scheduled, now);
    match store.start_sync_job(&second, now).await.unwrap() {
        JobStart::AlreadyActive(active) => assert_eq!(active.id, first.id),
        other => panic!("a second job started while one was queued: {other:?}"),
    }
    assert_eq!(store.get_sync_job(&org("org-b")).await.unwrap(), None, "jobs are per organization");

    // Twenty deliveries of the same message at once: exactly one worker gets the lease.
    let message = first.message();
    let claims = futures::future::join_all((0..20).map(|_| {
        let (store, message, o) = (store.clone(), message.clone(), o.clone());
        async move {
            store
                .update_sync_job(&o, &message.job_id, &|j| j.claim(&message, now, now + Duration::seconds(60)))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(claims.iter().filter(|c| c.is_some()).count(), 1);
    let mut running = claims.into_iter().flatten().next().unwrap();
    assert_eq!(running.state, SyncJobState::Running);

    // Progress of the current turn is kept; the pause moves the turn on, so the old message is stale.
    running.report.events_seen = 42;
    running.checkpoint.page_token = Some("page-2".into());
    let snapshot = running.clone();
    assert!(store.update_sync_job(&o, &first.id, &|j| j.record_progress(&snapshot)).await.unwrap().is_some());
    running.pause(now, None);
    let paused = running.clone();
    store
        .update_sync_job(&o, &first.id, &|j| {
            *j = paused.clone();
            true
        })
        .await
        .unwrap();
    let resumed = store
        .update_sync_job(&o, &first.id, &|j| j.claim(&paused.message(), now, now + Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .update_sync_job(&o, &first.id, &|j| j.claim(&message, now, now + Duration::seconds(60)))
            .await
            .unwrap()
            .is_none(),
        "the previous turn's message finds the lease held"
    );
    assert_eq!(resumed.report.events_seen, 42);
    assert_eq!(resumed.checkpoint.page_token.as_deref(), Some("page-2"));

    // Finished, it blocks nothing; a reconnect's initial job replaces even an active one.
    let done = resumed.clone();
    store
        .update_sync_job(&o, &first.id, &|j| {
            *j = done.clone();
            j.finish(now, None);
            true
        })
        .await
        .unwrap();
    let third = sync_job(&o, SyncTrigger::Manual, now);
    assert!(matches!(store.start_sync_job(&third, now).await.unwrap(), JobStart::Created(_)));
    let initial = sync_job(&o, SyncTrigger::Initial, now);
    assert!(matches!(store.start_sync_job(&initial, now).await.unwrap(), JobStart::Created(_)));
    assert_eq!(store.get_sync_job(&o).await.unwrap().unwrap().id, initial.id);
    assert!(store.update_sync_job(&o, &third.id, &|_| true).await.unwrap().is_none(), "a replaced job takes no writes");
}

/// The schedule's one write per hand-out, and the handed-out job's one write when it ends.
pub(super) async fn a_scheduled_job_is_handed_out_once_and_recorded_in_place_of_the_job_read(store: Arc<dyn Store>) {
    let (o, now) = (org("org-a"), Utc::now());
    connected(&store, &o).await;
    let earlier = sync_job(&o, SyncTrigger::Manual, now - Duration::minutes(40));
    assert!(matches!(store.start_sync_job(&earlier, now).await.unwrap(), JobStart::Created(_)));
    store
        .update_sync_job(&o, &earlier.id, &|j| {
            j.finish(now - Duration::minutes(39), None);
            true
        })
        .await
        .unwrap()
        .unwrap();
    let due = store.get_integration(&o).await.unwrap().unwrap().next_sync_at.unwrap();
    let window = shared::domain::SyncWindow { days_past: 30, days_ahead: 365 };
    let next = now + Duration::minutes(30);

    // Ten ticks at once: one hands it out.
    let jobs: Vec<HandedOutJob> = (0..10).map(|_| HandedOutJob::new(IntegrationId::new("int"), window, now)).collect();
    let handed = futures::future::join_all(jobs.iter().map(|job| store.hand_out(&o, due, next, job))).await;
    let winners: Vec<&HandedOutJob> =
        jobs.iter().zip(&handed).filter(|(_, h)| *h.as_ref().unwrap()).map(|(j, _)| j).collect();
    assert_eq!(winners.len(), 1, "handed out once");
    let winner = winners[0].clone();
    assert!(!store.hand_out(&o, due, next, &jobs[0]).await.unwrap(), "its due time moved");
    assert!(all_due(&store, now).await.is_empty(), "off the schedule until the next interval");

    // One read gives both items; until recorded, the handed-out job is the current one.
    let (recorded, found) = store.get_sync_job_with_integration(&o).await.unwrap();
    let found = found.unwrap();
    assert_eq!(
        (recorded.as_ref().map(|j| j.id.as_str()), found.handed_out.as_ref()),
        (Some(earlier.id.as_str()), Some(&winner))
    );
    assert_eq!(found.next_sync_at, Some(next));
    let current = current_job(recorded, Some(&found), now).unwrap();
    assert_eq!(
        (current.id.as_str(), current.state, current.trigger),
        (winner.id.as_str(), SyncJobState::Queued, SyncTrigger::Scheduled)
    );

    // Recorded only in the place of the job read, and once.
    let mut job = winner.job(o.clone());
    job.finish(now, None);
    assert!(!store.record_job(&job, Some("another-job")).await.unwrap());
    assert!(store.record_job(&job, Some(&earlier.id)).await.unwrap());
    let twice = HandedOutJob::new(IntegrationId::new("int"), window, now).job(o.clone());
    assert!(!store.record_job(&twice, Some(&earlier.id)).await.unwrap(), "the job read is gone");
    let (recorded, found) = store.get_sync_job_with_integration(&o).await.unwrap();
    let current = current_job(recorded, found.as_ref(), now).unwrap();
    assert_eq!((current.id, current.state), (winner.id.clone(), SyncJobState::Succeeded));

    // Taken back (its message could not be sent): only by its id, due again.
    assert!(!store.withdraw_hand_out(&o, "another-job", Some(now)).await.unwrap());
    assert!(store.withdraw_hand_out(&o, &winner.id, Some(now)).await.unwrap());
    assert_eq!(store.get_integration(&o).await.unwrap().unwrap().handed_out, None);
    assert_eq!(all_due(&store, now).await.len(), 1, "due again");
}
