//! The product's use cases, by capability, over the ports: connect, subscription, status and
//! settings, sync jobs, webhook intake, real time, prospects, notifications, organization.
//! HTTP, Lambda and the local stack all call these; none of them holds business rules, and no
//! router reaches a port: they call what is here.

mod bookings;
mod connect;
mod error;
mod notifications;
mod organization;
mod pages;
mod prospects;
mod realtime;
mod status;
mod subscription;
pub mod sync;
pub mod webhook;

pub use bookings::Bookings;
pub use connect::{ConnectOutcome, ConnectStart};
pub use error::AppError;
pub use notifications::Notifications;
pub use organization::Organizations;
pub use pages::PageCursors;
pub use prospects::{ProspectDraft, Prospects};
pub use realtime::{Connector, forget_connection};
pub use status::{ConnectionStatus, EventTypeChoice, SettingsChange};
pub use subscription::WebhookCheck;
pub use sync::{JobError, QueuedSync, Scheduler};
pub use webhook::DeliveryOutcome;

use crate::auth::JwtVerifier;
use crate::calendly::CalendlyApi;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{CursorSigner, Sealer};
use crate::domain::{Integration, OrganizationId};
use crate::push::Pusher;
use crate::queue::JobQueue;
use crate::store::Store;
use crate::sync::SyncEngine;
use crate::tokens::TokenKeeper;
use std::sync::Arc;

/// The few Calendly calls made inside a request (connect, webhook check, disconnect) may wait
/// this long for a rate-limit reset; syncs never wait (they run as jobs).
pub(crate) const MANUAL_RATE_LIMIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The product's use cases and the ports they drive. The ports are the crate's own: routers
/// call use cases, never a port (the accessors below serve wiring, the local stack and tests).
#[derive(Clone)]
pub struct Services {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) calendly: Arc<dyn CalendlyApi>,
    pub(crate) pusher: Arc<dyn Pusher>,
    pub(crate) queue: Arc<dyn JobQueue>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sealer: Sealer,
    /// The prospects API's capability.
    pub(crate) prospects: Prospects,
    /// The notifications API's capability.
    pub(crate) notifications: Notifications,
    /// The bookings list's capability.
    pub(crate) bookings: Bookings,
    /// The organization settings' capability.
    pub(crate) organizations: Organizations,
    /// Calendly's event types per organization, for a few minutes (`GET /calendly/event-types`).
    pub(crate) event_types_cache: Arc<status::EventTypesCache>,
    /// How often one organization may ask for a manual sync.
    pub(crate) manual_sync_cooldown: chrono::Duration,
    /// The `$connect` use case.
    pub(crate) connector: Connector,
    pub(crate) jwt: JwtVerifier,
    pub(crate) engine: SyncEngine,
    pub(crate) webhook_base_url: String,
    /// The current webhook signing key, then the previous one during a key roll.
    pub(crate) webhook_signing_keys: Vec<crate::config::Secret>,
    pub(crate) frontend_url: Option<String>,
    /// The longest slice a worker runs a sync job for before it checkpoints and re-queues.
    pub(crate) job_budget: std::time::Duration,
    /// The first retry delay of a job after a transient failure.
    pub(crate) job_retry_delay: std::time::Duration,
}

