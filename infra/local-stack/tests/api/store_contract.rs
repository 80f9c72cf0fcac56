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

mod dynamodb_only;
mod limits_and_privacy;
mod schedule_and_jobs;
use limits_and_privacy::*;
use schedule_and_jobs::*;
