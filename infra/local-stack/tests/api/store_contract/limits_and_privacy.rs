//! Rate windows, quotas, the suppression list and the delivery ledger, on both stores.

use super::*;

/// The person index follows commits, the suppression refuses them (under the current key or the
/// previous one of a roll), and lifting it lets them through again.
pub(super) async fn a_suppressed_person_is_refused_by_every_commit_until_lifted(store: Arc<dyn Store>) {
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

pub(super) async fn the_ledger_counts_by_the_hour_and_a_notice_is_once_per_key(store: Arc<dyn Store>) {
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

pub(super) async fn rate_windows_keep_the_newest_observation(store: Arc<dyn Store>) {
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

pub(super) async fn a_quota_counts_each_use_once_per_window_and_subject(store: Arc<dyn Store>) {
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
