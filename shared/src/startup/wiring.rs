//! Production wiring from the environment, shared by every function's `main`.
//!
//! Cold start is paid once per container, on every scale-out, by a waiting user. Init builds
//! nothing: the secret is read and the clients are built by the first invocation
//! (`Lazy<T>` of the function's capability, `LazyHttpApp`), which logs each phase (`cold start wiring done`, one JSON
//! line, read by `scripts/bench coldstart`). A warm container re-reads the secret after
//! `SECRET_TTL_SECONDS` (default 900), so a rotated secret is picked up within that bound.
//! On Lambda, region and credentials are environment variables: the SDK clients are configured
//! from them directly (no default chain: no profile files, no IMDS probing); every SDK
//! client of the process talks through the one HTTPS client of `crate::https` (one TLS set-up
//! with compiled-in roots, one connection pool), which the Calendly client shares.
//!
//! Over 400 lines on purpose: what each function wires (`FUNCTIONS`, from which the template
//! test derives IAM) and the lazy wiring that honours it read best side by side.

use crate::app::Adapters;
#[cfg(feature = "local")]
use crate::app::Services;
use crate::calendly::HttpCalendly;
use crate::calendly::client::CalendlySettings;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::push::apigateway::ApiGatewayConnections;
use crate::push::{ConnectionPusher, NoPushEndpoint, Pusher};
use crate::queue::{JobQueue, NoQueue, SqsQueue, TickQueue};
use crate::startup::secrets::{SecretsManager, StartupError, load_config};
use crate::store::{DynamoStore, Store};
use std::sync::Arc;
use std::time::Instant;

mod functions;
pub use functions::{
    Builds, FUNCTIONS, FunctionWiring, GRANTS_TABLE_BEGIN, GRANTS_TABLE_END, grants_table_markdown, wiring_of,
    with_grants_table,
};

/// A capability a function's wiring can construct from the configuration and the adapters its
/// row grants.
pub trait Wired: Clone + Send + Sync + 'static {
    /// Which row's `builds` this is.
    const BUILDS: Builds;
    /// Constructs it.
    fn wire(config: &Config, adapters: Adapters) -> Self;
}

macro_rules! wired {
    ($($type:ty => $builds:ident via $wire:path),* $(,)?) => {
        $(
            impl Wired for $type {
                const BUILDS: Builds = Builds::$builds;
                fn wire(config: &Config, adapters: Adapters) -> Self {
                    $wire(config, adapters)
                }
            }
        )*
    };
}

wired!(
    crate::app::Api => Api via crate::app::Api::new,
    crate::app::OAuthCallback => OAuthCallback via crate::app::OAuthCallback::new,
    crate::app::ManualSync => ManualSync via crate::app::ManualSync::new,
    crate::app::WebhookIntake => Webhook via crate::app::WebhookIntake::of,
    crate::app::Worker => Worker via crate::app::worker_of,
    crate::app::Connector => Connector via crate::app::connector_of,
);

/// Region and credentials, from the environment: on Lambda they are all variables
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
///
/// No default chain behind it: these binaries run on Lambda only (the local stack builds its
/// own clients), and the chain (profile files, SSO, IMDS, STS, `aws-config`) weighed ~0.7 MB
/// in every binary, paged in by every cold start, for a path nothing took.
#[derive(Clone)]
struct AwsEnvironment {
    region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl AwsEnvironment {
    /// The variables, or the first one missing.
    fn read(env: &Lookup) -> Result<Self, ConfigError> {
        let var = |name: &'static str| env(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        Ok(Self {
            region: var("AWS_REGION")
                .or_else(|_| var("AWS_DEFAULT_REGION"))
                .map_err(|_| ConfigError::Missing("AWS_REGION"))?,
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN").ok(),
        })
    }
}

/// Where configuration is read: the process environment, or a map in tests.
pub type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

