//! The product's use cases, by capability, over the ports: connect, subscription, status and
//! settings, sync jobs, webhook intake, real time, prospects, notifications, organization.
//! HTTP, Lambda and the local stack all call these; none of them holds business rules, and no
//! router reaches a port: they call what is here.

mod bookings;
mod calendly_access;
mod connect;
mod error;
#[cfg(test)]
mod fakes;
mod no_show;
mod notifications;
mod organization;
mod pages;
mod privacy;
mod prospects;
mod realtime;
mod retention;
mod schedule;
mod status;
mod subscription;
pub mod sync;
pub mod webhook;

pub use bookings::Bookings;
pub use calendly_access::{CalendlyAccess, Coverage};
pub use connect::{ConnectOutcome, ConnectStart, Connecting, ConnectingPorts};
pub use error::{AppError, ErrorCode};
pub use no_show::NoShows;
pub use notifications::Notifications;
pub use organization::Organizations;
pub use pages::PageCursors;
pub use privacy::{Erasure, PersonalData, Privacy, PrivacyPorts, Purge};
pub use prospects::{ProspectDraft, Prospects};
pub use realtime::{Connector, forget_connection};
pub use retention::{Kept, Retention};
pub use schedule::{Scheduler, TickFailure, TickReport};
pub use status::{ConnectionStatus, EventTypeChoice, IntegrationSettings, SettingsChange, SettingsPorts};
pub use subscription::{Subscriptions, WebhookCheck};
pub use sync::{JobError, JobPorts, JobTiming, Jobs, QueuedSync, Worker};
pub use webhook::{DeliveryOutcome, IntakePorts, WebhookIntake};

use crate::auth::JwtVerifier;
use crate::calendly::CalendlyApi;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{CursorSigner, PersonHasher, Sealer};
use crate::domain::{Integration, OrganizationId};
use crate::people::People;
use crate::push::Pusher;
use crate::queue::{JobQueue, TickQueue};
use crate::store::{IntegrationStore, PersonHashKeyStore, Store};
use crate::sync::{ReconnectAlarm, SyncEngine};
use crate::tokens::TokenKeeper;
use std::sync::Arc;

/// The few Calendly calls made inside a request (connect, webhook check, disconnect) may wait
/// this long for a rate-limit reset; syncs never wait (they run as jobs).
pub(crate) const MANUAL_RATE_LIMIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The product's capabilities, composed: each is built here over the ports it calls, and
/// handlers take theirs (`State<Prospects>`, `State<WebhookIntake>`…) through `FromRef`.
/// The few accessors below serve wiring, the local stack and tests.
#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    calendly: Arc<dyn CalendlyApi>,
    sealer: Sealer,
    jwt: JwtVerifier,
    engine: SyncEngine,
    frontend_url: FrontendUrl,
    prospects: Prospects,
    notifications: Notifications,
    bookings: Bookings,
    organizations: Organizations,
    connector: Connector,
    connecting: Connecting,
    settings: IntegrationSettings,
    jobs: Jobs,
    worker: Worker,
    scheduler: Scheduler,
    webhooks: WebhookIntake,
    privacy: Privacy,
    no_shows: NoShows,
}

/// Where Calendly's browser redirect hands code and state on (`FRONTEND_URL`), if anywhere.
#[derive(Clone, Debug, Default)]
pub struct FrontendUrl(pub Option<String>);

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
    /// Where a scheduled tick near its deadline leaves the rest.
    pub ticks: Arc<dyn TickQueue>,
    /// Now (a fixed or advanceable clock in tests).
    pub clock: Arc<dyn Clock>,
}

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

/// What several capabilities share, built once per container from configuration and adapters.
struct Core {
    sealer: Sealer,
    jwt: JwtVerifier,
    engine: SyncEngine,
    access: CalendlyAccess,
    subscriptions: Subscriptions,
    job_ports: JobPorts,
    jobs: Jobs,
    people: Arc<People>,
}

impl Core {
    fn new(config: &Config, adapters: &Adapters) -> Self {
        let Adapters { store, calendly, pusher, queue, clock, .. } = adapters;
        let sealer = sealer_of(config);
        let alarm = Arc::new(ReconnectAlarm::new(store.clone(), pusher.clone(), clock.clone()));
        let tokens = TokenKeeper::new(store.clone(), sealer.clone(), clock.clone()).with_alarm(alarm);
        let people = people_of(config, sealer.clone(), store.clone());
        let engine = SyncEngine::new(
            store.clone(),
            calendly.clone(),
            pusher.clone(),
            clock.clone(),
            tokens.clone(),
            people.clone(),
            config.sync_days_past,
            config.sync_days_ahead,
        );
        let access = CalendlyAccess::new(calendly.clone(), tokens);
        let subscriptions = Subscriptions::new(access.clone(), store.clone(), config.webhook_base_url.clone());
        let job_ports = JobPorts {
            integrations: store.clone(),
            jobs: store.clone(),
            queue: queue.clone(),
            pusher: pusher.clone(),
            clock: clock.clone(),
        };
        let jobs = Jobs::new(job_ports.clone(), engine.window(), config.manual_sync_cooldown);
        Self { sealer, jwt: jwt_of(config), engine, access, subscriptions, job_ports, jobs, people }
    }

