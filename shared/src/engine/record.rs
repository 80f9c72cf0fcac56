//! Recording one booking exactly once: plan against what is stored, commit all-or-nothing
//! under guards, and on losing a race read again and plan again; pushes after the commit.

use super::*;

impl SyncEngine {
    /// Records one delivered routing form submission, in the organization's note style.
    pub async fn apply_delivered_submission(
        &self,
        integration: &Integration,
        snapshot: &SubmissionSnapshot,
    ) -> Result<SubmissionApplied, SyncError> {
        let style = self.store.get_organization(&integration.organization_id).await?.note_style();
        self.apply_submission(integration, snapshot, &style).await
    }

    /// Records one webhook-delivered booking (its payload embeds the scheduled event).
    pub async fn apply_delivered(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
    ) -> Result<Applied, SyncError> {
        // The organization, the booking, the e-mail's prospect and the browsers, read at once.
        let org = &integration.organization_id;
        let email_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
        let mut context = self.store.booking_context(org, &snapshot.invitee_uuid, email_key.as_deref()).await?;
        if let Some(connections) = context.connections.take() {
            self.pusher.reuse_connections(org, connections);
        }
        let style = context.organization.note_style();
        self.record(integration, snapshot, &style, None, Some(context)).await
    }

    /// Records one booking exactly once: plan against what is stored, commit all-or-nothing
    /// under guards, and on losing a race re-read and plan again. Pushes after the commit.
    /// A sync job's commits are counted for it (`counted_for`), in the commit itself.
    pub async fn apply(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
        style: &NoteStyle,
        counted_for: Option<&str>,
    ) -> Result<Applied, SyncError> {
        self.record(integration, snapshot, style, counted_for, None).await
    }