fn process_environment() -> Lookup {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` (what the default chain honours).
fn endpoint_url(env: &Lookup, service: &str) -> Option<String> {
    env(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| env("AWS_ENDPOINT_URL")).filter(|v| !v.is_empty())
}

/// One SDK client from the environment's region and credentials; `endpoint` overrides the
/// service's endpoint.
macro_rules! sdk_client {
    ($sdk:ident, $aws:expr, $endpoint:expr) => {{
        let aws: &AwsEnvironment = $aws;
        let endpoint: Option<String> = $endpoint;
        let credentials = $sdk::config::Credentials::new(
            &aws.access_key_id,
            &aws.secret_access_key,
            aws.session_token.clone(),
            None,
            "environment",
        );
        let mut builder = $sdk::config::Builder::new()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new(aws.region.clone()))
            .credentials_provider(credentials)
            .http_client(crate::https::sdk_http_client());
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        $sdk::Client::from_conf(builder.build())
    }};
}

/// Milliseconds since `started`, as a log field.
fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// The clients a container keeps for its whole life (they don't depend on the secret).
struct Clients {
    secrets: SecretsManager,
    store: Arc<dyn Store>,
    pusher: Arc<dyn Pusher>,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl Clients {
    /// Built from the environment alone (table, queue, WebSocket endpoint): no secret needed.
    /// Only what `wiring` says the function uses is built: a queue client for `queue`, a
    /// management API client for `push`.
    fn build(
        env: &Lookup,
        wiring: FunctionWiring,
        aws: Option<&AwsEnvironment>,
        secrets: SecretsManager,
        due_shards: u16,
    ) -> Self {
        let aws = aws.expect("the setup is loaded for the first build");
        let table = env("TABLE_NAME").unwrap_or_default();
        let dynamodb = sdk_client!(aws_sdk_dynamodb, aws, endpoint_url(env, "DYNAMODB"));
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(dynamodb, table).with_due_shards(due_shards));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
        // Only the functions that push are given the management API (and its client).
        let endpoint = env("WEBSOCKET_MANAGEMENT_ENDPOINT").filter(|v| wiring.push && !v.is_empty());
        let pusher: Arc<dyn Pusher> = match endpoint {
            Some(endpoint) => {
                let gateway =
                    ApiGatewayConnections::new(sdk_client!(aws_sdk_apigatewaymanagement, aws, Some(endpoint)));
                Arc::new(ConnectionPusher::new(
                    store.clone(),
                    Arc::new(gateway),
                    clock.clone(),
                    crate::views::push_payload,
                ))
            }
            None => Arc::new(NoPushEndpoint),
        };
        // Only the functions that queue sync jobs are given a queue (and its client).
        let queue: Arc<dyn JobQueue> = match env("SYNC_QUEUE_URL").filter(|v| wiring.queue && !v.trim().is_empty()) {
            Some(url) => Arc::new(SqsQueue::new(sdk_client!(aws_sdk_sqs, aws, endpoint_url(env, "SQS")), url)),
            None => Arc::new(NoQueue),
        };
        Self { secrets, store, pusher, queue, clock }
    }
}

/// A container's capability `T`, built by the first invocation that needs it and rebuilt
/// from a fresh read of the secret once it is older than the TTL.
pub struct Lazy<T> {
    env: Lookup,
    wiring: FunctionWiring,
    clients: tokio::sync::OnceCell<Clients>,
    loaded: tokio::sync::Mutex<Option<Loaded<T>>>,
    ttl: std::time::Duration,
}

/// Every capability, composed (the HTTP functions, the local stack).
#[cfg(feature = "local")]
pub type LazyServices = Lazy<Services>;

#[cfg(feature = "local")]
impl Wired for Services {
    const BUILDS: Builds = Builds::Everything;
    fn wire(config: &Config, adapters: Adapters) -> Self {
        Services::new(config, adapters)
    }
}

struct Loaded<T> {
    built: T,
    generation: u64,
    read_at: Instant,
}

/// How long a container trusts the secret it read (`SECRET_TTL_SECONDS`, default 15 min).
fn secret_ttl(env: &Lookup) -> std::time::Duration {
    let seconds = env("SECRET_TTL_SECONDS").and_then(|v| v.parse().ok()).unwrap_or(900);
    std::time::Duration::from_secs(seconds)
}

impl<T: Wired> Lazy<T> {
    /// `function`'s capability (`FUNCTIONS`), from the process environment; nothing is read
    /// or built until the first `get`.
    ///
    /// # Panics
    /// When the function's row builds another capability: the grants would not match.
    pub fn for_function(function: &str) -> Self {
        let wiring = wiring_of(function);
        assert_eq!(wiring.builds, T::BUILDS, "{function} is wired to build {:?}", wiring.builds);
        Self { wiring, ..Self::with_lookup(process_environment()) }
    }

    /// Everything a local run uses, from `env` (tests give a map).
    pub fn with_lookup(env: Lookup) -> Self {
        let ttl = secret_ttl(&env);
        let wiring = wiring_of("local");
        Self { env, wiring, clients: tokio::sync::OnceCell::new(), loaded: tokio::sync::Mutex::new(None), ttl }
    }

    /// The capability, and a generation that changes whenever it was rebuilt.
    pub async fn get(&self) -> Result<(T, u64), StartupError> {
        let mut loaded = self.loaded.lock().await;
        if let Some(current) = loaded.as_ref().filter(|l| l.read_at.elapsed() < self.ttl) {
            return Ok((current.built.clone(), current.generation));
        }
        let started = Instant::now();
        let first = self.clients.get().is_none();
        let phase = Instant::now();
        let env = &self.env;
        let aws = match first {
            true => Some(AwsEnvironment::read(env)?),
            false => None,
        };
        let due_shards = crate::config::due_shards(|name| env(name))?;
        let aws_environment_ms = ms(phase);
        let phase = Instant::now();
        let secrets = match (&aws, self.clients.get()) {
            (_, Some(clients)) => clients.secrets.clone(),
            (Some(aws), None) => {
                SecretsManager::new(sdk_client!(aws_sdk_secretsmanager, aws, endpoint_url(env, "SECRETS_MANAGER")))
            }
            (None, None) => unreachable!("the setup is loaded when the clients are missing"),
        };
        let secrets_client_ms = ms(phase);
        // The secret's round trip and the clients' construction (CPU) overlap: the request is
        // sent first, the clients are built while it is in flight.
        let phase = Instant::now();
        let read = load_config(|name| env(name), Some(&secrets));
        let build = async {
            let built = Instant::now();
            let clients = self
                .clients
                .get_or_init(|| async { Clients::build(env, self.wiring, aws.as_ref(), secrets.clone(), due_shards) })
                .await;
            (clients, ms(built))
        };
        let (config, (clients, clients_ms)) = tokio::join!(read, build);
        let config = config?;
        let secret_and_clients_ms = ms(phase);
        let phase = Instant::now();
        let calendly = calendly_client(&config);
        let calendly_client_ms = ms(phase);
        let phase = Instant::now();
        let adapters = Adapters {
            store: clients.store.clone(),
            calendly,
            pusher: clients.pusher.clone(),
            queue: clients.queue.clone(),
            // The HTTP functions and the worker run no tick: only `sync-scheduled` hands on.
            ticks: Arc::new(NoQueue),
            clock: clients.clock.clone(),
        };
        let built = T::wire(&config, adapters);
        let services_ms = ms(phase);
        let generation = loaded.as_ref().map_or(0, |l| l.generation + 1);
        tracing::info!(
            first,
            aws_environment_ms,
            secrets_client_ms,
            secret_and_clients_ms,
            clients_ms,
            calendly_client_ms,
            services_ms,
            total_ms = ms(started),
            "cold start wiring done"
        );
        *loaded = Some(Loaded { built: built.clone(), generation, read_at: Instant::now() });
        Ok((built, generation))
    }
}

/// An HTTP function's app, built on its first request: its capability `S` and `routes` with
/// the API's middleware; rebuilt when the capability was (a rotated secret).
pub struct LazyHttpApp<S> {
    function: &'static str,
    capability: Arc<Lazy<S>>,
    routes: fn() -> axum::Router<S>,
    app: Arc<tokio::sync::Mutex<Option<(axum::Router, u64)>>>,
}

impl<S> Clone for LazyHttpApp<S> {
    fn clone(&self) -> Self {
        Self {
            function: self.function,
            capability: self.capability.clone(),
            routes: self.routes,
            app: self.app.clone(),
        }
    }
}

impl<S: Wired> LazyHttpApp<S> {
    /// `function` serving `routes` (e.g. `http::api_routes`) over its capability; builds nothing yet.
    pub fn new(function: &'static str, routes: fn() -> axum::Router<S>) -> Self {
        Self { function, capability: Arc::new(Lazy::for_function(function)), routes, app: Arc::default() }
    }

    async fn router(&self) -> Result<axum::Router, StartupError> {
        let (capability, generation) = self.capability.get().await?;
        let mut app = self.app.lock().await;
        if let Some((router, built_for)) = app.as_ref()
            && *built_for == generation
        {
            return Ok(router.clone());
        }
        let phase = Instant::now();
        let router = crate::http::serve((self.routes)(), capability);
        tracing::info!(router_ms = ms(phase), "router built");
        *app = Some((router.clone(), generation));
        Ok(router)
    }
}

impl<S: Wired, B> tower::Service<axum::http::Request<B>> for LazyHttpApp<S>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            use tower::ServiceExt;
            let router = this.router().await;
            let answer = match router {
                Ok(router) => {
                    Ok(router.oneshot(request.map(axum::body::Body::new)).await.unwrap_or_else(|never| match never {}))
                }
                Err(e) => Err(e.into()),
            };
            // The invocation's metrics, written when it ends.
            crate::telemetry::metrics::flush(this.function);
            answer
        })
    }
}

/// The Calendly HTTP client for this configuration.
pub fn calendly_client(config: &Config) -> Arc<HttpCalendly> {
    Arc::new(HttpCalendly::new(CalendlySettings {
        client_id: config.calendly_client_id.clone(),
        client_secret: config.calendly_client_secret.clone(),
        redirect_uri: config.calendly_redirect_uri.clone(),
        api_base_url: config.calendly_api_base_url.clone(),
        auth_base_url: config.calendly_auth_base_url.clone(),
    }))
}

/// The scheduled tick alone (`sync-scheduled`): the table, the queue and the clock; no secret.
pub async fn scheduler_from_env() -> Result<crate::app::Scheduler, StartupError> {
    let started = Instant::now();
    let env = process_environment();
    let config = crate::config::ScheduleConfig::from_lookup(|name| env(name))?;
    let aws = AwsEnvironment::read(&env)?;
    let dynamodb = sdk_client!(aws_sdk_dynamodb, &aws, endpoint_url(&env, "DYNAMODB"));
    let store = DynamoStore::new(dynamodb, config.table_name.clone()).with_due_shards(config.due_shards);
    let store: Arc<dyn Store> = Arc::new(store);
    let sqs = || sdk_client!(aws_sdk_sqs, &aws, endpoint_url(&env, "SQS"));
    let queue: Arc<dyn JobQueue> = match config.sync_queue_url {
        Some(url) => Arc::new(SqsQueue::new(sqs(), url)),
        None => Arc::new(NoQueue),
    };
    let ticks: Arc<dyn TickQueue> = match config.tick_queue_url {
        Some(url) => Arc::new(SqsQueue::new(sqs(), url)),
        None => Arc::new(NoQueue),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let window = crate::domain::SyncWindow { days_past: config.sync_days_past, days_ahead: config.sync_days_ahead };
    let scheduler = crate::app::Scheduler::new(store, queue, ticks, clock, window);
    tracing::info!(total_ms = ms(started), "cold start wiring done");
    Ok(scheduler)
}

/// The connection records alone (`ws-disconnect`): the table from `TABLE_NAME`, no secret.
pub async fn connection_store_from_env() -> Result<DynamoStore, StartupError> {
    let started = Instant::now();
    let table =
        std::env::var("TABLE_NAME").ok().filter(|t| !t.trim().is_empty()).ok_or(ConfigError::Missing("TABLE_NAME"))?;
    let env = process_environment();
    let aws = AwsEnvironment::read(&env)?;
    let store = DynamoStore::new(sdk_client!(aws_sdk_dynamodb, &aws, endpoint_url(&env, "DYNAMODB")), table);
    tracing::info!(total_ms = ms(started), "cold start wiring done");
    Ok(store)
}

#[cfg(test)]
mod tests;
