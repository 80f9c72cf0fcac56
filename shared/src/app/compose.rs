//! Composition. Each function builds its own capability from configuration and adapters, over
//! exactly the ports that capability calls: `Api`, `OAuthCallback`, `ManualSync`,
//! `WebhookIntake`, `Worker`, `Scheduler`, `Connector`. `Services` holds them all at once, for
//! the local stack (every function in one process) and the tests: only with the `local` feature.

use super::{
    Bookings, CalendlyAccess, Connecting, ConnectingPorts, Connector, IntakePorts, IntegrationSettings, JobPorts,
    JobTiming, Jobs, NoShows, Notifications, Organizations, PageCursors, Privacy, PrivacyPorts, Prospects, Retention,
    Scheduler, SettingsPorts, Subscriptions, WebhookIntake, Worker,
};
use crate::auth::JwtVerifier;
use crate::calendly::CalendlyApi;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{CursorSigner, PersonHasher, Sealer};
use crate::domain::SyncWindow;
use crate::engine::people::People;
use crate::engine::tokens::TokenKeeper;
use crate::engine::{ReconnectAlarm, SyncEngine};
use crate::push::Pusher;
use crate::queue::{JobQueue, TickQueue};
use crate::store::{PersonHashKeyStore, Store};
use std::cell::OnceCell;
use std::sync::Arc;

/// The adapters the use cases drive.
#[derive(Clone)]
pub struct Adapters {
    /// Every item family (DynamoDB, or the embedded store).
    pub store: Arc<dyn Store>,
    /// Calendly's API.
    pub calendly: Arc<dyn CalendlyApi>,
    /// Pushes to the organization's browsers.
    pub pusher: Arc<dyn Pusher>,
    /// Where sync jobs wait for a worker.
    pub queue: Arc<dyn JobQueue>,
    /// Where a scheduled tick near its deadline leaves the rest.
    pub ticks: Arc<dyn TickQueue>,
    /// Now (a fixed or advanceable clock in tests).
    pub clock: Arc<dyn Clock>,
}

/// Where Calendly's browser redirect hands code and state on (`FRONTEND_URL`), if anywhere.
#[derive(Clone, Debug, Default)]
pub struct FrontendUrl(pub Option<String>);

/// The sealer of tokens at rest from the configured keys.
pub fn sealer_of(config: &Config) -> Sealer {
    let sealer = Sealer::new(&config.encryption_key);
    match &config.encryption_key_previous {
        Some(previous) => sealer.with_previous(previous),
        None => sealer,
    }
}

/// The hashing of people (`people::People`): the deployment's person-hash key, sealed with
/// `PRIVACY_KEY` when set (its previous one still opens), else with the token key; the token
/// key's sealer opens it too (a `PRIVACY_KEY` set later re-seals it). A table without a key yet
/// stores the one hashes were made under before (derived from the configured key).
pub fn people_of(config: &Config, token_sealer: Sealer, store: Arc<dyn PersonHashKeyStore>) -> Arc<People> {
    let (sealers, configured, previous) = match &config.privacy_key {
        Some(key) => {
            let privacy_sealer = match &config.privacy_key_previous {
                Some(previous) => Sealer::new(key).with_previous(previous),
                None => Sealer::new(key),
            };
            (vec![privacy_sealer, token_sealer], key, config.privacy_key_previous.as_ref())
        }
        None => (vec![token_sealer], &config.encryption_key, config.encryption_key_previous.as_ref()),
    };
    let first_key = PersonHasher::derived_key(configured.bytes());
    let legacy = previous.map(|p| PersonHasher::derived_key(p.bytes()));
    Arc::new(People::new(store, sealers, first_key, legacy))
}

/// The verifier of CRM tokens from the configuration.
pub fn jwt_of(config: &Config) -> JwtVerifier {
    JwtVerifier::with_claims(config.jwt_secret.expose(), config.jwt_issuer.as_deref(), config.jwt_audience.as_deref())
        .with_max_lifetime(config.jwt_max_lifetime)
}

/// The window every sync covers, from the configuration.
fn window_of(config: &Config) -> SyncWindow {
    SyncWindow { days_past: config.sync_days_past, days_ahead: config.sync_days_ahead }
}

