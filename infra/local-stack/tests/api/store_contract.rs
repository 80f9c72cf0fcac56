//! One contract for the store ports, run against the embedded store and against the DynamoDB
//! adapter on a DynamoDB-compatible server (moto) over the wire: same suite, same assertions.
//!
//! One file on purpose: the contract is the list of guarantees both adapters give; split, it
//! would no longer read as one list.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use shared::calendly::RateWindow;
use shared::crypto::Sealed;
use shared::domain::booking::{self, BookingPlan, Known, ProspectChange};
use shared::domain::quota::{Quota, QuotaTake};
use shared::domain::{
    BookingSnapshot, BookingStatus, CalendlyScope, ConnectedAccount, Email, FieldMap, HandedOutJob, Integration,
    IntegrationId, NoteStyle, NotificationId, OAuthState, OrganizationId, Prospect, ProspectId, SyncJob, SyncJobState,
    SyncTrigger, UserId, current_job,
};
use shared::store::{
    CLAIM_SETTLES, CommitConflict, CommitError, Connection, DEFAULT_DUE_SHARDS, DuePartition, JobStart, ProspectPatch,
    StateTake, Store, StoreError, SyncJobStore, TokenUpdate,
};
use std::sync::Arc;

fn org(name: &str) -> OrganizationId {
    OrganizationId::new(name)
}

fn snapshot(uuid: &str, email: &str, start: DateTime<Utc>) -> BookingSnapshot {
    BookingSnapshot {
        invitee_uri: format!("https://api.calendly.com/scheduled_events/E{uuid}/invitees/{uuid}"),
        invitee_uuid: uuid.into(),
        event_uri: format!("https://api.calendly.com/scheduled_events/E{uuid}"),
        event_uuid: format!("E{uuid}"),
        event_type_uri: None,
        event_name: Some("Découverte 30min".into()),
        start_time: start,
        end_time: start + Duration::minutes(30),
        status: BookingStatus::Active,
        invitee_email: email.into(),
        invitee_name: "John Doe".into(),
        invitee_first_name: None,
        invitee_last_name: None,
        invitee_phone: None,
        invitee_timezone: None,
        location: None,
        rescheduled: false,
        old_invitee_uri: None,
        new_invitee_uri: None,
        no_show: false,
        no_show_changed_at: None,
        cancel_reason: None,
        canceled_by: None,
        canceled_at: None,
        invitee_updated_at: "2026-01-10T10:00:00Z".parse().unwrap(),
        invitee_created_at: None,
        routing_form_submission: None,
        questions: Vec::new(),
        tracking: Default::default(),
        join_url: None,
        host: None,
        call_phone: None,
        guests: Vec::new(),
        no_show_uri: None,
    }
}

fn plan_new(o: &OrganizationId, snap: &BookingSnapshot, existing: Option<&Prospect>) -> BookingPlan {
    let known = Known { prospect_with_email: existing, ..Known::default() };
    let fields = FieldMap::default_for(CalendlyScope::User);
    let rules = booking::Rules { style: &NoteStyle::default(), fields: &fields, guests_as_prospects: false };
    booking::plan(o, &IntegrationId::new("int"), snap, known, rules, Utc::now()).unwrap()
}

fn prospect(o: &OrganizationId, email: Option<&str>, source: &str, created_at: DateTime<Utc>) -> Prospect {
    Prospect {
        id: ProspectId::generate(),
        organization_id: o.clone(),
        firstname: Some("Ada".into()),
        lastname: None,
        email: email.map(|e| Email::parse(e).unwrap()),
        phone: None,
        company: None,
        owner_email: None,
        owner_name: None,
        custom_fields: Default::default(),
        status: "new".into(),
        source: source.into(),
        notes: vec!["first".into()],
        created_at,
        updated_at: created_at,
    }
}

/// The organization's active integration, the one `plan_new`'s bookings come from (every
/// booking commit is conditioned on it).
async fn connected(store: &Arc<dyn Store>, o: &OrganizationId) {
    let mut active = integration(o, "int");
    active.calendly_user_uri = format!("https://api.calendly.com/users/of-{o}");
    store.save_connected_integration(active).await.unwrap();
}

