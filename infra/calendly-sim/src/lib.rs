//! A Calendly simulator that behaves like the real API v2 (as documented in the team's
//! Calendly notes), not like our client: PKCE S256 and HTTP Basic on the token endpoint,
//! 2-hour access tokens, single-use refresh tokens (`400 invalid_grant` on reuse), `count`
//! capped at 100 with `next_page_token`, rate-limit headers and 429s, `409` on a webhook URL
//! subscribed twice, and signed webhook deliveries. It runs in-process on a loopback port.

mod knobs;
mod model;
mod observe;
mod routes;

pub use model::{Booked, BookingSpec};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use model::SimState;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
/// The kinds of API request counted (the token endpoint is not one).
const API_REQUEST_KINDS: [&str; 8] = [
    "users_me",
    "scheduled_events",
    "scheduled_event",
    "invitees",
    "invitee",
    "webhook_subscriptions",
    "event_types",
    "organization_memberships",
];

/// Who the simulated Calendly thinks our app is.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// The OAuth client secret the token endpoint accepts.
    pub client_secret: String,
    /// The app-wide webhook signing key deliveries are signed with.
    pub webhook_signing_key: String,
    /// Requests per user per window before 429 (Calendly: 500 a minute on paid plans, 50 on Free).
    pub rate_limit: u32,
    /// The rate-limit window: Calendly's is a minute. Tests shorten it to exercise many windows
    /// quickly; the benchmarks keep the minute.
    pub rate_window: std::time::Duration,
    /// How refused deliveries are retried (Calendly: exponential back-off for 24 h, then the
    /// subscription is disabled). Tests compress it.
    pub delivery_retry: DeliveryRetry,
}

/// Calendly's retry machine for refused deliveries, compressible in time.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRetry {
    /// The wait before the first retry; each next wait doubles.
    pub first_delay: std::time::Duration,
    /// How long after the first failure retries go on; then the subscription is disabled.
    pub window: std::time::Duration,
    /// Whether a retry is signed afresh (`t` = now) or keeps the first attempt's `t`
    /// (Calendly's behaviour is not documented: the captured delivery's `t` is the event's
    /// time, so the default keeps it, the harder case).
    pub resign: bool,
}

impl Default for DeliveryRetry {
    fn default() -> Self {
        Self {
            first_delay: std::time::Duration::from_secs(60),
            window: std::time::Duration::from_secs(24 * 3600),
            resign: false,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
            webhook_signing_key: "sim-webhook-signing-key".into(),
            rate_limit: 500,
            rate_window: std::time::Duration::from_secs(60),
            delivery_retry: DeliveryRetry::default(),
        }
    }
}

/// A simulated Calendly user (a host).
#[derive(Clone, Debug)]
pub struct SimUser {
    /// The user's UUID.
    pub uuid: String,
    /// The user's URI (`https://api.calendly.com/users/{uuid}`).
    pub uri: String,
    /// The user's name.
    pub name: String,
    /// The user's e-mail.
    pub email: String,
    /// The user's Calendly organization.
    pub organization_uri: String,
}

/// A running simulator: a handle to its state and its base URL.
#[derive(Clone)]
pub struct CalendlySim {
    inner: Arc<Shared>,
    base_url: String,
}

pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<SimState>,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The TLS of deliveries (over plain HTTP locally; reqwest is built without a default crypto
/// provider, so one is named here).
fn delivery_tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl CalendlySim {
    /// Starts the simulator on `127.0.0.1:port` (0 for any free port).
    pub async fn start(config: SimConfig, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Mutex::new(SimState::new(&config.webhook_signing_key));
        let inner = Arc::new(Shared {
            config,
            state,
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(delivery_tls())
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .map_err(std::io::Error::other)?,
        });
        let app = routes::router(inner.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Calendly simulator stopped");
            }
        });
        Ok(Self { inner, base_url })
    }

    /// `http://127.0.0.1:PORT`: both the API and the auth base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The simulator's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Adds a host user.
    pub fn add_user(&self, name: &str, email: &str) -> SimUser {
        self.inner.state().add_user(name, email)
    }

    /// Adds `count` members (role `user`) to `owner`'s organization, named `Member N`.
    pub fn add_team(&self, owner: &SimUser, count: usize) -> Vec<SimUser> {
        let mut state = self.inner.state();
        (1..=count)
            .map(|n| state.add_colleague(owner, &format!("Member {n}"), &format!("member{n}@team.example")))
            .collect()
    }

    /// The scopes the app is registered with in Calendly's portal: tokens get what the
    /// authorize URL requests *and* the app has, nothing else (the whole catalog by default).
    pub fn set_app_scopes(&self, scopes: &[&str]) {
        self.inner.state().app_scopes = Some(scopes.iter().map(|s| s.to_string()).collect());
    }

    /// Leaves `scope` out of token answers (Calendly does not document that it is always sent).
    pub fn omit_token_scope(&self, omit: bool) {
        self.inner.state().omit_token_scope = omit;
    }

    /// The user removes the app in Calendly: every token dies, refreshes answer `invalid_grant`.
    pub fn revoke_grant(&self, user: &SimUser) {
        self.inner.state().revoke_grant(&user.uuid);
    }

    /// The signing key is regenerated in Calendly's portal: deliveries are signed with `key`
    /// from now on.
    pub fn regenerate_signing_key(&self, key: &str) {
        self.inner.state().signing_key = key.to_string();
    }

    /// The next `n` delivery attempts fail on Calendly's side as if our endpoint timed out
    /// (nothing is sent): they go to Calendly's retries.
    pub fn fail_next_deliveries(&self, n: u32) {
        self.inner.state().failing_deliveries = n;
    }

    /// The key deliveries are signed with now.
    pub fn signing_key(&self) -> String {
        self.inner.state().signing_key.clone()
    }

    /// The simulated user with this URI.
    pub fn user_by_uri(&self, uri: &str) -> Option<SimUser> {
        self.inner.state().users.iter().find(|u| u.uri == uri).cloned()
    }

    /// A user of the same Calendly organization as `colleague`.
    pub fn add_colleague(&self, colleague: &SimUser, name: &str, email: &str) -> SimUser {
        self.inner.state().add_colleague(colleague, name, email)
    }

    /// What Calendly's consent screen does when `user` clicks "Allow": an authorization code
    /// bound to the redirect URI and PKCE challenge of the authorize URL.
    pub fn approve(&self, user: &SimUser, authorize_url: &str) -> Result<String, String> {
        let url = url::Url::parse(authorize_url).map_err(|e| e.to_string())?;
        let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        self.inner.state().approve(&self.inner.config, &user.uuid, &query)
    }

    /// Books a slot with `user` (an invitee creates a scheduled event); delivers webhooks.
    pub async fn book(&self, user: &SimUser, spec: BookingSpec) -> Booked {
        let (booked, deliveries) = self.inner.state().book(&user.uuid, spec);
        self.deliver(deliveries).await;
        booked
    }

    /// A published routing form of `owner`'s Calendly organization, asking `questions`; its URI.
    pub fn add_routing_form(&self, owner: &SimUser, name: &str, questions: &[&str]) -> String {
        self.inner.state().add_routing_form(&owner.uuid, name, questions)
    }

    /// Someone submits `form_uri` with `answers` (`(question, answer)`): delivers
    /// `routing_form_submission.created` to the organization's subscriptions asking for it.
    /// The submission's URI.
    pub async fn submit_form(&self, form_uri: &str, answers: &[(&str, &str)]) -> String {
        let answers = answers.iter().map(|(q, a)| (q.to_string(), a.to_string())).collect();
        let (uri, deliveries) = self.inner.state().submit_form(form_uri, answers);
        self.deliver(deliveries).await;
        uri
    }

    /// Delivers `routing_form_submission.created` for `submission_uri` again, as it stands now
    /// (Calendly's retry of a delivery refused earlier, or one arriving after its booking's).
    pub async fn redeliver_submission(&self, submission_uri: &str) {
        let uuid = submission_uri.rsplit('/').next().unwrap_or_default().to_string();
        let deliveries = self.inner.state().submission_deliveries(&uuid);
        self.deliver(deliveries).await;
    }

    /// The booking `submission_uri` routed to (delivers `invitee.created`; the invitee names
    /// the submission and the submission its submitter).
    pub async fn book_after_form(&self, user: &SimUser, spec: BookingSpec, submission_uri: &str) -> Booked {
        let (booked, deliveries) = self.inner.state().book_after_form(&user.uuid, spec, submission_uri);
        self.deliver(deliveries).await;
        booked
    }

    /// Books many slots at once (no webhook deliveries): seeding for syncs and benchmarks.
    pub fn seed_bookings(&self, user: &SimUser, specs: Vec<BookingSpec>) -> Vec<Booked> {
        let mut state = self.inner.state();
        specs.into_iter().map(|spec| state.book_silently(&user.uuid, spec)).collect()
    }

    /// Books a group event (silently): one scheduled event whose invitees are `specs`.
    pub fn seed_group_event(&self, user: &SimUser, specs: Vec<BookingSpec>) -> Vec<Booked> {
        self.inner.state().book_group_silently(&user.uuid, specs)
    }
}

/// What one delivery attempt came to.
enum Attempt {
    Accepted,
    Gone,
    Refused,
}

/// Calendly's signature header: `t=<unix>,v1=<hex HMAC-SHA256(key, t + "." + body)>`.
pub fn sign_header(key: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn random(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS random source");
    URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS random source");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
