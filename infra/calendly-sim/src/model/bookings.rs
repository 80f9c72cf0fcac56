//! Bookings in the simulated Calendly: booked, canceled, rescheduled, marked no-show, and
//! their JSON as the API answers it.

use super::*;

impl SimState {
    pub(super) fn new_booking(&mut self, user_uuid: &str, spec: BookingSpec, old_invitee: Option<String>) -> Booked {
        let now = self.now();
        let event_uuid = uuid();
        let invitee_uuid = uuid();
        self.push_event(Event {
            uuid: event_uuid.clone(),
            user_uuid: user_uuid.into(),
            name: spec.event_name.clone(),
            start: spec.start_time,
            end: spec.start_time + Duration::minutes(spec.duration_minutes),
            status: "active".into(),
            created_at: now,
            updated_at: now,
            cancellation: None,
            join_url: spec.join_url.clone(),
            call_phone: spec.call_phone.clone(),
            guests: spec.guests.iter().map(|g| (g.clone(), now)).collect(),
        });
        self.push_invitee(InviteeRecord {
            uuid: invitee_uuid.clone(),
            event_uuid: event_uuid.clone(),
            spec,
            status: "active".into(),
            rescheduled: false,
            old_invitee,
            new_invitee: None,
            cancellation: None,
            no_show: None,
            created_at: now,
            updated_at: now,
        });
        Booked { event_uuid, invitee_uuid }
    }

    pub fn book_silently(&mut self, user_uuid: &str, spec: BookingSpec) -> Booked {
        self.new_booking(user_uuid, spec, None)
    }

    /// A group event: one scheduled event with every one of `specs` as its invitees (the
    /// event's name, time and length are the first spec's).
    pub fn book_group_silently(&mut self, user_uuid: &str, specs: Vec<BookingSpec>) -> Vec<Booked> {
        let mut specs = specs.into_iter();
        let Some(first) = specs.next() else { return Vec::new() };
        let head = self.book_silently(user_uuid, first);
        let now = self.now();
        let mut booked = vec![head.clone()];
        for spec in specs {
            let invitee_uuid = uuid();
            self.push_invitee(InviteeRecord {
                uuid: invitee_uuid.clone(),
                event_uuid: head.event_uuid.clone(),
                spec,
                status: "active".into(),
                rescheduled: false,
                old_invitee: None,
                new_invitee: None,
                cancellation: None,
                no_show: None,
                created_at: now,
                updated_at: now,
            });
            booked.push(Booked { event_uuid: head.event_uuid.clone(), invitee_uuid });
        }
        booked
    }

    pub fn book(&mut self, user_uuid: &str, spec: BookingSpec) -> (Booked, Vec<Delivery>) {
        let booked = self.book_silently(user_uuid, spec);
        let deliveries = self.deliveries_for("invitee.created", &booked);
        (booked, deliveries)
    }

    pub(super) fn cancel_record(&mut self, booked: &Booked, reason: &str, rescheduled_to: Option<String>) {
        let now = self.now();
        let cancellation = json!({
            "canceled_by": "Invitee",
            "reason": reason,
            "canceler_type": "invitee",
            "created_at": time(now),
        });
        if let Some(i) = self.invitee_mut(booked) {
            i.status = "canceled".into();
            i.rescheduled = rescheduled_to.is_some();
            i.new_invitee = rescheduled_to;
            i.cancellation = Some(cancellation.clone());
            i.updated_at = now;
        }
        if let Some(e) = self.event_mut(&booked.event_uuid) {
            e.status = "canceled".into();
            e.cancellation = Some(cancellation);
            e.updated_at = now;
        }
    }

    pub fn cancel(&mut self, booked: &Booked, reason: &str) -> Vec<Delivery> {
        self.cancel_record(booked, reason, None);
        self.deliveries_for("invitee.canceled", booked)
    }

    pub fn reschedule(&mut self, booked: &Booked, new_start: DateTime<Utc>) -> (Booked, Vec<Delivery>) {
        let Some(old) = self.invitee(booked) else {
            return (booked.clone(), Vec::new());
        };
        let mut spec = old.spec.clone();
        spec.start_time = new_start;
        let user_uuid = self.event(&booked.event_uuid).map(|e| e.user_uuid.clone()).unwrap_or_default();
        let new = self.new_booking(&user_uuid, spec, Some(booked.invitee_uri()));
        self.cancel_record(booked, "Rescheduled", Some(new.invitee_uri()));
        let mut deliveries = self.deliveries_for("invitee.canceled", booked);
        deliveries.extend(self.deliveries_for("invitee.created", &new));
        (new, deliveries)
    }

    pub fn set_no_show(&mut self, booked: &Booked, no_show: bool) -> Vec<Delivery> {
        let now = self.now();
        if let Some(i) = self.invitee_mut(booked) {
            i.no_show = no_show
                .then(|| json!({ "uri": format!("{API}/invitee_no_shows/{}", uuid()), "created_at": time(now) }));
            i.updated_at = now;
        }
        self.deliveries_for(if no_show { "invitee_no_show.created" } else { "invitee_no_show.deleted" }, booked)
    }