fn integration(o: &OrganizationId, id: &str) -> Integration {
    let now = Utc::now();
    let account = ConnectedAccount {
        id: IntegrationId::new(id),
        organization_id: o.clone(),
        connected_by: UserId::new("u"),
        calendly_user_uri: format!("https://api.calendly.com/users/{id}"),
        calendly_organization_uri: "https://api.calendly.com/organizations/x".into(),
        email: "host@example.com".into(),
        name: "Host".into(),
        scheduling_url: None,
    };
    Integration {
        access_token: Sealed::from_stored("v1:a".into()),
        refresh_token: Sealed::from_stored("v1:r".into()),
        next_sync_at: Some(now - Duration::minutes(1)),
        ..Integration::connected(account, now + Duration::hours(2), now)
    }
}

async fn a_new_booking_is_recorded_once_among_twenty_concurrent_commits(store: Arc<dyn Store>) {
    let o = org("org-a");
    connected(&store, &o).await;
    let snap = snapshot("b1", "john@example.com", Utc::now());
    let commits = (0..20).map(|_| {
        let (store, plan) = (store.clone(), plan_new(&o, &snap, None));
        async move { store.commit_booking(&plan).await }
    });
    let results = futures::future::join_all(commits).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one commit wins");
    for r in results.into_iter().filter_map(Result::err) {
        assert!(
            matches!(r, CommitError::Conflict(CommitConflict::BookingChanged | CommitConflict::EmailClaimed)),
            "{r:?}"
        );
    }
    let p = store.find_prospect_by_email(&o, "john@example.com").await.unwrap().unwrap();
    assert_eq!(p.notes.len(), 1);
    assert_eq!(store.list_notifications(&o, 100, None).await.unwrap().items.len(), 1);
}

async fn one_prospect_per_email_and_appends_keep_order(store: Arc<dyn Store>) {
    let o = org("org-a");
    connected(&store, &o).await;
    let first = plan_new(&o, &snapshot("b1", "John@Example.com", Utc::now()), None);
    store.commit_booking(&first).await.unwrap();
    // Another booking planned as if the email were unknown loses on the claim.
    let stale = plan_new(&o, &snapshot("b2", "john@example.com", Utc::now()), None);
    assert!(matches!(store.commit_booking(&stale).await, Err(CommitError::Conflict(CommitConflict::EmailClaimed))));
    let existing = store.find_prospect_by_email(&o, "john@example.com").await.unwrap().unwrap();
    let second = plan_new(&o, &snapshot("b2", "john@example.com", Utc::now() + Duration::days(1)), Some(&existing));
    assert!(matches!(second.prospect, ProspectChange::Append { .. }));
    store.commit_booking(&second).await.unwrap();
    let p = store.get_prospect(&o, &existing.id).await.unwrap().unwrap();
    // The first booking's note, then the second's (their dates differ: the order shows).
    let (ProspectChange::Create(created), ProspectChange::Append { notes: appended, .. }) =
        (&first.prospect, &second.prospect)
    else {
        panic!("a create, then an append");
    };
    assert_ne!(created.notes, *appended);
    assert_eq!(p.notes, [created.notes.clone(), appended.clone()].concat());
    // A re-commit of the same revision-1 booking is refused by the revision guard.
    assert!(matches!(store.commit_booking(&second).await, Err(CommitError::Conflict(CommitConflict::BookingChanged))));
}

async fn appending_to_a_deleted_prospect_is_refused(store: Arc<dyn Store>) {
    let o = org("org-a");
    connected(&store, &o).await;
    let p = prospect(&o, Some("ada@example.com"), "manual", Utc::now());
    store.create_prospect(&p).await.unwrap();
    let plan = plan_new(&o, &snapshot("b1", "ada@example.com", Utc::now()), Some(&p));
    assert!(store.delete_prospect(&o, &p.id).await.unwrap());
    assert!(matches!(store.commit_booking(&plan).await, Err(CommitError::Conflict(CommitConflict::ProspectMissing))));
    assert!(store.get_booking(&o, "b1").await.unwrap().is_none(), "nothing of the transaction was written");
}

