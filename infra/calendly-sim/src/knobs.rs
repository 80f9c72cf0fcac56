//! What a test turns on the simulated Calendly: faults, refusals, plans and roles, delays and
//! its clock.

use super::*;

impl CalendlySim {
    /// Delivers like Calendly on a bad day: every delivery twice, the deliveries of one change
    /// (a reschedule's cancel and create) in reverse order, refused ones retried.
    pub fn set_chaotic_deliveries(&self, chaotic: bool) {
        self.inner.state().chaotic_deliveries = chaotic;
    }

    /// The invitee cancels; delivers `invitee.canceled`.
    pub async fn cancel(&self, booked: &Booked, reason: &str) {
        let deliveries = self.inner.state().cancel(booked, reason);
        self.deliver(deliveries).await;
    }

    /// The invitee reschedules to `new_start`: the old booking is canceled with
    /// `rescheduled: true` and a new event is created; delivers both webhooks.
    pub async fn reschedule(&self, booked: &Booked, new_start: DateTime<Utc>) -> Booked {
        let (new, deliveries) = self.inner.state().reschedule(booked, new_start);
        self.deliver(deliveries).await;
        new
    }

    /// The host marks the invitee as a no-show (`invitee_no_show.created`), or clears it.
    pub async fn set_no_show(&self, booked: &Booked, no_show: bool) {
        let deliveries = self.inner.state().set_no_show(booked, no_show);
        self.deliver(deliveries).await;
    }

    /// Whether bookings trigger webhook deliveries (default on).
    pub fn set_webhook_deliveries(&self, enabled: bool) {
        self.inner.state().deliveries_enabled = enabled;
    }

    /// Answers the next `n` API requests with 429 (as if the minute's budget were spent).
    pub fn rate_limit_next(&self, n: u32) {
        self.inner.state().forced_429 = n;
    }

    /// Makes the API refuse (401) every access token of `user`, even fresh ones, while the
    /// token endpoint still refreshes (access revoked on Calendly's side).
    pub fn refuse_access_of(&self, user: &SimUser) {
        self.inner.state().refused_users.insert(user.uuid.clone());
    }

    /// A fresh access token of `user` (tests calling the simulator's API directly).
    pub fn access_token_of(&self, user: &SimUser) -> String {
        let token = format!("direct-{}", crate::uuid());
        let mut state = self.inner.state();
        let expires_at = state.now() + chrono::Duration::hours(2);
        let scopes = model::CATALOG.iter().map(|s| s.to_string()).collect();
        state
            .access_tokens
            .insert(token.clone(), model::AccessToken { user_uuid: user.uuid.clone(), expires_at, scopes });
        token
    }

    /// `user` leaves their Calendly organization (for one of their own, as its owner).
    pub fn leave_organization(&self, user: &SimUser) {
        let mut state = self.inner.state();
        if let Some(stored) = state.users.iter_mut().find(|u| u.uuid == user.uuid) {
            stored.organization_uri = format!("{}/organizations/left-{}", model::API, user.uuid);
        }
        state.roles.insert(user.uuid.clone(), "owner".into());
    }

    /// Sets `user`'s role in their organization (`owner`, `admin` or `user`; a colleague starts
    /// as `user`, the first user of an organization as `owner`).
    pub fn set_role(&self, user: &SimUser, role: &str) {
        self.inner.state().roles.insert(user.uuid.clone(), role.to_string());
    }

    /// Puts `user`'s Calendly organization on an Enterprise plan (or takes it off): only then
    /// does `POST /data_compliance/deletion/invitees` accept requests.
    pub fn set_enterprise_plan(&self, user: &SimUser, enterprise: bool) {
        let mut state = self.inner.state();
        match enterprise {
            true => state.enterprise_organizations.insert(user.organization_uri.clone()),
            false => state.enterprise_organizations.remove(&user.organization_uri),
        };
    }

    /// The invitee deletion requests Calendly accepted: `(organization URI, e-mails)`.
    pub fn invitee_deletions(&self) -> Vec<(String, Vec<String>)> {
        self.inner.state().invitee_deletions.clone()
    }

    /// Makes webhook subscription creation fail with 403 for `user` (a plan without webhooks).
    pub fn refuse_webhooks_of(&self, user: &SimUser, message: &str) {
        self.inner.state().webhook_refusals.insert(user.uuid.clone(), message.to_string());
    }

    /// Makes the events list hand out the same `next_page_token` on every page, forever.
    pub fn set_repeat_page_token(&self, repeat: bool) {
        self.inner.state().repeat_page_token = repeat;
    }

    /// Makes the invitee list of `booked`'s event fail with `status` (403, 404...).
    pub fn fail_invitees_of(&self, booked: &Booked, status: u16) {
        self.inner.state().failing_events.insert(booked.event_uuid.clone(), status);
    }

    /// Makes every request fail with 503 (Calendly down) until called with false.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.inner.state().unavailable = unavailable;
    }

    /// Adds latency to every API request (benchmarks).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.inner.state().latency = latency;
    }

    /// Moves the simulator's clock forward (token expiry).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.state().clock_offset += by;
    }
}
