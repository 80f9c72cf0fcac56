//! Marking a no-show from the CRM (`POST/DELETE /calendly/events/{id}/no-show`): Calendly is
//! told first (`POST /invitee_no_shows`, `DELETE /invitee_no_shows/{uuid}`), then the invitee
//! is read back and recorded through the same exactly-once path as a delivery, so the
//! `Absence` note is written once and the delivery Calendly echoes finds nothing new.

use crate::app::{AppError, CalendlyAccess, ErrorCode, MANUAL_RATE_LIMIT_BUDGET, active_integration};
use crate::calendly::delivery::InviteeUri;
use crate::calendly::{CalendlyError, GrantedScopes, Scope};
use crate::clock::Clock;
use crate::domain::{Booking, BookingStatus, Integration, OrganizationId};
use crate::engine::SyncEngine;
use crate::store::{BookingStore, IntegrationStore};
use std::sync::Arc;

/// No-shows marked by a salesperson: the integration and booking items, Calendly, the engine
/// that records what Calendly then says, and the clock.
#[derive(Clone)]
pub struct NoShows {
    integrations: Arc<dyn IntegrationStore>,
    bookings: Arc<dyn BookingStore>,
    calendly: CalendlyAccess,
    engine: SyncEngine,
    clock: Arc<dyn Clock>,
}

impl NoShows {
    /// No-shows over their ports.
    pub fn new(
        integrations: Arc<dyn IntegrationStore>,
        bookings: Arc<dyn BookingStore>,
        calendly: CalendlyAccess,
        engine: SyncEngine,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { integrations, bookings, calendly, engine, clock }
    }

    /// Marks (`absent`) or takes back the no-show of booking `id`, at Calendly and here; the
    /// booking as then recorded. Already so: answered as it is, nothing called.
    pub async fn set(&self, org: &OrganizationId, id: &str, absent: bool) -> Result<Booking, AppError> {
        let integration = active_integration(self.integrations.as_ref(), org).await?;
        let booking = self.bookings.get_booking(org, id).await?.ok_or(AppError::NotFound("booking"))?;
        if booking.details.no_show == absent {
            return Ok(booking);
        }
        if absent {
            if booking.details.status == BookingStatus::Canceled {
                return Err(AppError::Conflict {
                    code: ErrorCode::BookingCanceled,
                    message: "a canceled booking can't be marked as a no-show".into(),
                });
            }
            if booking.details.start_time > self.clock.now() {
                return Err(AppError::Conflict {
                    code: ErrorCode::EventNotStarted,
                    message: format!(
                        "the event starts at {}: a no-show can be marked once it has started",
                        booking.details.start_time.to_rfc3339()
                    ),
                });
            }
        }
        if !GrantedScopes::parse(integration.scope.as_deref()).allows(Scope::ScheduledEventsWrite) {
            return Err(AppError::scope_missing(Scope::ScheduledEventsWrite));
        }
        let session = self.calendly.session(MANUAL_RATE_LIMIT_BUDGET);
        let token = self.calendly.access_token(&session, &integration).await?;
        let invitee_uri = booking.details.invitee_uri.clone();
        let told = if absent {
            session
                .call(|api| {
                    let (t, u) = (token.clone(), invitee_uri.clone());
                    async move { api.create_invitee_no_show(&t, &u).await.map(|_| ()) }
                })
                .await
        } else {
            // The mark's URI, as recorded; a booking recorded before it was kept reads it.
            let mark = match booking.details.no_show_uri.clone() {
                Some(uri) => Some(uri),
                None => self.read_back(&integration, &invitee_uri).await?.details.no_show_uri,
            };
            match mark {
                Some(mark) => {
                    session
                        .call(|api| {
                            let (t, m) = (token.clone(), mark.clone());
                            async move { api.delete_invitee_no_show(&t, &m).await }
                        })
                        .await
                }
                None => Ok(()),
            }
        };
        match told {
            Ok(()) => {}
            // 400/404/422: Calendly's state is not what was recorded (marked, cleared or
            // canceled there meanwhile; whether an already-marked invitee is a 400 or a 422 is
            // not documented): what Calendly now says is recorded and decides.
            Err(CalendlyError::Api { status, message }) if (400..500).contains(&status) => {
                let now = self.read_back(&integration, &invitee_uri).await?;
                if now.details.no_show == absent {
                    return Ok(now);
                }
                return Err(AppError::CalendlyRejected(message));
            }
            Err(CalendlyError::NotFound) => {
                return Err(AppError::NotFound("booking at Calendly"));
            }
            Err(CalendlyError::Forbidden(message)) => {
                return Err(AppError::Forbidden {
                    code: ErrorCode::CalendlyForbidden,
                    message: format!("Calendly refused to change the no-show (role or permission): {message}"),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.read_back(&integration, &invitee_uri).await
    }

    /// Reads the invitee from Calendly and records it as a delivery would; the booking stored.
    async fn read_back(&self, integration: &Integration, invitee_uri: &str) -> Result<Booking, AppError> {
        // A URI that names no invitee can't be at Calendly either.
        let uri = InviteeUri::parse(invitee_uri).ok_or(AppError::NotFound("booking at Calendly"))?;
        let (invitee, event) = self.engine.fetch_delivered(integration, &uri, None).await?;
        let snapshot = invitee.snapshot(&event);
        self.engine.apply_delivered(integration, &snapshot).await?;
        let org = &integration.organization_id;
        self.bookings.get_booking(org, &snapshot.invitee_uuid).await?.ok_or(AppError::NotFound("booking"))
    }
}