/// The parts capabilities share, each built the first time a capability asks for it: a
/// function builds only what its capability names, and what two of its parts share is built once.
struct Parts<'a> {
    config: &'a Config,
    adapters: &'a Adapters,
    sealer: OnceCell<Sealer>,
    tokens: OnceCell<TokenKeeper>,
    people: OnceCell<Arc<People>>,
    engine: OnceCell<SyncEngine>,
    access: OnceCell<CalendlyAccess>,
    subscriptions: OnceCell<Subscriptions>,
    jobs: OnceCell<Jobs>,
    cursors: OnceCell<PageCursors>,
}

impl<'a> Parts<'a> {
    fn new(config: &'a Config, adapters: &'a Adapters) -> Self {
        Self {
            config,
            adapters,
            sealer: OnceCell::new(),
            tokens: OnceCell::new(),
            people: OnceCell::new(),
            engine: OnceCell::new(),
            access: OnceCell::new(),
            subscriptions: OnceCell::new(),
            jobs: OnceCell::new(),
            cursors: OnceCell::new(),
        }
    }

    fn sealer(&self) -> Sealer {
        self.sealer.get_or_init(|| sealer_of(self.config)).clone()
    }

    /// Tokens, refreshed single-flight; a grant found revoked tells the organization.
    fn tokens(&self) -> TokenKeeper {
        let Adapters { store, pusher, clock, .. } = self.adapters;
        self.tokens
            .get_or_init(|| {
                let alarm = Arc::new(ReconnectAlarm::new(store.clone(), pusher.clone(), clock.clone()));
                TokenKeeper::new(store.clone(), self.sealer(), clock.clone()).with_alarm(alarm)
            })
            .clone()
    }

    fn people(&self) -> Arc<People> {
        self.people.get_or_init(|| people_of(self.config, self.sealer(), self.adapters.store.clone())).clone()
    }

    fn engine(&self) -> SyncEngine {
        let Adapters { store, calendly, pusher, clock, .. } = self.adapters;
        self.engine
            .get_or_init(|| {
                SyncEngine::new(
                    store.clone(),
                    calendly.clone(),
                    pusher.clone(),
                    clock.clone(),
                    self.tokens(),
                    self.people(),
                    self.config.sync_days_past,
                    self.config.sync_days_ahead,
                )
            })
            .clone()
    }

    fn access(&self) -> CalendlyAccess {
        self.access.get_or_init(|| CalendlyAccess::new(self.adapters.calendly.clone(), self.tokens())).clone()
    }

    fn subscriptions(&self) -> Subscriptions {
        self.subscriptions
            .get_or_init(|| {
                Subscriptions::new(self.access(), self.adapters.store.clone(), self.config.webhook_base_url.clone())
            })
            .clone()
    }

    fn job_ports(&self) -> JobPorts {
        let Adapters { store, pusher, queue, clock, .. } = self.adapters;
        JobPorts {
            integrations: store.clone(),
            jobs: store.clone(),
            queue: queue.clone(),
            pusher: pusher.clone(),
            clock: clock.clone(),
        }
    }

    fn jobs(&self) -> Jobs {
        self.jobs
            .get_or_init(|| Jobs::new(self.job_ports(), window_of(self.config), self.config.manual_sync_cooldown))
            .clone()
    }

    fn cursors(&self) -> PageCursors {
        self.cursors.get_or_init(|| PageCursors::new(CursorSigner::new(&self.config.encryption_key))).clone()
    }

    fn connecting(&self) -> Connecting {
        let Adapters { store, clock, .. } = self.adapters;
        let ports = ConnectingPorts {
            states: store.clone(),
            quotas: store.clone(),
            integrations: store.clone(),
            settings: store.clone(),
            clock: clock.clone(),
        };
        Connecting::new(ports, self.access(), self.sealer(), self.subscriptions(), self.jobs())
    }

    fn worker(&self) -> Worker {
        let timing = JobTiming { budget: self.config.sync_job_budget, retry_delay: self.config.sync_retry_delay };
        Worker::new(self.job_ports(), self.engine(), self.access(), self.subscriptions(), timing)
    }

