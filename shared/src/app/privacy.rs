//! A person's rights over what the organization holds about them: erasure (and with it, the
//! suppression that keeps a sync or a delivery from bringing them back), export, the lifting of
//! a suppression, and the audit of erasures. Everything is keyed by the keyed hash of the
//! normalized e-mail; no log line names the person.

use crate::app::{AppError, CalendlyAccess, PageCursors, active_integration};
use crate::auth::Caller;
use crate::calendly::{CalendlyError, GrantedScopes, Scope};
use crate::clock::Clock;
use crate::domain::ids::time_ordered_id;
use crate::domain::{
    Booking, CalendlyErasure, ErasureCounts, ErasureRecord, Notification, OrganizationId, PersonAddress, Prospect,
};
use crate::engine::people::People;
use crate::push::{PushMessage, Pusher};
use crate::store::{CalendlyData, IntegrationStore, PageOf, PrivacyStore, ProspectStore};
use std::sync::Arc;
use std::time::Duration;

/// Items a purge deletes per page (BatchWriteItem takes 25 a request: 4 per page).
const PURGE_PAGE: usize = 100;
/// Passes a purge makes at most before it says `complete: false` (the last one must find nothing).
const PURGE_PASSES: usize = 4;

/// What a purge deleted; `complete: false` when its time ran out before a pass found nothing
/// left (call again: it goes on from what is left).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purge {
    /// Bookings deleted.
    pub bookings: u64,
    /// Event fingerprints deleted.
    pub fingerprints: u64,
    /// Notifications deleted.
    pub notifications: u64,
    /// Whether nothing is left.
    pub complete: bool,
}

/// What an erasure did: its audit entry (counts, Calendly's answer).
pub type Erasure = ErasureRecord;

/// Everything the organization holds about one person.
#[derive(Clone, Debug)]
pub struct PersonalData {
    /// When it was read.
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The prospect with their e-mail, with its notes.
    pub prospects: Vec<Prospect>,
    /// Their bookings, with answers and tracking.
    pub bookings: Vec<Booking>,
    /// The notifications about them.
    pub notifications: Vec<Notification>,
}

/// The ports the privacy use cases call.
#[derive(Clone)]
pub struct PrivacyPorts {
    /// The person index, the suppression list and the audit.
    pub people: Arc<dyn PrivacyStore>,
    /// The prospects (found by e-mail, deleted).
    pub prospects: Arc<dyn ProspectStore>,
    /// The integration (for Calendly-side deletion).
    pub integrations: Arc<dyn IntegrationStore>,
    /// Pushes of deleted prospects.
    pub pusher: Arc<dyn Pusher>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// Erasure, export, suppression and their audit.
#[derive(Clone)]
pub struct Privacy {
    ports: PrivacyPorts,
    /// Who a person is to the suppression list and the person index.
    hashes: Arc<People>,
    calendly: CalendlyAccess,
    cursors: PageCursors,
}

impl Privacy {
    /// The privacy use cases over their ports.
    pub fn new(ports: PrivacyPorts, hashes: Arc<People>, calendly: CalendlyAccess, cursors: PageCursors) -> Self {
        Self { ports, hashes, calendly, cursors }
    }

    /// Erases the person with this e-mail from the caller's organization: suppressed first (so
    /// no commit racing this one can add anything), then every booking and notification the
    /// index names, their prospect and its e-mail claim; `prospect:deleted` is pushed. With
    /// `at_calendly`, Calendly is asked to delete the invitee's data too. Idempotent.
    pub async fn erase(
        &self,
        caller: &Caller,
        address: &PersonAddress,
        at_calendly: bool,
    ) -> Result<Erasure, AppError> {
        let org = &caller.organization_id;
        let person = self.hashes.person(address.key()).await?;
        let PrivacyPorts { people, prospects, .. } = &self.ports;
        let index = people.suppress_person(org, &person, self.ports.clock.now()).await?;
        let mut counts = ErasureCounts::default();
        if !index.bookings.is_empty() {
            counts.bookings = people.get_bookings(org, &index.bookings).await?.len() as u64;
            people.delete_bookings(org, &index.bookings).await?;
        }
        if !index.notifications.is_empty() {
            counts.notifications = people.get_notifications(org, &index.notifications).await?.len() as u64;
            people.delete_notifications(org, &index.notifications).await?;
        }
        // The invitees' bookings that named them as a guest stay, without them.
        let guest_of: Vec<String> = index.guest_of.iter().filter(|id| !index.bookings.contains(id)).cloned().collect();
        if !guest_of.is_empty() {
            people.remove_guest(org, &guest_of, address.key()).await?;
        }
        // Prospects exist for valid addresses only.
        if let Some(email) = address.email()
            && let Some(prospect) = prospects.find_prospect_by_email(org, &email.key()).await?
            && prospects.delete_prospect(org, &prospect.id).await?
        {
            counts.prospects += 1;
            self.ports.pusher.push(org, PushMessage::prospect_deleted(&prospect.id)).await;
        }
        people.forget_person_index(org, &person).await?;
        let (calendly, calendly_reason) = match at_calendly {
            false => (CalendlyErasure::NotRequested, None),
            true => match self.erase_at_calendly(org, address).await {
                Ok(()) => (CalendlyErasure::Requested, None),
                Err(reason) => (CalendlyErasure::Unavailable, Some(reason)),
            },
        };
        let now = self.ports.clock.now();
        let erasure = ErasureRecord {
            id: time_ordered_id(now),
            organization_id: org.clone(),
            requested_by: caller.user_id.clone(),
            erased_at: now,
            person: person.current,
            counts,
            calendly,
            calendly_reason,
        };
        people.record_erasure(&erasure).await?;
        crate::telemetry::metrics::count(crate::telemetry::metrics::Metric::Erasures, None, 1);
        tracing::info!(
            organization_id = %org,
            erasure_id = %erasure.id,
            prospects = erasure.counts.prospects,
            bookings = erasure.counts.bookings,
            notifications = erasure.counts.notifications,
            calendly = ?erasure.calendly,
            "person erased"
        );
        Ok(erasure)
    }