    /// `POST /invitee_no_shows` by `viewer`: the invitee must be theirs to see, its event
    /// started and not canceled, and not already marked. The no-show's resource and the echo
    /// deliveries, or Calendly's refusal.
    pub fn mark_no_show(&mut self, viewer: &str, invitee_uri: &str) -> Result<(Value, Vec<Delivery>), (u16, String)> {
        let mut segments = invitee_uri.trim_end_matches('/').rsplit('/');
        let (invitee_uuid, event_uuid) = (segments.next().unwrap_or_default(), segments.nth(1).unwrap_or_default());
        let booked = Booked { event_uuid: event_uuid.into(), invitee_uuid: invitee_uuid.into() };
        let now = self.now();
        let Some(event) = self.event(event_uuid).filter(|e| self.can_see(viewer, e)) else {
            return Err((404, "The server could not find the requested resource.".into()));
        };
        if event.start > now {
            return Err((400, "The event has not started yet".into()));
        }
        let Some(invitee) = self.invitee(&booked) else {
            return Err((404, "The server could not find the requested resource.".into()));
        };
        if invitee.status != "active" {
            return Err((400, "A canceled invitee can't be marked as a no-show".into()));
        }
        if invitee.no_show.is_some() {
            return Err((422, "The invitee is already marked as a no-show".into()));
        }
        let deliveries = self.set_no_show(&booked, true);
        let marked = self.invitee(&booked).and_then(|i| i.no_show.clone()).unwrap_or_default();
        let resource = json!({ "uri": marked["uri"], "invitee": invitee_uri, "created_at": marked["created_at"] });
        Ok((resource, deliveries))
    }

    /// `DELETE /invitee_no_shows/{uuid}` by `viewer`: the echo deliveries, or 404.
    pub fn unmark_no_show(&mut self, viewer: &str, no_show_uuid: &str) -> Result<Vec<Delivery>, (u16, String)> {
        let uri = format!("{API}/invitee_no_shows/{no_show_uuid}");
        let found = self.invitees.iter().find(|i| i.no_show.as_ref().is_some_and(|n| n["uri"] == uri.as_str()));
        let booked = found.map(|i| Booked { event_uuid: i.event_uuid.clone(), invitee_uuid: i.uuid.clone() });
        let visible = booked.as_ref().and_then(|b| self.event(&b.event_uuid)).is_some_and(|e| self.can_see(viewer, e));
        match booked.filter(|_| visible) {
            Some(booked) => Ok(self.set_no_show(&booked, false)),
            None => Err((404, "The server could not find the requested resource.".into())),
        }
    }

    pub fn event_json(&self, e: &Event) -> Value {
        let user = self.user(&e.user_uuid);
        let invitees: Vec<&InviteeRecord> = self.invitees_of(&e.uuid).collect();
        let active = invitees.iter().filter(|i| i.status == "active").count();
        let mut event = json!({
            "uri": format!("{API}/scheduled_events/{}", e.uuid),
            "name": e.name,
            "meeting_notes_plain": null,
            "meeting_notes_html": null,
            "status": e.status,
            "start_time": time(e.start),
            "end_time": time(e.end),
            "event_type": Self::event_type_uri(&e.user_uuid, &e.name),
            "location": match (&e.join_url, &e.call_phone) {
                (Some(url), _) => json!({ "type": "zoom", "status": "pushed", "join_url": url, "data": { "id": 81234567890u64 } }),
                (None, Some(phone)) => json!({ "type": "outbound_call", "location": phone }),
                (None, None) => json!({ "type": "physical", "location": "12 rue de la Paix, Paris" }),
            },
            "invitees_counter": { "total": invitees.len(), "active": active, "limit": invitees.len().max(1) },
            "created_at": time(e.created_at),
            "updated_at": time(e.updated_at),
            "event_memberships": [{ "user": user.map(|u| u.uri.clone()), "user_email": user.map(|u| u.email.clone()), "user_name": user.map(|u| u.name.clone()) }],
            "event_guests": e.guests.iter().map(|(email, at)| json!({ "email": email, "created_at": time(*at), "updated_at": time(*at) })).collect::<Vec<_>>(),
        });
        if let Some(c) = &e.cancellation {
            event["cancellation"] = c.clone();
        }
        event
    }

    pub fn invitee_json(&self, i: &InviteeRecord) -> Value {
        json!({
            "uri": format!("{API}/scheduled_events/{}/invitees/{}", i.event_uuid, i.uuid),
            "email": i.spec.invitee_email,
            "first_name": i.spec.first_name,
            "last_name": i.spec.last_name,
            "name": i.spec.invitee_name,
            "status": i.status,
            "questions_and_answers": i.spec.questions.iter().enumerate().map(|(position, (q, a))| json!({ "question": q, "answer": a, "position": position })).collect::<Vec<_>>(),
            "timezone": "Europe/Paris",
            "event": format!("{API}/scheduled_events/{}", i.event_uuid),
            "created_at": time(i.created_at),
            "updated_at": time(i.updated_at),
            "tracking": {
                "utm_campaign": i.spec.utm.as_ref().map(|u| u.2.clone()),
                "utm_source": i.spec.utm.as_ref().map(|u| u.0.clone()),
                "utm_medium": i.spec.utm.as_ref().map(|u| u.1.clone()),
                "utm_content": null, "utm_term": null, "salesforce_uuid": null
            },
            "text_reminder_number": i.spec.text_reminder_number,
            "rescheduled": i.rescheduled,
            "old_invitee": i.old_invitee,
            "new_invitee": i.new_invitee,
            "cancel_url": format!("https://calendly.com/cancellations/{}", i.uuid),
            "reschedule_url": format!("https://calendly.com/reschedulings/{}", i.uuid),
            "routing_form_submission": i.spec.routing_form_submission,
            "cancellation": i.cancellation,
            "payment": null,
            "no_show": i.no_show,
            "reconfirmation": null,
            "scheduling_method": null,
            "invitee_scheduled_by": null,
        })
    }
}