    fn scheduler(&self) -> Scheduler {
        let Adapters { store, queue, ticks, clock, .. } = self.adapters;
        Scheduler::new(store.clone(), queue.clone(), ticks.clone(), clock.clone(), window_of(self.config))
    }

    fn connector(&self) -> Connector {
        let Adapters { store, clock, .. } = self.adapters;
        Connector::new(
            jwt_of(self.config),
            store.clone(),
            clock.clone(),
            self.config.ws_max_connections_per_organization,
        )
    }

    fn webhook_intake(&self) -> WebhookIntake {
        let Adapters { store, clock, .. } = self.adapters;
        let signing_keys = std::iter::once(self.config.calendly_webhook_signing_key.clone())
            .chain(self.config.calendly_webhook_signing_key_previous.clone())
            .collect();
        let ports = IntakePorts { integrations: store.clone(), fingerprints: store.clone(), ledger: store.clone() };
        WebhookIntake::new(signing_keys, clock.clone(), ports, self.engine())
    }

    fn api(&self) -> Api {
        let Adapters { store, pusher, clock, .. } = self.adapters;
        let retention = Retention::new(store.clone(), clock.clone());
        let settings_ports = SettingsPorts {
            integrations: store.clone(),
            jobs: store.clone(),
            quotas: store.clone(),
            ledger: store.clone(),
            clock: clock.clone(),
        };
        let privacy_ports = PrivacyPorts {
            people: store.clone(),
            prospects: store.clone(),
            integrations: store.clone(),
            pusher: pusher.clone(),
            clock: clock.clone(),
        };
        Api {
            jwt: jwt_of(self.config),
            prospects: Prospects::new(store.clone(), pusher.clone(), clock.clone(), self.cursors()),
            notifications: Notifications::new(store.clone(), self.cursors(), retention.clone()),
            bookings: Bookings::new(store.clone(), self.cursors(), retention),
            organizations: Organizations::new(store.clone()),
            connecting: self.connecting(),
            settings: IntegrationSettings::new(settings_ports, self.access(), self.subscriptions()),
            privacy: Privacy::new(privacy_ports, self.people(), self.access(), self.cursors()),
            no_shows: NoShows::new(store.clone(), store.clone(), self.access(), self.engine(), clock.clone()),
        }
    }
}

/// What the `api` function serves: every route but the OAuth callback, the manual sync and
/// Calendly's deliveries.
#[derive(Clone)]
pub struct Api {
    jwt: JwtVerifier,
    prospects: Prospects,
    notifications: Notifications,
    bookings: Bookings,
    organizations: Organizations,
    connecting: Connecting,
    settings: IntegrationSettings,
    privacy: Privacy,
    no_shows: NoShows,
}

impl Api {
    /// Built from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        Parts::new(config, &adapters).api()
    }
}

/// What the `oauth-callback` function serves: completing a connection.
#[derive(Clone)]
pub struct OAuthCallback {
    jwt: JwtVerifier,
    connecting: Connecting,
    frontend_url: FrontendUrl,
}

impl OAuthCallback {
    /// Built from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        let parts = Parts::new(config, &adapters);
        Self {
            jwt: jwt_of(config),
            connecting: parts.connecting(),
            frontend_url: FrontendUrl(config.frontend_url.clone()),
        }
    }
}

/// What the `sync-manual` function serves: queuing a sync.
#[derive(Clone)]
pub struct ManualSync {
    jwt: JwtVerifier,
    jobs: Jobs,
}

impl ManualSync {
    /// Built from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        Self { jwt: jwt_of(config), jobs: Parts::new(config, &adapters).jobs() }
    }
}

impl WebhookIntake {
    /// The `webhook` function's capability, built from configuration and adapters.
    pub fn of(config: &Config, adapters: Adapters) -> Self {
        Parts::new(config, &adapters).webhook_intake()
    }
}

/// `ws-connect`'s capability alone: the token verifier, the connection records and the clock.
pub fn connector_of(config: &Config, adapters: Adapters) -> Connector {
    Parts::new(config, &adapters).connector()
}

/// `sync-worker`'s capability alone: the queue's consumer and the engine it drives.
pub fn worker_of(config: &Config, adapters: Adapters) -> Worker {
    Parts::new(config, &adapters).worker()
}