    /// `apply`, its first attempt planned on `context` when the caller read it.
    pub(super) async fn record(
        &self,
        integration: &Integration,
        snapshot: &BookingSnapshot,
        style: &NoteStyle,
        counted_for: Option<&str>,
        mut context: Option<BookingContext>,
    ) -> Result<Applied, SyncError> {
        let org = &integration.organization_id;
        let event_host = snapshot.host.as_ref().and_then(|h| h.email.as_deref());
        let admitted = integration.admits(event_host, snapshot.event_type_uri.as_deref(), &snapshot.invitee_email);
        if !admitted {
            return Ok(Applied::default());
        }
        let email_key = Email::parse(&snapshot.invitee_email).ok().map(|e| e.key());
        // Whom the booking is about, valid e-mail or not: every stored person can be erased.
        let person = match PersonAddress::parse(&snapshot.invitee_email) {
            Ok(address) => Some(self.people.person(address.key()).await?),
            Err(_) => None,
        };
        let guest_people = self.guest_people(snapshot).await?;
        let guest_leads = self.guest_leads(integration, snapshot);
        // Guests found erased: left out of the booking itself, and of the CRM.
        let mut refused_guests: Vec<String> = Vec::new();
        let mut stored_prospect_missing = false;
        // The prospect as read after its notes were found full (or changed).
        let mut full_prospect = None;
        let whole_snapshot = snapshot;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let without_refused;
            let snapshot = match refused_guests.is_empty() {
                true => whole_snapshot,
                false => {
                    without_refused = without_guests(whole_snapshot, &refused_guests);
                    &without_refused
                }
            };
            // Read for this attempt, unless the caller read it for the first (later attempts
            // follow a lost race: they read what the winner wrote).
            let first = context.take();
            let stored = match &first {
                Some(context) => context.stored.clone(),
                None => self.store.get_booking(org, &snapshot.invitee_uuid).await?,
            };
            let noted = stored.as_ref().map(|b| b.guests_noted.as_slice()).unwrap_or_default();
            let mut guests = Vec::new();
            for email in &guest_leads {
                let key = email.key();
                if noted.contains(&key) || refused_guests.contains(&key) {
                    continue;
                }
                let prospect = self.store.find_prospect_by_email(org, &key).await?;
                guests.push(booking::KnownGuest { email: email.clone(), prospect });
            }
            // A booking a routing form led to joins the submission's prospect, while it exists.
            let (submission, joined) = match (&stored, &snapshot.routing_form_submission) {
                (None, Some(uuid)) => match self.store.get_submission_link(org, uuid).await? {
                    Some(link) => {
                        let joined = self.store.get_prospect(org, &link.prospect_id).await?;
                        (Some(link), joined)
                    }
                    None => (None, None),
                },
                _ => (None, None),
            };
            let (prospect_with_email, replaced) = match (&stored, &email_key) {
                (None, Some(key)) => {
                    let prospect = match (joined, first) {
                        (Some(joined), _) => Some(joined),
                        (None, Some(context)) => context.prospect_with_email,
                        (None, None) => self.store.find_prospect_by_email(org, key).await?,
                    };
                    let replaced = match &snapshot.old_invitee_uri {
                        Some(old) => self.store.get_booking(org, crate::calendly::last_segment(old)).await?,
                        None => None,
                    };
                    (prospect, replaced)
                }
                _ => (None, None),
            };
            let known = Known {
                stored: stored.as_ref(),
                prospect_with_email: prospect_with_email.as_ref(),
                replaced: replaced.as_ref(),
                stored_prospect_missing,
                full_prospect: full_prospect.as_ref(),
                guests: &guests,
                submission: submission.as_ref(),
            };
            let field_map = integration.field_map();
            let guests_as_prospects = integration.crm.guests_as_prospects;
            let rules = booking::Rules { style, fields: &field_map, guests_as_prospects };
            let Some(mut plan) = booking::plan(org, &integration.id, snapshot, known, rules, self.clock.now()) else {
                return Ok(Applied::default());
            };
            plan.counted_for = counted_for.map(String::from);
            plan.person = person.clone();
            // The invitee listed as their own guest is indexed once, as the invitee.
            let invitee_key = PersonAddress::parse(&snapshot.invitee_email).ok().map(|a| a.key().to_string());
            plan.guest_people = guest_people
                .iter()
                .filter(|(key, _)| !refused_guests.contains(key) && Some(key) != invitee_key.as_ref())
                .cloned()
                .collect();
            // A sync (never a delivery) seeing a booking first that the webhook should have
            // brought: the ledger counts it, with this commit.
            let by_sync = counted_for.is_some() && plan.kind == ChangeKind::New;
            plan.missed_delivery = snapshot.invitee_created_at.filter(|_| {
                by_sync && ledger::missed_by_webhook(integration, snapshot.invitee_created_at, plan.booking.updated_at)
            });
            // The organization's retention, as the table's TTL (and the embedded store) apply it.
            plan.booking.expires_at = expiry(plan.booking.details.end_time, integration.retention_days);
            if let Some(n) = &mut plan.notification {
                n.expires_at = expiry(n.created_at, integration.retention_days);
            }
            match self.store.commit_booking(&plan).await {
                Ok(()) => {
                    let was_active =
                        stored.as_ref().is_some_and(|b| b.details.status == booking::BookingStatus::Active);
                    let outcome = match (plan.kind, plan.booking.details.status) {
                        (ChangeKind::New, _) => "created",
                        (ChangeKind::Changed, booking::BookingStatus::Canceled) if was_active => "canceled",
                        (ChangeKind::Changed, _) => "updated",
                    };
                    metrics::count(Metric::Bookings, Some(outcome), 1);
                    self.push_committed(&plan).await;
                    if plan.missed_delivery.is_some() {
                        self.notice_webhook_gaps(integration, style).await;
                    }
                    return Ok(Applied {
                        kind: Some(plan.kind),
                        prospect_created: matches!(plan.prospect, ProspectChange::Create(_)),
                        notes_added: plan.notes_added(),
                        suppressed: false,
                    });
                }
                // An erased guest stays erased: the booking is written without them.
                Err(CommitError::Conflict(CommitConflict::GuestSuppressed(key))) => refused_guests.push(key),
                // Gone, or its notes full or changed: which one, the prospect itself says.
                Err(CommitError::Conflict(CommitConflict::ProspectMissing)) => {
                    let target = match &plan.prospect {
                        ProspectChange::Append { prospect_id, .. } | ProspectChange::Rewrite { prospect_id, .. } => {
                            Some(prospect_id)
                        }
                        _ => None,
                    };
                    full_prospect = match target {
                        Some(id) => self.store.get_prospect(org, id).await?,
                        None => None,
                    };
                    stored_prospect_missing = full_prospect.is_none();
                }
                // Erased from this organization: stays erased, whoever brings them back.
                Err(CommitError::Conflict(CommitConflict::Suppressed)) => {
                    return Ok(Applied { suppressed: true, ..Applied::default() });
                }
                // Disconnected (or reconnected as another integration) meanwhile: stop here.
                Err(CommitError::Conflict(CommitConflict::IntegrationInactive)) => {
                    return Err(SyncError::Token(TokenError::NotConnected));
                }
                Err(CommitError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, invitee = %snapshot.invitee_uri, "lost a race recording a booking; re-planning");
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(SyncError::Contended)
    }

    pub(super) async fn push_prospect_change(&self, org: &crate::domain::OrganizationId, change: &ProspectChange) {
        match change {
            ProspectChange::Create(p) => self.pusher.push(org, PushMessage::prospect_created(p)).await,
            other => {
                if let Some(id) = other.prospect_id() {
                    match self.store.get_prospect(org, id).await {
                        Ok(Some(p)) => self.pusher.push(org, PushMessage::prospect_updated(&p)).await,
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "could not read the prospect to push its update"),
                    }
                }
            }
        }
    }

