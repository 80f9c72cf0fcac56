//! What only DynamoDB has: items of earlier layouts, copies remembered across processes, and
//! a function's grant.

use super::*;

/// A process starts a change of a sync job from the copy it wrote last (no read): another
/// process's write since is never overwritten, and a change refused on that copy is decided
/// again on what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_job_copy_never_overwrites_another_process_write() {
    let a = local_stack::dynamo::test_store().await;
    let b = shared::store::DynamoStore::new(a.client().clone(), a.table());
    let (o, now) = (org("org-a"), Utc::now());
    let first = sync_job(&o, SyncTrigger::Manual, now);
    assert!(matches!(a.start_sync_job(&first, now).await.unwrap(), JobStart::Created(_)));
    let retries = |n: u32| {
        move |j: &mut SyncJob| {
            j.retries = n;
            true
        }
    };
    b.update_sync_job(&o, &first.id, &retries(7)).await.unwrap().unwrap();
    let bumped = a.update_sync_job(&o, &first.id, &|j| {
        j.retries += 1;
        true
    });
    assert_eq!(bumped.await.unwrap().unwrap().retries, 8, "b's write is the base of a's change");
    // Refused on a's copy (retries 8), accepted on the stored one (b wrote 5 since).
    b.update_sync_job(&o, &first.id, &retries(5)).await.unwrap().unwrap();
    let only_after_five = a.update_sync_job(&o, &first.id, &|j| {
        let ours = j.retries == 5;
        j.retries = 6;
        ours
    });
    assert_eq!(only_after_five.await.unwrap().map(|j| j.retries), Some(6));
    // Replaced by another process's job: a's copy of the first names a job that is gone.
    let second = sync_job(&o, SyncTrigger::Initial, now);
    assert!(matches!(b.start_sync_job(&second, now).await.unwrap(), JobStart::Created(_)));
    assert!(a.update_sync_job(&o, &first.id, &retries(9)).await.unwrap().is_none());
    let stored = b.get_sync_job(&o).await.unwrap().unwrap();
    assert_eq!((stored.id, stored.retries), (second.id, second.retries));
}

/// Integration items written before the schedule had an item of its own carry the due index's
/// keys themselves (in the unsharded part, or in their shard): the tick still finds each,
/// hands it out once, and its entry moves onto a schedule item; one rewritten before any tick
/// met it keeps its place too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_of_the_layout_before_stay_on_the_schedule_and_move_onto_their_own_item() {
    use shared::store::dynamodb::item::to_item;
    use shared::store::dynamodb::keys::time_sort_key;
    let dynamo = local_stack::dynamo::test_store().await;
    let now = Utc::now();
    let legacy = [
        (org("org-old-a"), DuePartition::unsharded()),
        (org("org-old-b"), DuePartition::of(&org("org-old-b"), DEFAULT_DUE_SHARDS)),
    ];
    for (o, part) in &legacy {
        let old = integration(o, &format!("int-{o}"));
        let due = time_sort_key(old.next_sync_at.unwrap(), o.as_str());
        let keys = [
            ("pk", format!("ORG#{o}")),
            ("sk", "CALENDLY".to_string()),
            ("gsi3pk", part.as_str().to_string()),
            ("gsi3sk", due),
        ];
        let mut item = to_item(&old, &keys).unwrap();
        item.insert("item_version".into(), aws_sdk_dynamodb::types::AttributeValue::N("1".into()));
        dynamo.client().put_item().table_name(dynamo.table()).set_item(Some(item)).send().await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(dynamo);
    // B is rewritten (a settings change) before any tick: it keeps its place on the schedule.
    store.set_retention(&legacy[1].0, Some(30)).await.unwrap();

    let due = all_due(&store, now).await;
    let mut orgs: Vec<&str> = due.iter().map(|d| d.organization_id.as_str()).collect();
    orgs.sort();
    assert_eq!(orgs, vec!["org-old-a", "org-old-b"], "each found once");
    let window = shared::domain::SyncWindow { days_past: 30, days_ahead: 365 };
    for entry in &due {
        let job = HandedOutJob::new(entry.integration_id.clone(), window, now);
        let next = now + Duration::minutes(30);
        assert!(store.hand_out(&entry.organization_id, entry.due(), next, &job).await.unwrap());
        let (_, found) = store.get_sync_job_with_integration(&entry.organization_id).await.unwrap();
        let found = found.unwrap();
        assert_eq!((found.handed_out, found.next_sync_at), (Some(job), Some(next)));
    }
    assert!(all_due(&store, now).await.is_empty(), "no entry left behind in the layout before");
    assert_eq!(all_due(&store, now + Duration::minutes(31)).await.len(), 2);
}