/// `sync-scheduled`'s capability alone: the tick over the schedule and the queues.
pub fn scheduler_of(config: &Config, adapters: Adapters) -> Scheduler {
    Parts::new(config, &adapters).scheduler()
}

#[cfg(feature = "local")]
/// Every function's capability in one process (the local stack, tests, benchmarks), each
/// built over the adapters `adapters_of` gives its function (the local stack gives each its
/// own DynamoDB grant), plus what tests reach for directly.
#[derive(Clone)]
pub struct Services {
    api: Api,
    oauth_callback: OAuthCallback,
    manual_sync: ManualSync,
    webhooks: WebhookIntake,
    worker: Worker,
    scheduler: Scheduler,
    connector: Connector,
    store: Arc<dyn Store>,
    calendly: Arc<dyn CalendlyApi>,
    sealer: Sealer,
    jwt: JwtVerifier,
    engine: SyncEngine,
}

#[cfg(feature = "local")]
impl Services {
    /// Every capability over the same adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        Self::per_function(config, |_| adapters.clone())
    }

    /// Every capability, each over the adapters of its function (`"api"`, `"oauth-callback"`,
    /// `"sync-manual"`, `"webhook"`, `"sync-worker"`, `"sync-scheduled"`, `"ws-connect"`);
    /// `"local"` names what tests reach for directly.
    pub fn per_function(config: &Config, adapters_of: impl Fn(&'static str) -> Adapters) -> Self {
        let local = adapters_of("local");
        let parts = Parts::new(config, &local);
        Self {
            api: Api::new(config, adapters_of("api")),
            oauth_callback: OAuthCallback::new(config, adapters_of("oauth-callback")),
            manual_sync: ManualSync::new(config, adapters_of("sync-manual")),
            webhooks: WebhookIntake::of(config, adapters_of("webhook")),
            worker: worker_of(config, adapters_of("sync-worker")),
            scheduler: scheduler_of(config, adapters_of("sync-scheduled")),
            connector: connector_of(config, adapters_of("ws-connect")),
            sealer: parts.sealer(),
            jwt: jwt_of(config),
            engine: parts.engine(),
            store: local.store.clone(),
            calendly: local.calendly.clone(),
        }
    }

    /// The `api` function's capability.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The `oauth-callback` function's capability.
    pub fn oauth_callback(&self) -> &OAuthCallback {
        &self.oauth_callback
    }

    /// The `sync-manual` function's capability.
    pub fn manual_sync(&self) -> &ManualSync {
        &self.manual_sync
    }

    /// The `webhook` function's capability.
    pub fn webhooks(&self) -> &WebhookIntake {
        &self.webhooks
    }

    /// The verified caller of an `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<crate::auth::Caller, crate::auth::AuthError> {
        self.jwt.verify_header(authorization)
    }

    /// The `$connect` use case.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Connecting and disconnecting (local stack, benchmarks).
    pub fn connecting(&self) -> &Connecting {
        &self.api.connecting
    }

    /// Queuing syncs and reading the latest (local stack, tests).
    pub fn jobs(&self) -> &Jobs {
        &self.manual_sync.jobs
    }

    /// The queue's consumer (local stack's workers, tests).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// The scheduled tick (local stack, benchmarks, tests).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Erasure, export and purge (benchmarks).
    pub fn privacy(&self) -> &Privacy {
        &self.api.privacy
    }

    /// The store (local stack, tests).
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

/// Each capability a state holds, for the handlers that name it (`State<Prospects>`).
macro_rules! capabilities {
    ($state:ty { $($field:ident: $type:ty),* $(,)? }) => {
        $(
            impl axum::extract::FromRef<$state> for $type {
                fn from_ref(state: &$state) -> Self {
                    state.$field.clone()
                }
            }
        )*
    };
}

capabilities!(Api {
    jwt: JwtVerifier,
    prospects: Prospects,
    notifications: Notifications,
    bookings: Bookings,
    organizations: Organizations,
    connecting: Connecting,
    settings: IntegrationSettings,
    privacy: Privacy,
    no_shows: NoShows,
});
capabilities!(OAuthCallback { jwt: JwtVerifier, connecting: Connecting, frontend_url: FrontendUrl });
capabilities!(ManualSync { jwt: JwtVerifier, jobs: Jobs });