    /// The booking's guests the organization takes as leads, when it takes guests at all:
    /// valid e-mails the filter admits (the ignore list, members, the host).
    pub(super) fn guest_leads(&self, integration: &Integration, snapshot: &BookingSnapshot) -> Vec<Email> {
        if !integration.crm.guests_as_prospects {
            return Vec::new();
        }
        let event_host = snapshot.host.as_ref().and_then(|h| h.email.as_deref());
        snapshot
            .guests
            .iter()
            .filter(|g| integration.admits(event_host, snapshot.event_type_uri.as_deref(), &g.email))
            .filter_map(|g| Email::parse(&g.email).ok())
            .collect()
    }

    /// Every guest the booking names, by address key, as the privacy index knows them (the
    /// booking is indexed under each: their erasure takes them out of it).
    pub(super) async fn guest_people(
        &self,
        snapshot: &BookingSnapshot,
    ) -> Result<Vec<(String, crate::domain::PersonKeys)>, SyncError> {
        let mut people: Vec<(String, crate::domain::PersonKeys)> = Vec::new();
        for guest in &snapshot.guests {
            let Ok(address) = PersonAddress::parse(&guest.email) else { continue };
            if people.iter().any(|(key, _)| key == address.key()) {
                continue;
            }
            people.push((address.key().to_string(), self.people.person(address.key()).await?));
        }
        Ok(people)
    }

    pub(super) async fn push_committed(&self, plan: &booking::BookingPlan) {
        let org = &plan.booking.organization_id;
        let changes = std::iter::once(&plan.prospect).chain(plan.guests.iter().map(|g| &g.prospect));
        for change in changes {
            self.push_prospect_change(org, change).await;
        }
        if let Some(n) = &plan.notification {
            self.pusher.push(org, PushMessage::notification(n)).await;
        }
    }
}

/// `snapshot` less the guests whose address keys are `refused` (erased: never recorded again).
fn without_guests(snapshot: &BookingSnapshot, refused: &[String]) -> BookingSnapshot {
    let mut kept = snapshot.clone();
    kept.guests.retain(|g| PersonAddress::parse(&g.email).map_or(true, |a| !refused.iter().any(|r| r == a.key())));
    kept
}
