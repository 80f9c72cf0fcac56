//! Webhook intake: a Calendly delivery is authenticated (size, then the app's signature, before
//! any store read), routed to its integration (by the URL's integration id, or by its hosts),
//! checked to be about that integration's Calendly user, then recorded from the payload (no
//! Calendly call on the hot path, except to complete a payload that names its invitee only).

use crate::app::AppError;
use crate::calendly::delivery::{DeliveredPayload, Delivery};
use crate::calendly::webhook_signature::verify_signature;
use crate::calendly::{ROUTING_FORM_EVENT, last_segment};
use crate::clock::Clock;
use crate::crypto::Secret;
use crate::domain::{BookingSnapshot, CalendlyScope, Integration, IntegrationId};
use crate::engine::tokens::TokenError;
use crate::engine::{SubmissionApplied, SyncEngine, SyncError};
use crate::store::{BookingStore, DeliveryLedgerStore, IntegrationStore, StoreError};
use std::sync::Arc;

/// Deliveries larger than this are refused before any HMAC is computed (a real one is a few KB).
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;

/// How a delivery names its integration.
#[derive(Clone, Copy, Debug)]
pub enum DeliveryRoute<'a> {
    /// The integration id of the subscription's URL (`/calendly/webhook/{id}`).
    Integration(&'a str),
    /// No id (subscriptions made before per-integration URLs): found by the delivery's hosts.
    Hosts,
}

/// The longest a delivery is worked on: Calendly gives up reading the answer after 15 s (and
/// connecting after 10 s); past this the answer is a 503, which Calendly retries.
pub const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// What became of a signed delivery, answered for Calendly's retry machine (any non-2xx is
/// retried for 24 h, then the subscription is disabled; a 410 deletes it at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Recorded.
    Processed {
        /// Whether the booking was new or different.
        changed: bool,
        /// Note lines appended to prospects.
        notes_added: usize,
    },
    /// Signed but not acted on (2xx: an event we don't use, a body we can't use).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Signed, ours, and it can never succeed now (Calendly refuses what it left out, the
    /// integration needs reconnecting): 2xx, since retrying can't help; the next sync reads it.
    Deferred {
        /// Why.
        reason: String,
    },
    /// Signed but for no active integration of ours (unknown, disconnected, replaced, or a
    /// previous Calendly user's subscription): 410, so Calendly deletes the subscription.
    Gone {
        /// Why.
        reason: String,
    },
}

/// Calendly's deliveries: the signing keys and the clock (the signature's age), the integration
/// items (routing), the event fingerprints (a deferred delivery is left to the next sync), the
/// delivery ledger (the status's webhook health), and the sync engine that records a booking
/// as the poll would.
#[derive(Clone)]
pub struct WebhookIntake {
    signing_keys: Vec<Secret>,
    clock: Arc<dyn Clock>,
    integrations: Arc<dyn IntegrationStore>,
    fingerprints: Arc<dyn BookingStore>,
    ledger: Arc<dyn DeliveryLedgerStore>,
    engine: SyncEngine,
}

/// The items a delivery reads and writes besides the engine's.
pub struct IntakePorts {
    /// The integration items (routing).
    pub integrations: Arc<dyn IntegrationStore>,
    /// The event fingerprints (a deferred delivery is left to the next sync).
    pub fingerprints: Arc<dyn BookingStore>,
    /// The delivery ledger.
    pub ledger: Arc<dyn DeliveryLedgerStore>,
}

impl WebhookIntake {
    /// Intake checking signatures with `signing_keys` (the current key, then the previous one
    /// during a key roll).
    pub fn new(signing_keys: Vec<Secret>, clock: Arc<dyn Clock>, ports: IntakePorts, engine: SyncEngine) -> Self {
        let IntakePorts { integrations, fingerprints, ledger } = ports;
        Self { signing_keys, clock, integrations, fingerprints, ledger, engine }
    }