/// The adapters the use cases drive.
pub struct Adapters {
    /// Every item family (DynamoDB, or the embedded store).
    pub store: Arc<dyn Store>,
    /// Calendly's API.
    pub calendly: Arc<dyn CalendlyApi>,
    /// Pushes to the organization's browsers.
    pub pusher: Arc<dyn Pusher>,
    /// Where sync jobs wait for a worker.
    pub queue: Arc<dyn JobQueue>,
    /// Now (a fixed or advanceable clock in tests).
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Wires the use cases from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        let Adapters { store, calendly, pusher, queue, clock } = adapters;
        let sealer =
            Sealer::from_hex_key(config.encryption_key.expose()).expect("ENCRYPTION_KEY was validated at start-up");
        let sealer = match &config.encryption_key_previous {
            Some(previous) => {
                sealer.with_previous_key(previous.expose()).expect("ENCRYPTION_KEY_PREVIOUS was validated at start-up")
            }
            None => sealer,
        };
        let cursors = PageCursors::new(
            CursorSigner::from_hex_key(config.encryption_key.expose())
                .expect("ENCRYPTION_KEY was validated at start-up"),
        );
        let prospects = Prospects::new(store.clone(), pusher.clone(), clock.clone(), cursors.clone());
        let notifications = Notifications::new(store.clone(), cursors.clone());
        let bookings = Bookings::new(store.clone(), cursors);
        let organizations = Organizations::new(store.clone());
        let jwt = JwtVerifier::with_claims(
            config.jwt_secret.expose(),
            config.jwt_issuer.as_deref(),
            config.jwt_audience.as_deref(),
        )
        .with_max_lifetime(config.jwt_max_lifetime);
        let connector =
            Connector::new(jwt.clone(), store.clone(), clock.clone(), config.ws_max_connections_per_organization);
        let alarm = Arc::new(crate::sync::ReconnectAlarm::new(store.clone(), pusher.clone(), clock.clone()));
        let tokens = TokenKeeper::new(store.clone(), sealer.clone(), clock.clone()).with_alarm(alarm);
        let engine = SyncEngine::new(
            store.clone(),
            calendly.clone(),
            pusher.clone(),
            clock.clone(),
            tokens,
            config.sync_days_past,
            config.sync_days_ahead,
        );
        Self {
            store,
            calendly,
            pusher,
            queue,
            clock,
            sealer,
            prospects,
            notifications,
            bookings,
            organizations,
            event_types_cache: Arc::default(),
            manual_sync_cooldown: config.manual_sync_cooldown,
            connector,
            jwt,
            engine,
            webhook_base_url: config.webhook_base_url.clone(),
            webhook_signing_keys: std::iter::once(config.calendly_webhook_signing_key.clone())
                .chain(config.calendly_webhook_signing_key_previous.clone())
                .collect(),
            frontend_url: config.frontend_url.clone(),
            job_budget: config.sync_job_budget,
            job_retry_delay: config.sync_retry_delay,
        }
    }

    pub(crate) async fn active_integration(&self, org: &OrganizationId) -> Result<Integration, AppError> {
        self.store.get_integration(org).await?.filter(|i| i.is_active).ok_or_else(AppError::not_connected)
    }

    /// The `$connect` use case, over the connection records only.
    pub fn connector(&self) -> Connector {
        self.connector.clone()
    }

    /// The verified caller of an `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<crate::auth::Caller, crate::auth::AuthError> {
        self.jwt.verify_header(authorization)
    }

    /// Where Calendly's browser redirect hands code and state on (the settings page).
    pub fn frontend_url(&self) -> Option<&str> {
        self.frontend_url.as_deref()
    }

    /// The longest slice a worker runs a sync job for.
    pub fn job_budget(&self) -> std::time::Duration {
        self.job_budget
    }

    /// The store (wiring, local stack, tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The Calendly client (tests).
    pub fn calendly(&self) -> &Arc<dyn CalendlyApi> {
        &self.calendly
    }

    /// The token verifier, which also issues tokens (local stack, tests).
    pub fn jwt(&self) -> &JwtVerifier {
        &self.jwt
    }

    /// The sealer of tokens at rest (tests).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The sync engine (benchmarks, tests).
    pub fn engine(&self) -> &SyncEngine {
        &self.engine
    }
}

/// Each capability out of the composition, for the handlers that name it (`State<Prospects>`).
macro_rules! capabilities {
    ($($field:ident: $type:ty),* $(,)?) => {
        $(
            impl axum::extract::FromRef<Services> for $type {
                fn from_ref(services: &Services) -> Self {
                    services.$field.clone()
                }
            }
        )*
    };
}

capabilities!(
    prospects: Prospects,
    notifications: Notifications,
    bookings: Bookings,
    organizations: Organizations,
    connector: Connector,
);
