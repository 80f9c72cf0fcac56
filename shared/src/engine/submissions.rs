//! Routing form submissions: recorded once, polled in organization scope, named by their form.

use super::*;

impl SyncEngine {
    /// Records one routing form submission exactly once: its note on the prospect of its
    /// booking if that came first, else on the prospect of the e-mail it gives (created if
    /// new). What it did.
    pub async fn apply_submission(
        &self,
        integration: &Integration,
        snapshot: &SubmissionSnapshot,
        style: &NoteStyle,
    ) -> Result<SubmissionApplied, SyncError> {
        let org = &integration.organization_id;
        let email = snapshot.email();
        if let Some(email) = &email
            && !integration.admits(None, None, email.as_str())
        {
            return Ok(SubmissionApplied::Ignored);
        }
        let person = match &email {
            Some(email) => Some(self.people.person(&email.key()).await?),
            None => None,
        };
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let link = self.store.get_submission_link(org, &snapshot.uuid).await?;
            let linked_prospect = match &link {
                Some(link) => self.store.get_prospect(org, &link.prospect_id).await?,
                None => None,
            };
            let prospect_with_email = match (&linked_prospect, &email) {
                (None, Some(email)) => self.store.find_prospect_by_email(org, &email.key()).await?,
                _ => None,
            };
            let known = KnownForSubmission {
                link: link.as_ref(),
                linked_prospect: linked_prospect.as_ref(),
                prospect_with_email: prospect_with_email.as_ref(),
            };
            let Some(mut plan) =
                routing::plan_submission(org, &integration.id, snapshot, known, style, self.clock.now())
            else {
                return Ok(match (&link, &email) {
                    (Some(_), _) => SubmissionApplied::AlreadyRecorded,
                    (None, None) => SubmissionApplied::WithoutEmail,
                    (None, Some(_)) => SubmissionApplied::Ignored,
                });
            };
            plan.person = person.clone();
            match self.store.commit_submission(&plan).await {
                Ok(()) => {
                    self.push_prospect_change(org, &plan.prospect).await;
                    return Ok(SubmissionApplied::Recorded {
                        prospect_created: matches!(plan.prospect, ProspectChange::Create(_)),
                    });
                }
                Err(CommitError::Conflict(CommitConflict::Suppressed)) => return Ok(SubmissionApplied::Suppressed),
                Err(CommitError::Conflict(CommitConflict::IntegrationInactive)) => {
                    return Err(SyncError::Token(TokenError::NotConnected));
                }
                Err(CommitError::Conflict(conflict)) => {
                    tracing::debug!(%conflict, "lost a race recording a routing form submission; re-planning");
                }
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(SyncError::Contended)
    }

    /// The routing form submissions made since `since`, read from Calendly (a missed delivery
    /// still arrives), each recorded exactly once; how many were recorded, and how many gave
    /// no e-mail. Pages newest first and stops at the first older than `since`.
    pub async fn poll_routing_forms(
        &self,
        integration: &Integration,
        since: chrono::DateTime<Utc>,
        rate_limit_budget: Duration,
    ) -> Result<(u64, u64), SyncError> {
        let session = self.session(rate_limit_budget);
        let organization = integration.calendly_organization_uri.clone();
        let mut forms = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..crate::calendly::MAX_LIST_PAGES {
            let page = self
                .authorized(&session, integration, |api, token| {
                    let (organization, page) = (organization.clone(), page_token.clone());
                    async move { api.list_routing_forms(&token, &organization, page.as_deref()).await }
                })
                .await?;
            forms.extend(page.collection);
            match page.pagination.next_page_token {
                Some(next) if Some(&next) != page_token.as_ref() => page_token = Some(next),
                _ => break,
            }
        }
        let style = self.store.get_organization(&integration.organization_id).await?.note_style();
        let (mut recorded, mut without_email) = (0, 0);
        for form in forms {
            let mut page_token: Option<String> = None;
            for _ in 0..MAX_SUBMISSION_PAGES {
                let page = self
                    .authorized(&session, integration, |api, token| {
                        let (form, page) = (form.uri.clone(), page_token.clone());
                        async move { api.list_routing_form_submissions(&token, &form, page.as_deref()).await }
                    })
                    .await?;
                let mut reached_since = false;
                for submission in page.collection {
                    if submission.created_at < since {
                        reached_since = true;
                        break;
                    }
                    let snapshot = submission.snapshot(Some(form.name.clone()));
                    match self.apply_submission(integration, &snapshot, &style).await? {
                        SubmissionApplied::Recorded { .. } => recorded += 1,
                        SubmissionApplied::WithoutEmail => without_email += 1,
                        _ => {}
                    }
                }
                match page.pagination.next_page_token {
                    Some(next) if !reached_since => page_token = Some(next),
                    _ => break,
                }
            }
        }
        if recorded + without_email > 0 {
            tracing::info!(organization_id = %integration.organization_id, recorded, without_email, "routing form submissions polled");
        }
        Ok((recorded, without_email))
    }

    /// The name of a delivered submission's form, read from Calendly (a delivery names it by
    /// URI only); `None` when Calendly won't say (the note then names no form).
    pub async fn routing_form_name(&self, integration: &Integration, form_uri: &str) -> Option<String> {
        let session = self.session(Duration::ZERO);
        let form = self
            .authorized(&session, integration, |api, token| {
                let uri = form_uri.to_string();
                async move { api.get_routing_form(&token, &uri).await }
            })
            .await;
        match form {
            Ok(form) => Some(form.name),
            Err(e) => {
                tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not read a routing form's name");
                None
            }
        }
    }
}