    /// Receives one delivery: `signature` is the `Calendly-Webhook-Signature` header, `body`
    /// the raw bytes it signs.
    pub async fn receive_delivery(
        &self,
        route: DeliveryRoute<'_>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<DeliveryOutcome, AppError> {
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(AppError::PayloadTooLarge(format!(
                "a webhook delivery is at most {} KB",
                MAX_WEBHOOK_BODY / 1024
            )));
        }
        let keys: Vec<&str> = self.signing_keys.iter().map(|k| k.expose()).collect();
        verify_signature(signature, body, &keys, self.clock.now()).map_err(|e| {
            tracing::warn!(error = %e, "refused a Calendly webhook delivery");
            AppError::Unauthorized(e.to_string())
        })?;
        let delivery = match Delivery::parse(body) {
            Ok(delivery) => delivery,
            Err(reason) => return Ok(ignored(reason)),
        };
        // How late Calendly delivers (retries included): receipt less the event's own time.
        if let Some(at) = delivery.created_at {
            let lag = (self.clock.now() - at).num_milliseconds().max(0);
            crate::telemetry::metrics::observe(crate::telemetry::metrics::Metric::WebhookLag, None, lag as f64);
        }
        let integration = match route {
            DeliveryRoute::Integration(id) => match IntegrationId::parse(id) {
                Ok(id) => self.integrations.get_integration_by_id(&id).await?,
                Err(_) => None,
            },
            DeliveryRoute::Hosts => match delivery.about_users().next() {
                Some(uri) => self.integrations.find_integration_by_calendly_user(uri).await?,
                None => None,
            },
        };
        // Calendly stops reading at 15 s: a delivery that can't finish in time is a 503, which
        // it retries (processing is idempotent, so a half-done attempt is finished by the next).
        match tokio::time::timeout(DELIVERY_BUDGET, self.record_delivery(integration, delivery)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!("a Calendly delivery did not finish in time; Calendly will retry it");
                Err(AppError::CalendlyUnavailable("the delivery could not be processed in time".into()))
            }
        }
    }

    async fn record_delivery(
        &self,
        integration: Option<Integration>,
        delivery: Delivery,
    ) -> Result<DeliveryOutcome, AppError> {
        let Some(integration) = integration else {
            return Ok(gone("no integration of ours has this subscription"));
        };
        if !integration.is_active {
            return Ok(gone("the integration was disconnected"));
        }
        // Signed by Calendly is not enough: the delivery must be about this integration's user, or
        // a correctly signed delivery for one account could be recorded in another's CRM. Such
        // a delivery comes from a subscription that outlived a reconnect to another user.
        if !delivery.about_users().any(|user| user == integration.calendly_user_uri) {
            tracing::warn!(organization_id = %integration.organization_id, "signed delivery for another Calendly user");
            return Ok(gone("the subscription is not this integration's Calendly user's"));
        }
        // Ours and signed: the ledger counts it (the status's webhook health). Losing the count
        // loses no booking, so a failure here is not the delivery's.
        if let Err(e) = self.ledger.record_delivery(&integration.organization_id, self.clock.now()).await {
            tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not count a delivery in the ledger");
        }
        // User scope: another member's booking comes from an organization subscription that
        // outlived the organization scope.
        let hosts = &delivery.event_hosts;
        if integration.coverage == CalendlyScope::User
            && !hosts.is_empty()
            && !hosts.contains(&integration.calendly_user_uri)
        {
            return Ok(gone("the booking is another member's and the integration is in user scope"));
        }
        if delivery.event == ROUTING_FORM_EVENT {
            return self.record_submission(&integration, delivery).await;
        }
        // The events the subscriptions ask for are the ones acted on; others are acknowledged and ignored.
        if !crate::calendly::WEBHOOK_EVENTS.contains(&delivery.event.as_str()) {
            return Ok(ignored(format!("event {} is not used", delivery.event)));
        }
        if integration.needs_reconnect {
            self.mark_for_next_sync(&integration, &delivery).await?;
            return Ok(deferred("the integration needs reconnecting; the first sync after it reads this booking"));
        }
        // What the payload leaves out (a no-show naming only its invitee, a cancel without its
        // event) is read from Calendly; Calendly unreachable is a 502, which it retries.
        let fetched = match delivery.payload.clone() {
            DeliveredPayload::Invitee(invitee) => match invitee.scheduled_event.clone() {
                Some(event) => Ok((*invitee, event)),
                None => match delivery.invitee_uri.as_ref() {
                    Some(uri) => self.engine.fetch_delivered(&integration, uri, Some(*invitee)).await,
                    None => return Ok(ignored("the invitee's URI names no scheduled event")),
                },
            },
            DeliveredPayload::InviteeNamed(uri) => self.engine.fetch_delivered(&integration, &uri, None).await,
            DeliveredPayload::Unusable(reason) => return Ok(ignored(reason)),
            DeliveredPayload::Submission(_) => return Ok(ignored("a routing form submission under another event")),
        };
        let (invitee, event) = match fetched {
            Ok(fetched) => fetched,
            // Calendly answers 403/404 for what it left out, or the tokens are dead: retries
            // would fail the same way for 24 h. The poll reads the event when it can.
            Err(e) if e.is_event_scoped() || matches!(e, SyncError::Token(TokenError::NeedsReconnect)) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "a delivery could not be completed from Calendly; left to the next sync");
                self.mark_for_next_sync(&integration, &delivery).await?;
                return Ok(deferred(format!("left to the next sync: {e}")));
            }
            Err(e) => return Err(e.into()),
        };
        let snapshot = with_no_show_of(&delivery, invitee.snapshot(&event));
        let applied = match self.engine.apply_delivered(&integration, &snapshot).await {
            Ok(applied) => applied,
            // The store refuses this booking's own content: retries would be refused too.
            Err(e @ SyncError::Store(StoreError::Rejected(_))) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "the store refused a delivered booking; left to the next sync");
                return Ok(deferred(format!("not recorded: {e}")));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(organization_id = %integration.organization_id, event = %delivery.event, invitee = last_segment(&snapshot.invitee_uri), ?applied.kind, "Calendly delivery processed");
        Ok(DeliveryOutcome::Processed { changed: applied.kind.is_some(), notes_added: applied.notes_added })
    }

    /// A routing form submission: recorded exactly once (the poll of the scheduled sync reads
    /// it too), when this integration reads routing forms.
    async fn record_submission(
        &self,
        integration: &Integration,
        delivery: Delivery,
    ) -> Result<DeliveryOutcome, AppError> {
        if !crate::app::subscription::takes_routing_forms(integration) {
            return Ok(ignored("routing forms are read in organization scope with routing_forms:read only"));
        }
        if integration.needs_reconnect {
            return Ok(deferred("the integration needs reconnecting; the scheduled sync's poll reads this submission"));
        }
        let submission = match delivery.payload {
            DeliveredPayload::Submission(submission) => submission,
            DeliveredPayload::Unusable(reason) => return Ok(ignored(reason)),
            _ => return Ok(ignored("the payload is not a routing form submission")),
        };
        let form_name = self.engine.routing_form_name(integration, &submission.routing_form).await;
        let snapshot = submission.snapshot(form_name);
        let applied = self.engine.apply_delivered_submission(integration, &snapshot).await?;
        tracing::info!(organization_id = %integration.organization_id, submission = %snapshot.uuid, ?applied, "routing form submission delivered");
        Ok(match applied {
            SubmissionApplied::Recorded { .. } => DeliveryOutcome::Processed { changed: true, notes_added: 1 },
            SubmissionApplied::AlreadyRecorded | SubmissionApplied::Suppressed => {
                DeliveryOutcome::Processed { changed: false, notes_added: 0 }
            }
            SubmissionApplied::WithoutEmail => ignored("the submission's answers give no e-mail"),
            SubmissionApplied::Ignored => ignored("the booking filter leaves the submitter out"),
        })
    }

    /// A deferred delivery's event is read again by the next sync even if Calendly's copy of
    /// the event did not change (a no-show changes the invitee only): its fingerprint is
    /// forgotten.
    async fn mark_for_next_sync(&self, integration: &Integration, delivery: &Delivery) -> Result<(), AppError> {
        let Some(invitee) = &delivery.invitee_uri else { return Ok(()) };
        self.fingerprints.put_event_fingerprint(&integration.organization_id, invitee.event_uuid(), "", None).await?;
        Ok(())
    }
}

