use super::*;
use crate::domain::{IntegrationId, OrganizationId};

#[test]
fn the_sync_view_names_every_counter() {
    let now = Utc::now();
    let job = SyncJob::queued(
        OrganizationId::new("org"),
        IntegrationId::new("int"),
        SyncTrigger::Manual,
        now - chrono::Duration::days(30),
        now + chrono::Duration::days(365),
        now,
    );
    let value = to_value(&SyncJobView::from(&job));
    for key in [
        "state",
        "trigger",
        "started_at",
        "finished_at",
        "events_seen",
        "bookings_new",
        "bookings_changed",
        "prospects_created",
        "notes_added",
        "calendly_requests",
        "error",
    ] {
        assert!(value.get(key).is_some(), "{key}");
    }
    assert_eq!(value["state"], "queued");
    assert_eq!(value["trigger"], "manual");
}