async fn oauth_states_are_single_use_and_expire(store: Arc<dyn Store>) {
    let now = Utc::now();
    let state = |s: &str, expires_at| OAuthState {
        state: s.into(),
        organization_id: org("org-a"),
        user_id: UserId::new("u"),
        pkce_verifier: Sealed::from_stored("v1:x".into()),
        expires_at,
        scope: Default::default(),
    };
    store.put_oauth_state(&state("s1", now + Duration::minutes(10)), now).await.unwrap();
    store.put_oauth_state(&state("s2", now - Duration::seconds(1)), now).await.unwrap();
    let (a, u) = (org("org-a"), UserId::new("u"));
    // Another organization, or another user of the same one, can't take it, nor burn it.
    assert!(matches!(store.take_oauth_state("s1", &org("org-b"), &u, now).await.unwrap(), StateTake::NotYours));
    assert!(matches!(store.take_oauth_state("s1", &a, &UserId::new("v"), now).await.unwrap(), StateTake::NotYours));
    match store.take_oauth_state("s1", &a, &u, now).await.unwrap() {
        StateTake::Taken(taken) => assert_eq!(taken.organization_id, a),
        other => panic!("the owner could not take its state: {other:?}"),
    }
    assert!(matches!(store.take_oauth_state("s1", &a, &u, now).await.unwrap(), StateTake::Absent), "single use");
    assert!(matches!(store.take_oauth_state("s2", &a, &u, now).await.unwrap(), StateTake::Absent), "expired");
    assert!(matches!(store.take_oauth_state("never", &a, &u, now).await.unwrap(), StateTake::Absent));
}

async fn a_calendly_user_is_claimed_by_one_active_organization(store: Arc<dyn Store>) {
    let now = Utc::now();
    let user = "https://api.calendly.com/users/int-a";
    let (a, b) = (org("org-a"), org("org-b"));
    store.save_connected_integration(integration(&a, "int-a")).await.unwrap();
    // Twenty organizations race for one free account: one wins.
    let racers = (0..20).map(|i| {
        let store = store.clone();
        async move {
            store.claim_calendly_user("https://api.calendly.com/users/free", &org(&format!("r{i}")), now).await.unwrap()
        }
    });
    assert_eq!(futures::future::join_all(racers).await.into_iter().filter(|w| *w).count(), 1);

    assert!(store.claim_calendly_user(user, &a, now).await.unwrap());
    assert!(store.claim_calendly_user(user, &a, now).await.unwrap(), "claiming again is harmless");
    let later = now + CLAIM_SETTLES + Duration::minutes(1);
    assert!(!store.claim_calendly_user(user, &b, later).await.unwrap(), "held while org-a is connected to it");
    store.deactivate_integration(&a, now).await.unwrap();
    assert!(!store.claim_calendly_user(user, &b, now).await.unwrap(), "a fresh claim is a connect under way");
    assert!(store.claim_calendly_user(user, &b, later).await.unwrap(), "a claim left behind is taken over");
    store.save_connected_integration(integration(&b, "int-a")).await.unwrap();
    store.release_calendly_user(user, &a).await.unwrap();
    assert!(!store.claim_calendly_user(user, &org("org-c"), later).await.unwrap(), "only the owner releases");
    store.release_calendly_user(user, &b).await.unwrap();
    assert!(store.claim_calendly_user(user, &org("org-c"), now).await.unwrap(), "released");
}

async fn one_refresh_lease_at_a_time_and_tokens_swap_by_version(store: Arc<dyn Store>) {
    let o = org("org-a");
    store.save_connected_integration(integration(&o, "int-1")).await.unwrap();
    let now = Utc::now();
    let attempts = (0..10).map(|_| {
        let (store, o) = (store.clone(), o.clone());
        async move { store.try_acquire_refresh_lease(&o, 1, now, now + Duration::seconds(30)).await.unwrap() }
    });
    let won = futures::future::join_all(attempts).await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
    let update = TokenUpdate {
        access_token: Sealed::from_stored("v1:a2".into()),
        refresh_token: Sealed::from_stored("v1:r2".into()),
        expires_at: now + Duration::hours(2),
    };
    assert!(!store.store_refreshed_tokens(&o, 7, update.clone()).await.unwrap(), "stale version refused");
    assert!(store.store_refreshed_tokens(&o, 1, update.clone()).await.unwrap());
    let i = store.get_integration(&o).await.unwrap().unwrap();
    assert_eq!(i.token_version, 2);
    assert!(i.refresh_lease_until.is_none());
    assert_eq!(i.refresh_token.as_stored(), "v1:r2");
    // A reconnect moves the version past any refresh in flight.
    let saved = store.save_connected_integration(integration(&o, "int-1")).await.unwrap();
    assert_eq!(saved.token_version, 3);
    assert!(!store.store_refreshed_tokens(&o, 2, update).await.unwrap());
}