/// A signed delivery we don't act on.
fn ignored(reason: impl Into<String>) -> DeliveryOutcome {
    let reason = reason.into();
    tracing::warn!(%reason, "signed Calendly delivery ignored");
    DeliveryOutcome::Ignored { reason }
}

/// A signed delivery that can't succeed now (2xx: the next sync brings it).
fn deferred(reason: impl Into<String>) -> DeliveryOutcome {
    DeliveryOutcome::Deferred { reason: reason.into() }
}

/// A signed delivery for a subscription that is not (or no longer) ours (410).
fn gone(reason: impl Into<String>) -> DeliveryOutcome {
    let reason = reason.into();
    tracing::warn!(%reason, "signed Calendly delivery for no active integration; answering 410 so Calendly deletes the subscription");
    DeliveryOutcome::Gone { reason }
}

/// The no-show events say what the flag is now, whatever the invitee copy lags behind, as of
/// the delivery's own time (the envelope's `created_at`: a deleted no-show's payload carries
/// the no-show's creation time, which would tie it with its creation).
fn with_no_show_of(delivery: &Delivery, mut snapshot: BookingSnapshot) -> BookingSnapshot {
    let no_show = match delivery.event.as_str() {
        "invitee_no_show.created" => true,
        "invitee_no_show.deleted" => false,
        _ => return snapshot,
    };
    let changed_at = delivery.created_at.or(delivery.payload_created_at);
    snapshot.no_show = no_show;
    snapshot.no_show_changed_at = changed_at.or(snapshot.no_show_changed_at);
    if let Some(at) = changed_at {
        snapshot.invitee_updated_at = snapshot.invitee_updated_at.max(at);
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{CalendlyDown, RecordingPusher, connected};
    use crate::calendly::webhook_signature::signature_header;
    use crate::clock::SystemClock;
    use crate::crypto::Sealer;
    use crate::engine::tokens::TokenKeeper;
    use crate::store::MemoryStore;

    const KEY: &str = "webhook-signing-key";

    fn intake(store: &Arc<MemoryStore>, clock: &Arc<SystemClock>) -> WebhookIntake {
        let sealer = Sealer::from_hex_key(&"cd".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        let tokens = TokenKeeper::new(store.clone(), sealer.clone(), clock.clone());
        let pusher = Arc::new(RecordingPusher::default());
        let people = crate::engine::people::People::new(
            store.clone(),
            vec![sealer],
            crate::crypto::PersonHasher::derived_key(&[1; 32]),
            None,
        );
        let engine = SyncEngine::new(
            store.clone(),
            Arc::new(CalendlyDown),
            pusher,
            clock.clone(),
            tokens,
            Arc::new(people),
            30,
            90,
        );
        let ports = IntakePorts { integrations: store.clone(), fingerprints: store.clone(), ledger: store.clone() };
        WebhookIntake::new(vec![Secret::new(KEY)], clock.clone(), ports, engine)
    }

    fn signed(body: &[u8], clock: &SystemClock) -> String {
        signature_header(KEY, clock.now().timestamp(), body)
    }

    #[tokio::test]
    async fn a_delivery_is_refused_by_size_then_signature_before_anything_is_read() {
        let (store, clock) = (Arc::new(MemoryStore::new()), Arc::new(SystemClock::default()));
        let intake = intake(&store, &clock);
        let huge = vec![b' '; MAX_WEBHOOK_BODY + 1];
        let too_large = intake.receive_delivery(DeliveryRoute::Hosts, Some(&signed(&huge, &clock)), &huge).await;
        assert!(matches!(too_large, Err(AppError::PayloadTooLarge(_))), "{too_large:?}");
        let body = br#"{"event":"invitee.created","payload":{}}"#;
        let forged = signature_header("another-key", clock.now().timestamp(), body);
        let refused = intake.receive_delivery(DeliveryRoute::Hosts, Some(&forged), body).await;
        assert!(matches!(refused, Err(AppError::Unauthorized(_))), "{refused:?}");
        let unsigned = intake.receive_delivery(DeliveryRoute::Hosts, None, body).await;
        assert!(matches!(unsigned, Err(AppError::Unauthorized(_))), "{unsigned:?}");
        // Calendly retries with the first signature for 24 h: older than that is a replay.
        let stale = signature_header(KEY, (clock.now() - chrono::Duration::hours(26)).timestamp(), body);
        let replayed = intake.receive_delivery(DeliveryRoute::Hosts, Some(&stale), body).await;
        assert!(matches!(replayed, Err(AppError::Unauthorized(_))), "{replayed:?}");
    }

    #[tokio::test]
    async fn signed_deliveries_for_no_active_integration_of_that_user_are_gone_and_unused_events_ignored() {
        let (store, clock) = (Arc::new(MemoryStore::new()), Arc::new(SystemClock::default()));
        let intake = intake(&store, &clock);
        let integration = connected(&store, "org-w", clock.now()).await;
        let id = integration.id.to_string();
        let envelope = |event: &str, user: &str| {
            format!(r#"{{"event":"{event}","created_by":"{user}","payload":{{"email":"ada@example.com"}}}}"#)
        };
        let unknown = envelope("invitee.created", &integration.calendly_user_uri);
        let route = DeliveryRoute::Integration("00000000-0000-0000-0000-000000000000");
        let outcome =
            intake.receive_delivery(route, Some(&signed(unknown.as_bytes(), &clock)), unknown.as_bytes()).await;
        assert!(matches!(outcome, Ok(DeliveryOutcome::Gone { .. })), "{outcome:?}");

        let stranger = envelope("invitee.created", "https://api.calendly.com/users/someone-else");
        let route = DeliveryRoute::Integration(&id);
        let outcome =
            intake.receive_delivery(route, Some(&signed(stranger.as_bytes(), &clock)), stranger.as_bytes()).await;
        assert!(matches!(outcome, Ok(DeliveryOutcome::Gone { .. })), "{outcome:?}");

        // Ours, signed, but an event the product does not use: acknowledged, Calendly untouched.
        let unused = envelope("routing_form_submission.created", &integration.calendly_user_uri);
        let outcome = intake.receive_delivery(route, Some(&signed(unused.as_bytes(), &clock)), unused.as_bytes()).await;
        assert!(matches!(outcome, Ok(DeliveryOutcome::Ignored { .. })), "{outcome:?}");

        store.deactivate_integration(&integration.organization_id, clock.now()).await.unwrap_or_else(|e| panic!("{e}"));
        let created = envelope("invitee.created", &integration.calendly_user_uri);
        let outcome =
            intake.receive_delivery(route, Some(&signed(created.as_bytes(), &clock)), created.as_bytes()).await;
        assert!(matches!(outcome, Ok(DeliveryOutcome::Gone { .. })), "{outcome:?}");
    }
}
