//! The webhook delivery ledger: whether Calendly's deliveries actually arrive. Deliveries are
//! counted by the hour as they come; a booking first seen by a sync (not a delivery) well after
//! it was made, while the subscription was active, is a delivery Calendly never made: a miss,
//! counted with the booking's own write (so exactly once).

use super::{Integration, Notification, NotificationKind, OrganizationId};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;

/// A booking first seen by a sync this long after it was made was missed by the webhook
/// (deliveries take seconds; a sync may run just before one lands).
pub const MISSED_AFTER: Duration = Duration::minutes(5);
/// How long an hour of the ledger is kept (the status reads the last day; a week leaves room
/// for `last_delivery_at` of a quiet subscription).
pub const LEDGER_KEPT: Duration = Duration::days(8);
/// The window `webhook_health` counts over.
pub const HEALTH_WINDOW: Duration = Duration::hours(24);

/// One hour of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerHour {
    /// The hour (its start).
    pub hour: DateTime<Utc>,
    /// Signed deliveries received for the integration.
    pub deliveries: u64,
    /// Bookings first seen by a sync that a delivery should have brought.
    pub missed: u64,
    /// The latest delivery of the hour.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// When the earliest missed booking of the hour was made.
    pub first_missed_at: Option<DateTime<Utc>>,
}

/// Whether the webhook delivers, as the status shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    /// Deliveries received in the last 24 hours.
    pub deliveries_24h: u64,
    /// Bookings of the last 24 hours' syncs that no delivery brought.
    pub missed_24h: u64,
    /// The latest delivery received (within the ledger's week).
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// When the earliest booking missed in the last 24 hours was made.
    pub missed_since: Option<DateTime<Utc>>,
}

impl WebhookHealth {
    /// The health at `now` from the ledger's hours (any order, any age).
    pub fn from_hours(hours: &[LedgerHour], now: DateTime<Utc>) -> Self {
        let window_start = hour_of(now - HEALTH_WINDOW);
        let recent = || hours.iter().filter(|h| h.hour >= window_start);
        Self {
            deliveries_24h: recent().map(|h| h.deliveries).sum(),
            missed_24h: recent().map(|h| h.missed).sum(),
            last_delivery_at: hours.iter().filter_map(|h| h.last_delivery_at).max(),
            missed_since: recent().filter_map(|h| h.first_missed_at).min(),
        }
    }
}

/// The hour `at` falls in (the ledger's key).
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1)).unwrap_or(at)
}

/// Whether a booking a sync sees for the first time at `now`, made at `created_at`, is one a
/// delivery should have brought: the subscription was active when it was made, and it is
/// older than a delivery takes.
pub fn missed_by_webhook(integration: &Integration, created_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let (Some(created_at), Some(since)) = (created_at, integration.webhook_active_since) else {
        return false;
    };
    integration.webhook_active && created_at >= since && now - created_at > MISSED_AFTER
}

/// The key that makes the gaps notification once a day (UTC).
pub fn gaps_notice_key(now: DateTime<Utc>) -> String {
    format!("webhook-gaps-{}", now.format("%Y-%m-%d"))
}

/// The day's `calendly_webhook_gaps` notification: how many bookings no delivery brought,
/// since when.
pub fn gaps_notification(
    org: &OrganizationId,
    health: &WebhookHealth,
    style: &super::NoteStyle,
    now: DateTime<Utc>,
) -> Notification {
    let since = health.missed_since.map(|t| style.date(t)).unwrap_or_default();
    let count = health.missed_24h;
    let message = format!(
        "{count} rendez-vous Calendly depuis le {since} ne sont pas arrivés par le webhook : la synchronisation périodique les a rattrapés. Vérifiez l'abonnement webhook dans les paramètres Calendly."
    );
    Notification::new(
        org.clone(),
        NotificationKind::CalendlyWebhookGaps,
        "Webhook Calendly incomplet",
        message,
        json!({ "missed_24h": count, "missed_since": health.missed_since, "deliveries_24h": health.deliveries_24h }),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn health_counts_the_last_day_and_the_latest_delivery_of_the_week() {
        let now = at("2026-01-16T12:30:00Z");
        let hours = vec![
            LedgerHour {
                hour: at("2026-01-10T09:00:00Z"),
                deliveries: 7,
                last_delivery_at: Some(at("2026-01-10T09:59:00Z")),
                ..LedgerHour::default()
            },
            LedgerHour {
                hour: at("2026-01-16T10:00:00Z"),
                deliveries: 2,
                missed: 1,
                last_delivery_at: Some(at("2026-01-16T10:05:00Z")),
                first_missed_at: Some(at("2026-01-16T09:40:00Z")),
            },
            LedgerHour {
                hour: at("2026-01-15T12:00:00Z"),
                missed: 2,
                first_missed_at: Some(at("2026-01-15T11:00:00Z")),
                ..LedgerHour::default()
            },
        ];
        let health = WebhookHealth::from_hours(&hours, now);
        assert_eq!(health.deliveries_24h, 2);
        assert_eq!(health.missed_24h, 3);
        assert_eq!(health.last_delivery_at, Some(at("2026-01-16T10:05:00Z")));
        assert_eq!(health.missed_since, Some(at("2026-01-15T11:00:00Z")));
        assert_eq!(WebhookHealth::from_hours(&[], now), WebhookHealth::default());
    }

    #[test]
    fn a_miss_is_a_booking_made_while_the_subscription_delivered_and_older_than_a_delivery_takes() {
        let now = at("2026-01-16T12:00:00Z");
        let account = crate::domain::ConnectedAccount {
            id: crate::domain::IntegrationId::new("i"),
            organization_id: OrganizationId::new("o"),
            connected_by: crate::domain::UserId::new("u"),
            calendly_user_uri: "https://api.calendly.com/users/U".into(),
            calendly_organization_uri: "https://api.calendly.com/organizations/O".into(),
            email: "host@example.com".into(),
            name: "Host".into(),
            scheduling_url: None,
        };
        let mut integration = Integration::connected(account, now, now);
        integration.webhook_active = true;
        integration.webhook_active_since = Some(at("2026-01-16T08:00:00Z"));
        assert!(missed_by_webhook(&integration, Some(at("2026-01-16T11:00:00Z")), now));
        assert!(
            !missed_by_webhook(&integration, Some(at("2026-01-16T11:58:00Z")), now),
            "a delivery may be on its way"
        );
        assert!(
            !missed_by_webhook(&integration, Some(at("2026-01-16T07:00:00Z")), now),
            "made before the subscription"
        );
        assert!(!missed_by_webhook(&integration, None, now));
        integration.webhook_active = false;
        assert!(!missed_by_webhook(&integration, Some(at("2026-01-16T11:00:00Z")), now), "polling only");
    }

    #[test]
    fn the_hour_is_the_key_and_the_notice_is_daily() {
        assert_eq!(hour_of(at("2026-01-16T12:34:56Z")), at("2026-01-16T12:00:00Z"));
        assert_eq!(gaps_notice_key(at("2026-01-16T23:59:00Z")), "webhook-gaps-2026-01-16");
    }
}
