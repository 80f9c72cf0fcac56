//! Webhook deliveries of the simulated Calendly, and routing forms.

use super::*;

impl SimState {
    /// The envelope Calendly posts for `event` about `booked`.
    pub fn delivery_body(&self, event: &str, booked: &Booked) -> Vec<u8> {
        let Some(invitee) = self.invitee(booked) else {
            return b"{}".to_vec();
        };
        let scheduled = self.event(&booked.event_uuid);
        let mut payload = self.invitee_json(invitee);
        if let Some(e) = scheduled {
            payload["scheduled_event"] = self.event_json(e);
        }
        let created_by = scheduled.and_then(|e| self.user(&e.user_uuid)).map(|u| u.uri.clone());
        let envelope = json!({
            "created_at": time(self.now()),
            "created_by": created_by,
            "event": event,
            "payload": payload,
        });
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// A delivery of this subscription failed: Calendly notes when its retries started.
    pub fn retry_started(&mut self, subscription_uuid: &str) {
        let now = self.now();
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid) {
            w.retry_started_at.get_or_insert(now);
        }
    }

    /// A delivery got through: the subscription is healthy again.
    pub fn delivered(&mut self, subscription_uuid: &str) {
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid) {
            w.retry_started_at = None;
        }
    }

    /// Retries ran out with nothing delivered since they started: the subscription is disabled.
    pub fn disable_after_retries(&mut self, subscription_uuid: &str) {
        if let Some(w) = self.webhooks.iter_mut().find(|w| w.uuid == subscription_uuid && w.retry_started_at.is_some())
        {
            w.state = "disabled".into();
        }
    }

    /// A routing form of `owner`'s organization.
    pub fn add_routing_form(&mut self, owner_uuid: &str, name: &str, questions: &[&str]) -> String {
        let organization_uri = self.user(owner_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let form = RoutingForm {
            uuid: uuid(),
            organization_uri,
            name: name.into(),
            questions: questions.iter().map(|q| q.to_string()).collect(),
            created_at: self.now(),
        };
        let uri = form.uri();
        self.routing_forms.push(form);
        uri
    }

    /// Someone fills a routing form in: the submission, and its `routing_form_submission.created`
    /// deliveries (to the form's organization's subscriptions that asked for it).
    pub fn submit_form(&mut self, form_uri: &str, answers: Vec<(String, String)>) -> (String, Vec<Delivery>) {
        let now = self.now();
        let submission = FormSubmission {
            uuid: uuid(),
            form_uuid: form_uri.rsplit('/').next().unwrap_or_default().to_string(),
            answers,
            submitter: None,
            created_at: now,
            updated_at: now,
        };
        let uri = submission.uri();
        let uuid = submission.uuid.clone();
        self.submissions.push(submission);
        let deliveries = self.submission_deliveries(&uuid);
        (uri, deliveries)
    }

    /// The booking a submission routed to: the invitee names the submission, the submission
    /// its submitter.
    pub fn book_after_form(
        &mut self,
        user_uuid: &str,
        mut spec: BookingSpec,
        submission_uri: &str,
    ) -> (Booked, Vec<Delivery>) {
        spec.routing_form_submission = Some(submission_uri.to_string());
        let (booked, deliveries) = self.book(user_uuid, spec);
        let now = self.now();
        let submitter = booked.invitee_uri();
        if let Some(s) = self.submissions.iter_mut().find(|s| s.uri() == submission_uri) {
            s.submitter = Some(submitter);
            s.updated_at = now;
        }
        (booked, deliveries)
    }

    pub fn submission_deliveries(&self, submission_uuid: &str) -> Vec<Delivery> {
        const EVENT: &str = "routing_form_submission.created";
        if !self.deliveries_enabled {
            return Vec::new();
        }
        let Some(submission) = self.submissions.iter().find(|s| s.uuid == submission_uuid) else { return Vec::new() };
        let Some(form) = self.routing_forms.iter().find(|f| f.uuid == submission.form_uuid) else { return Vec::new() };
        self.webhooks
            .iter()
            .filter(|w| w.state == "active" && w.scope == "organization" && w.organization_uri == form.organization_uri)
            .filter(|w| w.events.iter().any(|e| e == EVENT))
            .map(|w| {
                let envelope = json!({
                    "created_at": time(self.now()),
                    "created_by": format!("{API}/users/{}", w.user_uuid),
                    "event": EVENT,
                    "payload": submission.to_json(),
                });
                Delivery {
                    subscription_uuid: w.uuid.clone(),
                    url: w.callback_url.clone(),
                    body: serde_json::to_vec(&envelope).unwrap_or_default(),
                }
            })
            .collect()
    }

    pub(super) fn deliveries_for(&mut self, event: &str, booked: &Booked) -> Vec<Delivery> {
        if !self.deliveries_enabled {
            return Vec::new();
        }
        let Some(user_uuid) = self.event(&booked.event_uuid).map(|e| e.user_uuid.clone()) else {
            return Vec::new();
        };
        let host_org = self.user(&user_uuid).map(|u| u.organization_uri.clone()).unwrap_or_default();
        let body = self.delivery_body(event, booked);
        self.webhooks
            .iter()
            .filter(|w| w.state == "active" && w.events.iter().any(|e| e == event))
            .filter(|w| match w.scope.as_str() {
                "organization" => w.organization_uri == host_org,
                _ => w.user_uuid == user_uuid,
            })
            .map(|w| {
                // An organization subscription's deliveries name its creator as `created_by`.
                let body = match w.scope.as_str() {
                    "organization" => with_created_by(&body, &format!("{API}/users/{}", w.user_uuid)),
                    _ => body.clone(),
                };
                Delivery { subscription_uuid: w.uuid.clone(), url: w.callback_url.clone(), body }
            })
            .collect()
    }
}

fn with_created_by(body: &[u8], creator: &str) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut envelope) => {
            envelope["created_by"] = json!(creator);
            serde_json::to_vec(&envelope).unwrap_or_default()
        }
        Err(_) => body.to_vec(),
    }
}
