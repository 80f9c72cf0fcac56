//! What a test reads of the simulated Calendly (its counters and subscriptions), and how it
//! sends webhook deliveries: signed, retried, out of order when chaotic.

use super::*;

impl CalendlySim {
    /// Requests received so far, by kind (`token`, `users_me`, `scheduled_events`,
    /// `invitees`, `webhook_subscriptions`, `revoke`).
    pub fn request_count(&self, kind: &str) -> u64 {
        self.inner.state().requests.get(kind).copied().unwrap_or(0)
    }

    /// API requests answered with 429 so far.
    pub fn rate_limited_count(&self) -> u64 {
        self.request_count("rate_limited")
    }

    /// Every API request so far (token endpoint excluded).
    pub fn api_request_count(&self) -> u64 {
        let state = self.inner.state();
        API_REQUEST_KINDS.iter().map(|k| state.requests.get(*k).copied().unwrap_or(0)).sum()
    }

    /// API requests so far, by kind (`scheduled_events`, `webhook_subscriptions`, …).
    pub fn api_request_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let state = self.inner.state();
        API_REQUEST_KINDS.iter().map(|k| (*k, state.requests.get(*k).copied().unwrap_or(0))).collect()
    }

    /// Refresh-token reuses refused with `invalid_grant`.
    pub fn refused_refresh_count(&self) -> u64 {
        self.inner.state().refused_refreshes
    }

    /// Every webhook subscription: `(uri, callback_url, state, scope)`.
    pub fn all_webhook_subscriptions(&self) -> Vec<(String, String, String, String)> {
        self.inner
            .state()
            .webhooks
            .iter()
            .map(|w| (w.uri(), w.callback_url.clone(), w.state.clone(), w.scope.clone()))
            .collect()
    }

    /// The webhook subscriptions of `user`: `(uri, callback_url, state)`.
    pub fn webhook_subscriptions(&self, user: &SimUser) -> Vec<(String, String, String)> {
        self.inner
            .state()
            .webhooks
            .iter()
            .filter(|w| w.user_uuid == user.uuid)
            .map(|w| (w.uri(), w.callback_url.clone(), w.state.clone()))
            .collect()
    }

    /// Disables `user`'s subscriptions, as Calendly does after 24 h of failed deliveries.
    pub fn disable_webhook_subscriptions(&self, user: &SimUser) {
        let now = self.inner.state().now();
        for w in self.inner.state().webhooks.iter_mut().filter(|w| w.user_uuid == user.uuid) {
            w.state = "disabled".into();
            w.retry_started_at = Some(now);
        }
    }

    /// Tokens revoked so far.
    pub fn revoked_token_count(&self) -> usize {
        self.inner.state().revoked
    }

    /// A signed delivery body and header for `event` about `booked` (tests of our receiver).
    pub fn signed_delivery(&self, event: &str, booked: &Booked, signed_at: DateTime<Utc>) -> (Vec<u8>, String) {
        let state = self.inner.state();
        let body = state.delivery_body(event, booked);
        let header = sign_header(&state.signing_key, signed_at.timestamp(), &body);
        (body, header)
    }

    /// The most requests any user made within one rate-limit window so far.
    pub fn peak_window_requests(&self) -> u32 {
        self.inner.state().peak_window_requests
    }

    /// Delays every delivery by `delay` (sent in the background: the booking call returns first).
    pub fn set_delivery_delay(&self, delay: std::time::Duration) {
        self.inner.state().delivery_delay = delay;
    }

    /// Deliveries a request of the API caused (a no-show marked through the API), sent after
    /// the answer as Calendly does, in the background.
    pub(crate) fn echo(shared: &Arc<Shared>, deliveries: Vec<model::Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let sim = Self { inner: shared.clone(), base_url: String::new() };
        tokio::spawn(async move { sim.deliver(deliveries).await });
    }

    pub(crate) async fn deliver(&self, deliveries: Vec<model::Delivery>) {
        let delay = self.inner.state().delivery_delay;
        if delay.is_zero() {
            return self.send_deliveries(deliveries).await;
        }
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sim.send_deliveries(deliveries).await;
        });
    }

    /// Sends each delivery once, in order; a refused one goes on in the background with
    /// Calendly's retries (see `DeliveryRetry`).
    pub(crate) async fn send_deliveries(&self, mut deliveries: Vec<model::Delivery>) {
        // Signed on the simulator's clock, which tests move forward together with ours.
        let (signed_at, chaotic) = {
            let state = self.inner.state();
            (state.now().timestamp(), state.chaotic_deliveries)
        };
        if chaotic {
            deliveries.reverse();
            deliveries = deliveries.into_iter().flat_map(|d| [d.clone(), d]).collect();
        }
        for delivery in deliveries {
            match self.deliver_once(&delivery, signed_at).await {
                Attempt::Accepted | Attempt::Gone => {}
                Attempt::Refused => {
                    let sim = self.clone();
                    tokio::spawn(async move { sim.retry(delivery, signed_at).await });
                }
            }
        }
    }

    /// Calendly's retries of one refused delivery: waits doubling from `first_delay`, for
    /// `window`; then the subscription is disabled (unless another delivery got through).
    pub(crate) async fn retry(&self, delivery: model::Delivery, first_signed_at: i64) {
        let policy = self.inner.config.delivery_retry;
        let started = tokio::time::Instant::now();
        let mut wait = policy.first_delay;
        self.inner.state().retry_started(&delivery.subscription_uuid);
        loop {
            if started.elapsed() + wait > policy.window {
                let mut state = self.inner.state();
                state.count("delivery_given_up");
                state.disable_after_retries(&delivery.subscription_uuid);
                return;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            let signed_at = if policy.resign { self.inner.state().now().timestamp() } else { first_signed_at };
            self.inner.state().count("delivery_retried");
            match self.deliver_once(&delivery, signed_at).await {
                Attempt::Accepted | Attempt::Gone => return,
                Attempt::Refused => {}
            }
        }
    }

    /// One delivery attempt: accepted (2xx), gone (410: the subscription is deleted at once),
    /// or refused (anything else, timeouts included: retried).
    pub(crate) async fn deliver_once(&self, delivery: &model::Delivery, signed_at: i64) -> Attempt {
        let key = {
            let mut state = self.inner.state();
            let active = state.webhooks.iter().any(|w| w.uuid == delivery.subscription_uuid && w.state == "active");
            if !active {
                return Attempt::Gone;
            }
            if state.failing_deliveries > 0 {
                state.failing_deliveries -= 1;
                state.count("delivery_refused");
                return Attempt::Refused;
            }
            state.signing_key.clone()
        };
        let header = sign_header(&key, signed_at, &delivery.body);
        let result = self
            .inner
            .http
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("user-agent", "Calendly")
            .header("calendly-webhook-signature", header)
            .body(delivery.body.clone())
            .send()
            .await;
        let mut state = self.inner.state();
        match result {
            Ok(r) if r.status().is_success() => {
                state.count("delivery_accepted");
                state.delivered(&delivery.subscription_uuid);
                Attempt::Accepted
            }
            Ok(r) if r.status() == reqwest::StatusCode::GONE => {
                state.count("delivery_gone");
                state.webhooks.retain(|w| w.uuid != delivery.subscription_uuid);
                Attempt::Gone
            }
            Ok(r) => {
                state.count("delivery_refused");
                tracing::warn!(status = %r.status(), url = %delivery.url, "simulated webhook delivery refused");
                Attempt::Refused
            }
            Err(e) => {
                state.count("delivery_refused");
                tracing::warn!(error = %e, url = %delivery.url, "simulated webhook delivery failed");
                Attempt::Refused
            }
        }
    }
}