async fn integrations_are_found_by_id_user_and_due_time(store: Arc<dyn Store>) {
    let now = Utc::now();
    let (a, b, c) = (org("org-a"), org("org-b"), org("org-c"));
    store.save_connected_integration(integration(&a, "int-a")).await.unwrap();
    store.save_connected_integration(integration(&b, "int-b")).await.unwrap();
    store.save_connected_integration(integration(&c, "int-c")).await.unwrap();
    store.update_sync_settings(&b, false, 30, None).await.unwrap();
    store.mark_needs_reconnect(&c, 1).await.unwrap();
    // Auto-sync off (b) stays on the schedule for its webhook check; needing reconnection (c) does not.
    let mut due: Vec<OrganizationId> = all_due(&store, now).await.into_iter().map(|i| i.organization_id).collect();
    due.sort();
    assert_eq!(due, vec![a.clone(), b.clone()]);
    store.record_sync(&b, None, now + Duration::days(1)).await.unwrap();
    store.record_sync(&a, Some(now), now + Duration::minutes(30)).await.unwrap();
    assert!(all_due(&store, now).await.is_empty());
    assert_eq!(all_due(&store, now + Duration::minutes(31)).await.len(), 1);
    // The scheduler moves only the next sync: the last one stays as it was.
    store.record_sync(&a, None, now + Duration::minutes(60)).await.unwrap();
    assert_eq!(
        store.get_integration(&a).await.unwrap().unwrap().last_synced_at.map(|t| t.timestamp()),
        Some(now.timestamp())
    );
    assert!(all_due(&store, now + Duration::minutes(31)).await.is_empty());

    assert_eq!(store.get_integration_by_id(&IntegrationId::new("int-b")).await.unwrap().unwrap().organization_id, b);
    let by_user = store.find_integration_by_calendly_user("https://api.calendly.com/users/int-a").await.unwrap();
    assert_eq!(by_user.unwrap().organization_id, a);
    store.deactivate_integration(&a, now).await.unwrap();
    assert!(store.find_integration_by_calendly_user("https://api.calendly.com/users/int-a").await.unwrap().is_none());
    assert!(all_due(&store, now + Duration::hours(2)).await.is_empty());
    assert!(!store.get_integration(&a).await.unwrap().unwrap().is_active, "soft-deleted, not gone");
}