/// Connections stored before the roster (an item each, and a reverse record naming only the
/// organization) are still pushed to: the first read moves them onto the roster, beside any
/// connection opened since, and `$disconnect` removes one of either layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_of_the_layout_before_are_listed_once_with_the_new_ones_and_removed_alike() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamo = local_stack::dynamo::test_store().await;
    let now = Utc::now();
    let expires = (now + Duration::hours(2)).timestamp().to_string();
    for id in ["old-1", "old-2"] {
        let connection = [
            ("pk", "ORG#org-a".to_string()),
            ("sk", format!("CONN#{id}")),
            ("connection_id", id.to_string()),
            ("organization_id", "org-a".to_string()),
            ("user_id", "u".to_string()),
        ];
        let owner =
            [("pk", format!("CONN#{id}")), ("sk", "CONN".to_string()), ("organization_id", "org-a".to_string())];
        for (fields, with_time) in [(&connection[..], true), (&owner[..], false)] {
            let mut item: std::collections::HashMap<String, AttributeValue> =
                fields.iter().map(|(k, v)| (k.to_string(), AttributeValue::S(v.clone()))).collect();
            item.insert("ttl".into(), AttributeValue::N(expires.clone()));
            if with_time {
                item.insert("connected_at".into(), AttributeValue::N(now.timestamp_millis().to_string()));
            }
            dynamo.client().put_item().table_name(dynamo.table()).set_item(Some(item)).send().await.unwrap();
        }
    }
    let store: Arc<dyn Store> = Arc::new(dynamo);
    let fresh = Connection {
        connection_id: "new-1".into(),
        organization_id: org("org-a"),
        user_id: UserId::new("u"),
        connected_at: now,
        expires_at: now + Duration::hours(2),
    };
    store.put_connection(&fresh).await.unwrap();
    let ids = |list: Vec<Connection>| {
        let mut ids: Vec<String> = list.into_iter().map(|c| c.connection_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(store.live_connections(&org("org-a"), now).await.unwrap()), ["new-1", "old-1", "old-2"]);
    assert_eq!(ids(store.live_connections(&org("org-a"), now).await.unwrap()), ["new-1", "old-1", "old-2"]);
    let removed = store.remove_connection("old-1").await.unwrap().expect("known");
    assert_eq!((removed.organization_id, removed.user_id), (org("org-a"), UserId::new("u")));
    assert_eq!(
        store.remove_connection("new-1").await.unwrap().map(|c| c.expires_at.timestamp()),
        Some(fresh.expires_at.timestamp())
    );
    assert_eq!(ids(store.live_connections(&org("org-a"), now).await.unwrap()), ["old-2"]);
    assert!(store.remove_connection("old-1").await.unwrap().is_none());
}

/// A store given a grant refuses what the grant leaves out, as IAM does on AWS (the local
/// stack runs each function on its own grant), a transaction item by item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_refuses_what_its_grant_leaves_out_as_iam_would() {
    let dynamo = local_stack::dynamo::test_store().await;
    let reader: Arc<dyn Store> = Arc::new(dynamo.clone().granted_only(&["dynamodb:GetItem", "dynamodb:Query"]));
    assert!(reader.get_integration(&org("org-a")).await.unwrap().is_none(), "reads pass");
    let patch = json!({ "k": 1 }).as_object().unwrap().clone();
    let refused = reader.merge_settings(&org("org-a"), &patch).await.map(|_| ());
    assert!(
        matches!(&refused, Err(StoreError::Misconfigured(m)) if m.contains("AccessDeniedException")),
        "{refused:?}"
    );
    let now = Utc::now();
    let connection = Connection {
        connection_id: "c1".into(),
        organization_id: org("org-a"),
        user_id: UserId::new("u"),
        connected_at: now,
        expires_at: now + Duration::hours(2),
    };
    // A put and an update in one transaction: the update is not granted, so nothing is written.
    let putter: Arc<dyn Store> = Arc::new(dynamo.clone().granted_only(&["dynamodb:PutItem"]));
    assert!(matches!(putter.put_connection(&connection).await, Err(StoreError::Misconfigured(_))));
    let full: Arc<dyn Store> = Arc::new(dynamo);
    assert!(full.live_connections(&org("org-a"), now).await.unwrap().is_empty());
    assert!(full.remove_connection("c1").await.unwrap().is_none(), "no reverse record either");
}