    /// Asks Calendly to delete the invitee's data; why it can't, when it can't.
    async fn erase_at_calendly(&self, org: &OrganizationId, address: &PersonAddress) -> Result<(), String> {
        let integration = active_integration(self.ports.integrations.as_ref(), org)
            .await
            .map_err(|_| "Calendly is not connected".to_string())?;
        if !GrantedScopes::parse(integration.scope.as_deref()).allows(Scope::DataComplianceWrite) {
            return Err(format!(
                "the Calendly connection was not granted {} (reconnect once the app has it)",
                Scope::DataComplianceWrite.as_str()
            ));
        }
        let session = self.calendly.session(Duration::ZERO);
        let token = self.calendly.access_token(&session, &integration).await.map_err(|e| e.to_string())?;
        let emails = vec![address.as_str().to_string()];
        let answer = session
            .call(|api| {
                let (token, emails) = (token.clone(), emails.clone());
                async move { api.delete_invitee_data(&token, &emails).await }
            })
            .await;
        match answer {
            Ok(()) => Ok(()),
            Err(CalendlyError::Forbidden(message)) => Err(format!("Calendly refused: {message}")),
            Err(e) => Err(format!("Calendly did not take the request ({e}); ask again later")),
        }
    }

    /// Everything the organization holds about the person with this e-mail (empty lists when
    /// nothing).
    pub async fn export(&self, org: &OrganizationId, address: &PersonAddress) -> Result<PersonalData, AppError> {
        let person = self.hashes.person(address.key()).await?;
        let PrivacyPorts { people, prospects, .. } = &self.ports;
        let index = people.person_index(org, &person).await?;
        let mut data = PersonalData {
            exported_at: self.ports.clock.now(),
            prospects: Vec::new(),
            bookings: Vec::new(),
            notifications: Vec::new(),
        };
        // Their bookings, and the bookings that name them as a guest.
        let mut ids = index.bookings.clone();
        ids.extend(index.guest_of.iter().filter(|id| !index.bookings.contains(id)).cloned());
        if !ids.is_empty() {
            data.bookings = people.get_bookings(org, &ids).await?;
            data.bookings.sort_by_key(|b| b.details.start_time);
        }
        if !index.notifications.is_empty() {
            data.notifications = people.get_notifications(org, &index.notifications).await?;
            data.notifications.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        }
        if let Some(email) = address.email() {
            data.prospects.extend(prospects.find_prospect_by_email(org, &email.key()).await?);
        }
        Ok(data)
    }

    /// Lifts the suppression of the person with this e-mail (they came back and consented):
    /// whether they were suppressed.
    pub async fn lift_suppression(&self, org: &OrganizationId, address: &PersonAddress) -> Result<bool, AppError> {
        let lifted = self.ports.people.lift_suppression(org, &self.hashes.person(address.key()).await?).await?;
        tracing::info!(organization_id = %org, lifted, "suppression lifted");
        Ok(lifted)
    }

    /// Deletes every booking, fingerprint and notification of the organization (what came from
    /// Calendly; prospects stay), page by page until done or `budget` is spent: `complete` says
    /// which, and calling again goes on (each call starts over from what is left).
    pub async fn purge(&self, org: &OrganizationId, budget: Duration) -> Result<Purge, AppError> {
        let deadline = tokio::time::Instant::now() + budget;
        let mut purge = Purge::default();
        // Pass after pass until one finds nothing: what a commit in flight wrote while a pass
        // ran is deleted by the next one, and `complete` is only said of an empty organization.
        'passes: for _ in 0..PURGE_PASSES {
            let mut found = 0;
            for family in CalendlyData::ALL {
                let mut cursor: Option<String> = None;
                loop {
                    if tokio::time::Instant::now() >= deadline {
                        break 'passes;
                    }
                    let (deleted, next) = self
                        .ports
                        .people
                        .delete_calendly_data(org, family, None, PURGE_PAGE, cursor.as_deref())
                        .await?;
                    found += deleted;
                    match family {
                        CalendlyData::Bookings => purge.bookings += deleted,
                        CalendlyData::Fingerprints => purge.fingerprints += deleted,
                        CalendlyData::Notifications => purge.notifications += deleted,
                    }
                    match next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
            if found == 0 {
                purge.complete = true;
                break;
            }
        }
        tracing::info!(
            organization_id = %org,
            bookings = purge.bookings,
            fingerprints = purge.fingerprints,
            notifications = purge.notifications,
            complete = purge.complete,
            "Calendly data purged"
        );
        Ok(purge)
    }

    /// One page of the erasure audit, newest first.
    pub async fn erasures(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<ErasureRecord>, AppError> {
        let cursor = self.cursors.position("erasures", org, cursor)?;
        let page = self.ports.people.list_erasures(org, limit, cursor).await?;
        Ok(self.cursors.signed("erasures", org, page))
    }
}