async fn prospects_keep_emails_unique_and_page_per_organization(store: Arc<dyn Store>) {
    let (a, b) = (org("org-a"), org("org-b"));
    let t0 = Utc::now();
    let ids: Vec<ProspectId> = futures::future::join_all((0..5).map(|i| {
        let (store, a) = (store.clone(), a.clone());
        async move {
            let p = prospect(
                &a,
                Some(&format!("p{i}@example.com")),
                if i == 0 { "calendly" } else { "manual" },
                t0 + Duration::seconds(i),
            );
            store.create_prospect(&p).await.unwrap();
            p.id
        }
    }))
    .await;
    assert!(matches!(
        store.create_prospect(&prospect(&a, Some("P1@EXAMPLE.com"), "manual", t0)).await,
        Err(StoreError::Conflict(_))
    ));
    store.create_prospect(&prospect(&b, Some("p1@example.com"), "manual", t0)).await.unwrap();

    let page1 = store.list_prospects(&a, None, 3, None).await.unwrap();
    assert_eq!(page1.items.len(), 3);
    assert_eq!(page1.items[0].id, ids[4], "newest first");
    let page2 = store.list_prospects(&a, None, 3, page1.next_cursor.as_deref()).await.unwrap();
    assert_eq!(page2.items.len(), 2);
    assert!(
        page2.next_cursor.is_none()
            || store.list_prospects(&a, None, 3, page2.next_cursor.as_deref()).await.unwrap().items.is_empty()
    );
    assert!(
        matches!(store.list_prospects(&b, None, 3, page1.next_cursor.as_deref()).await, Err(StoreError::InvalidCursor)),
        "no cursor crosses tenants"
    );
    assert_eq!(store.list_prospects(&a, Some("calendly"), 10, None).await.unwrap().items.len(), 1);

    // Moving an email moves its claim; deleting frees it.
    let patch = ProspectPatch { email: Some(Some(Email::parse("moved@example.com").unwrap())), ..Default::default() };
    store.update_prospect(&a, &ids[1], &patch, Utc::now()).await.unwrap();
    store.create_prospect(&prospect(&a, Some("p1@example.com"), "manual", t0)).await.unwrap();
    let clash = ProspectPatch { email: Some(Some(Email::parse("p2@example.com").unwrap())), ..Default::default() };
    assert!(matches!(store.update_prospect(&a, &ids[3], &clash, Utc::now()).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.update_prospect(&b, &ids[3], &ProspectPatch::default(), Utc::now()).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.delete_prospect(&a, &ids[2]).await.unwrap());
    assert!(!store.delete_prospect(&a, &ids[2]).await.unwrap());
    store.create_prospect(&prospect(&a, Some("p2@example.com"), "manual", t0)).await.unwrap();
}

async fn notifications_are_newest_first_and_marked_read_per_organization(store: Arc<dyn Store>) {
    let o = org("org-a");
    connected(&store, &o).await;
    for (i, uuid) in ["n1", "n2", "n3"].iter().enumerate() {
        let plan = plan_new(&o, &snapshot(uuid, &format!("{uuid}@example.com"), Utc::now()), None);
        store.commit_booking(&plan).await.unwrap();
        if i < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let page = store.list_notifications(&o, 2, None).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.items[0].created_at >= page.items[1].created_at);
    assert!(page.items[0].meta["calendly_invitee_uri"].as_str().unwrap().ends_with("n3"));
    let rest = store.list_notifications(&o, 2, page.next_cursor.as_deref()).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    let id = page.items[0].id.clone();
    assert!(!store.mark_notification_read(&org("org-b"), &id).await.unwrap());
    assert!(store.mark_notification_read(&o, &id).await.unwrap());
    assert!(store.list_notifications(&o, 1, None).await.unwrap().items[0].read);
    assert!(!store.mark_notification_read(&o, &NotificationId::new("nope")).await.unwrap());
}

async fn connections_are_per_organization_and_expire(store: Arc<dyn Store>) {
    let now = Utc::now();
    let conn = |id: &str, o: &str, expires_at| Connection {
        connection_id: id.into(),
        organization_id: org(o),
        user_id: UserId::new("u"),
        connected_at: now,
        expires_at,
    };
    store.put_connection(&conn("c1", "org-a", now + Duration::hours(2))).await.unwrap();
    store.put_connection(&conn("c2", "org-a", now - Duration::seconds(1))).await.unwrap();
    store.put_connection(&conn("c3", "org-b", now + Duration::hours(2))).await.unwrap();
    let live = store.live_connections(&org("org-a"), now).await.unwrap();
    assert_eq!(live.iter().map(|c| c.connection_id.as_str()).collect::<Vec<_>>(), vec!["c1"]);
    assert_eq!(store.remove_connection("c1").await.unwrap().unwrap().organization_id, org("org-a"));
    assert!(store.remove_connection("c1").await.unwrap().is_none());
    assert!(store.live_connections(&org("org-a"), now).await.unwrap().is_empty());
    assert_eq!(store.live_connections(&org("org-b"), now).await.unwrap().len(), 1);
}

async fn settings_merge_without_losing_concurrent_keys(store: Arc<dyn Store>) {
    let o = org("org-a");
    let merges = (0..8).map(|i| {
        let (store, o) = (store.clone(), o.clone());
        async move {
            let patch = json!({ format!("k{i}"): i }).as_object().unwrap().clone();
            store.merge_settings(&o, &patch).await.unwrap();
        }
    });
    futures::future::join_all(merges).await;
    let calendly = json!({ "enabled": true, "oauth_connected": true }).as_object().unwrap().clone();
    store.merge_calendly_settings(&o, &calendly).await.unwrap();
    let off = json!({ "enabled": false }).as_object().unwrap().clone();
    store.merge_calendly_settings(&o, &off).await.unwrap();
    store.merge_settings(&o, json!({ "k0": null }).as_object().unwrap()).await.unwrap();
    let settings = store.get_organization(&o).await.unwrap().settings;
    assert_eq!(settings.len(), 8, "{settings:?}");
    assert_eq!(settings["calendly"], json!({ "enabled": false, "oauth_connected": true }));
    assert!(!settings.contains_key("k0"));
}

async fn fingerprints_and_bookings_read_back_in_bulk_and_in_order(store: Arc<dyn Store>) {
    let o = org("org-a");
    connected(&store, &o).await;
    let uuids: Vec<String> = (0..130).map(|i| format!("ev{i}")).collect();
    for uuid in uuids.iter().step_by(2) {
        store.put_event_fingerprint(&o, uuid, &format!("fp-{uuid}"), None).await.unwrap();
    }
    let found = store.event_fingerprints(&o, &uuids).await.unwrap();
    assert_eq!(found.len(), 65);
    assert_eq!(found["ev128"], "fp-ev128");
    assert!(store.event_fingerprints(&org("org-b"), &uuids).await.unwrap().is_empty());

    let base = Utc::now();
    for i in 0..5 {
        let plan =
            plan_new(&o, &snapshot(&format!("bk{i}"), &format!("bk{i}@example.com"), base + Duration::days(i)), None);
        store.commit_booking(&plan).await.unwrap();
    }
    let page = store.list_bookings(&o, 3, None).await.unwrap();
    assert_eq!(page.items.iter().map(|b| b.id().to_string()).collect::<Vec<_>>(), vec!["bk4", "bk3", "bk2"]);
    let rest = store.list_bookings(&o, 3, page.next_cursor.as_deref()).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(store.list_bookings(&org("org-b"), 3, None).await.unwrap().items.is_empty());
}

/// Every due integration, over every part of the schedule.
async fn all_due(store: &Arc<dyn Store>, now: DateTime<Utc>) -> Vec<shared::store::Scheduled> {
    let mut due = Vec::new();
    for partition in store.due_partitions() {
        due.extend(store.list_due_integrations(now, &partition, 100, None).await.unwrap().items);
    }
    due
}

async fn due_integrations_page_through_every_one_of_them(store: Arc<dyn Store>) {
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

fn sync_job(o: &OrganizationId, trigger: SyncTrigger, now: DateTime<Utc>) -> SyncJob {
    SyncJob::queued(
        o.clone(),
        IntegrationId::new("int"),
        trigger,
        now - Duration::days(30),
        now + Duration::days(365),
        now,
    )
}

async fn one_active_sync_job_per_organization_and_one_worker_per_turn(store: Arc<dyn Store>) {
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
async fn a_scheduled_job_is_handed_out_once_and_recorded_in_place_of_the_job_read(store: Arc<dyn Store>) {
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

async fn rate_windows_keep_the_newest_observation(store: Arc<dyn Store>) {
    let now = Utc::now();
    let user = "https://api.calendly.com/users/HOST";
    assert_eq!(store.get_rate_window(user).await.unwrap(), None);
    let window = RateWindow { remaining: 300, resets_at: now + Duration::seconds(40) };
    store.record_rate_window(user, &window).await.unwrap();
    // An older, fuller observation of the same window (a slow worker) does not undo a newer one.
    let spent = RateWindow { remaining: 3, resets_at: now + Duration::seconds(40) };
    store.record_rate_window(user, &spent).await.unwrap();
    store.record_rate_window(user, &window).await.unwrap();
    assert_eq!(store.get_rate_window(user).await.unwrap(), Some(spent));
    assert!(spent.spent_at(now));
    // The next window replaces it.
    let next = RateWindow { remaining: 499, resets_at: now + Duration::seconds(100) };
    store.record_rate_window(user, &next).await.unwrap();
    assert_eq!(store.get_rate_window(user).await.unwrap(), Some(next));
    assert_eq!(store.get_rate_window("https://api.calendly.com/users/OTHER").await.unwrap(), None);
}

async fn a_quota_counts_each_use_once_per_window_and_subject(store: Arc<dyn Store>) {
    let quota = Quota { name: "contract", limit: 5, window: Duration::seconds(60) };
    let now = Utc::now();
    let (a, b) = (org("org-a"), org("org-b"));
    // Twenty concurrent uses of a quota of five: five granted, whatever the interleaving.
    let racers = (0..20).map(|_| {
        let (store, a) = (store.clone(), a.clone());
        async move { store.take_quota(&a, &quota, "u1", now).await.unwrap() }
    });
    let takes = futures::future::join_all(racers).await;
    assert_eq!(takes.iter().filter(|t| **t == QuotaTake::Granted).count(), 5, "{takes:?}");
    let refused = store.take_quota(&a, &quota, "u1", now + Duration::seconds(30)).await.unwrap();
    assert_eq!(refused, QuotaTake::Exhausted { retry_at: now + Duration::seconds(60) });
    // Another subject, another organization: their own windows.
    assert_eq!(store.take_quota(&a, &quota, "u2", now).await.unwrap(), QuotaTake::Granted);
    assert_eq!(store.take_quota(&b, &quota, "u1", now).await.unwrap(), QuotaTake::Granted);
    // Past the window: counted afresh.
    let later = now + Duration::seconds(61);
    assert_eq!(store.take_quota(&a, &quota, "u1", later).await.unwrap(), QuotaTake::Granted);
}

/// A booking commit lands only while its integration is the organization's active one: a sync
/// or a delivery in flight at a disconnect (or a reconnect as another integration) writes nothing.
async fn a_commit_for_an_integration_no_longer_active_writes_nothing(store: Arc<dyn Store>) {
    let o = org("org-a");
    let plan = plan_new(&o, &snapshot("b1", "john@example.com", Utc::now()), None);
    let refused = store.commit_booking(&plan).await;
    assert!(matches!(refused, Err(CommitError::Conflict(CommitConflict::IntegrationInactive))), "none: {refused:?}");
    connected(&store, &o).await;
    store.deactivate_integration(&o, Utc::now()).await.unwrap();
    let refused = store.commit_booking(&plan).await;
    assert!(matches!(refused, Err(CommitError::Conflict(CommitConflict::IntegrationInactive))), "off: {refused:?}");
    let mut other = integration(&o, "int-2");
    other.calendly_user_uri = "https://api.calendly.com/users/other".into();
    store.save_connected_integration(other).await.unwrap();
    let refused = store.commit_booking(&plan).await;
    assert!(matches!(refused, Err(CommitError::Conflict(CommitConflict::IntegrationInactive))), "another: {refused:?}");
    assert!(store.get_booking(&o, "b1").await.unwrap().is_none(), "nothing of it written");
    assert!(store.find_prospect_by_email(&o, "john@example.com").await.unwrap().is_none());
    assert!(store.list_notifications(&o, 10, None).await.unwrap().items.is_empty());
    connected(&store, &o).await;
    store.commit_booking(&plan).await.unwrap();
}

/// The person index follows commits, the suppression refuses them (under the current key or the
/// previous one of a roll), and lifting it lets them through again.
async fn a_suppressed_person_is_refused_by_every_commit_until_lifted(store: Arc<dyn Store>) {
    use shared::domain::PersonKeys;
    let o = org("org-a");
    connected(&store, &o).await;
    let person = PersonKeys { current: "hash-now".into(), previous: Some("hash-before".into()) };
    let with_person = |mut plan: BookingPlan| {
        plan.person = Some(person.clone());
        plan
    };
    let first = with_person(plan_new(&o, &snapshot("b1", "john@example.com", Utc::now()), None));
    store.commit_booking(&first).await.unwrap();
    let index = store.person_index(&o, &person).await.unwrap();
    assert_eq!(index.bookings, vec!["b1".to_string()]);
    assert_eq!(index.notifications, vec![first.notification.as_ref().unwrap().id.clone()]);
    assert_eq!(store.person_index(&org("org-b"), &person).await.unwrap(), Default::default(), "per organization");

    let suppressed = store.suppress_person(&o, &person, Utc::now()).await.unwrap();
    assert_eq!(suppressed, index, "what the commits before it indexed");
    let second = with_person(plan_new(&o, &snapshot("b2", "john2@example.com", Utc::now()), None));
    let refused = store.commit_booking(&second).await;
    assert!(matches!(refused, Err(CommitError::Conflict(CommitConflict::Suppressed))), "{refused:?}");
    assert!(store.get_booking(&o, "b2").await.unwrap().is_none(), "nothing of it written");
    store.forget_person_index(&o, &person).await.unwrap();
    assert_eq!(store.person_index(&o, &person).await.unwrap(), Default::default());

    // After a key roll, the old key's suppression still holds.
    let rolled = PersonKeys { current: "hash-next".into(), previous: Some("hash-now".into()) };
    let mut third = plan_new(&o, &snapshot("b3", "john3@example.com", Utc::now()), None);
    third.person = Some(rolled.clone());
    let refused = store.commit_booking(&third).await;
    assert!(matches!(refused, Err(CommitError::Conflict(CommitConflict::Suppressed))), "{refused:?}");

    assert!(store.lift_suppression(&o, &rolled).await.unwrap());
    assert!(!store.lift_suppression(&o, &rolled).await.unwrap(), "idempotent");
    store.commit_booking(&third).await.unwrap();
}

async fn the_ledger_counts_by_the_hour_and_a_notice_is_once_per_key(store: Arc<dyn Store>) {
    use shared::domain::ledger::WebhookHealth;
    use shared::domain::{Notification, NotificationKind};
    let o = org("org-a");
    connected(&store, &o).await;
    let now = Utc::now();
    for _ in 0..3 {
        store.record_delivery(&o, now - Duration::hours(2)).await.unwrap();
    }
    store.record_delivery(&o, now).await.unwrap();
    store.record_delivery(&o, now - Duration::days(2)).await.unwrap();
    // A miss is counted by its booking's commit, and only if the commit holds.
    let booked_at = now - Duration::minutes(30);
    let mut missed = plan_new(&o, &snapshot("b1", "john@example.com", now), None);
    missed.missed_delivery = Some(booked_at);
    store.commit_booking(&missed).await.unwrap();
    assert!(store.commit_booking(&missed).await.is_err(), "the same booking again");
    let health = WebhookHealth::from_hours(&store.ledger_hours(&o).await.unwrap(), now);
    assert_eq!(health.deliveries_24h, 4);
    assert_eq!(health.missed_24h, 1);
    assert_eq!(health.last_delivery_at.map(|t| t.timestamp()), Some(now.timestamp()));
    assert_eq!(health.missed_since.map(|t| t.timestamp()), Some(booked_at.timestamp()));
    assert!(store.ledger_hours(&org("org-b")).await.unwrap().is_empty(), "per organization");

    let notice = |text: &str| {
        Notification::new(o.clone(), NotificationKind::CalendlyWebhookGaps, "t", text.into(), json!({}), Utc::now())
    };
    let once = |n: Notification| {
        let store = store.clone();
        async move { store.add_notification_once(&n, "webhook-gaps-day").await.unwrap() }
    };
    let added = futures::future::join_all((0..5).map(|i| once(notice(&format!("n{i}"))))).await;
    assert_eq!(added.iter().filter(|a| **a).count(), 1, "{added:?}");
    let page = store.list_notifications(&o, 10, None).await.unwrap();
    assert_eq!(page.items.iter().filter(|n| n.kind == NotificationKind::CalendlyWebhookGaps).count(), 1);
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(shared::store::MemoryStore::new())).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(local_stack::dynamo::test_store().await)).await;
                }
            )*
        }
    };
}