    fn worker(&self, config: &Config) -> Worker {
        let timing = JobTiming { budget: config.sync_job_budget, retry_delay: config.sync_retry_delay };
        let (engine, access) = (self.engine.clone(), self.access.clone());
        Worker::new(self.job_ports.clone(), engine, access, self.subscriptions.clone(), timing)
    }
}

/// `ws-connect`'s capability alone: the token verifier, the connection records and the clock.
pub fn connector_of(config: &Config, adapters: Adapters) -> Connector {
    Connector::new(jwt_of(config), adapters.store, adapters.clock, config.ws_max_connections_per_organization)
}

/// `sync-worker`'s capability alone: the queue's consumer and the engine it drives.
pub fn worker_of(config: &Config, adapters: Adapters) -> Worker {
    Core::new(config, &adapters).worker(config)
}

impl Services {
    /// Wires every capability from configuration and adapters.
    pub fn new(config: &Config, adapters: Adapters) -> Self {
        let core = Core::new(config, &adapters);
        let worker = core.worker(config);
        let Adapters { store, calendly, pusher, queue, ticks, clock } = adapters;
        let Core { sealer, jwt, engine, access, subscriptions, jobs, people, .. } = core;
        let cursors = PageCursors::new(CursorSigner::new(&config.encryption_key));
        let connecting_ports = ConnectingPorts {
            states: store.clone(),
            quotas: store.clone(),
            integrations: store.clone(),
            settings: store.clone(),
            clock: clock.clone(),
        };
        let settings_ports = SettingsPorts {
            integrations: store.clone(),
            jobs: store.clone(),
            quotas: store.clone(),
            ledger: store.clone(),
            clock: clock.clone(),
        };
        let signing_keys = std::iter::once(config.calendly_webhook_signing_key.clone())
            .chain(config.calendly_webhook_signing_key_previous.clone())
            .collect();
        let retention = Retention::new(store.clone(), clock.clone());
        let privacy_ports = PrivacyPorts {
            people: store.clone(),
            prospects: store.clone(),
            integrations: store.clone(),
            pusher: pusher.clone(),
            clock: clock.clone(),
        };
        let no_shows = NoShows::new(store.clone(), store.clone(), access.clone(), engine.clone(), clock.clone());
        Self {
            no_shows,
            privacy: Privacy::new(privacy_ports, people, access.clone(), cursors.clone()),
            prospects: Prospects::new(store.clone(), pusher.clone(), clock.clone(), cursors.clone()),
            notifications: Notifications::new(store.clone(), cursors.clone(), retention.clone()),
            bookings: Bookings::new(store.clone(), cursors, retention),
            organizations: Organizations::new(store.clone()),
            connector: Connector::new(
                jwt.clone(),
                store.clone(),
                clock.clone(),
                config.ws_max_connections_per_organization,
            ),
            connecting: Connecting::new(
                connecting_ports,
                access.clone(),
                sealer.clone(),
                subscriptions.clone(),
                jobs.clone(),
            ),
            settings: IntegrationSettings::new(settings_ports, access, subscriptions),
            worker,
            scheduler: Scheduler::new(store.clone(), queue, ticks, clock.clone(), engine.window()),
            webhooks: WebhookIntake::new(
                signing_keys,
                clock,
                IntakePorts { integrations: store.clone(), fingerprints: store.clone(), ledger: store.clone() },
                engine.clone(),
            ),
            jobs,
            store,
            calendly,
            sealer,
            jwt,
            engine,
            frontend_url: FrontendUrl(config.frontend_url.clone()),
        }
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
        &self.connecting
    }

    /// Queuing syncs and reading the latest (local stack, tests).
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
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
        &self.privacy
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

/// The organization's integration, if it is connected.
pub(crate) async fn active_integration(
    integrations: &dyn IntegrationStore,
    org: &OrganizationId,
) -> Result<Integration, AppError> {
    integrations.get_integration(org).await?.filter(|i| i.is_active).ok_or_else(AppError::not_connected)
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
    no_shows: NoShows,
    prospects: Prospects,
    notifications: Notifications,
    bookings: Bookings,
    organizations: Organizations,
    connector: Connector,
    connecting: Connecting,
    settings: IntegrationSettings,
    jobs: Jobs,
    webhooks: WebhookIntake,
    privacy: Privacy,
    jwt: JwtVerifier,
    frontend_url: FrontendUrl,
);