contract!(
    a_new_booking_is_recorded_once_among_twenty_concurrent_commits,
    one_prospect_per_email_and_appends_keep_order,
    appending_to_a_deleted_prospect_is_refused,
    oauth_states_are_single_use_and_expire,
    a_calendly_user_is_claimed_by_one_active_organization,
    one_refresh_lease_at_a_time_and_tokens_swap_by_version,
    integrations_are_found_by_id_user_and_due_time,
    prospects_keep_emails_unique_and_page_per_organization,
    notifications_are_newest_first_and_marked_read_per_organization,
    connections_are_per_organization_and_expire,
    settings_merge_without_losing_concurrent_keys,
    fingerprints_and_bookings_read_back_in_bulk_and_in_order,
    due_integrations_page_through_every_one_of_them,
    one_active_sync_job_per_organization_and_one_worker_per_turn,
    a_scheduled_job_is_handed_out_once_and_recorded_in_place_of_the_job_read,
    rate_windows_keep_the_newest_observation,
    a_quota_counts_each_use_once_per_window_and_subject,
    a_suppressed_person_is_refused_by_every_commit_until_lifted,
    a_commit_for_an_integration_no_longer_active_writes_nothing,
    the_ledger_counts_by_the_hour_and_a_notice_is_once_per_key,
);

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
