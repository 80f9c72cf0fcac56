//! The local stack: every function of the product in one process, on the embedded store,
//! with the Calendly simulator standing in for Calendly when no real credentials are set.
//! The routers are the functions' own (`shared::http`), mounted unchanged, and the
//! WebSocket side runs the `ws-connect`/`ws-disconnect` handlers behind a local API Gateway.

pub mod console;
pub mod dynamo;
pub mod gateway;
pub mod jobs;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use calendly_sim::{BookingSpec, CalendlySim, SimConfig, SimUser};
use chrono::{Duration, Utc};
use shared::app::Services;
use shared::clock::SystemClock;
use shared::config::{Config, ConfigError};
use shared::domain::{OrganizationId, SyncJob, SyncTrigger};
use shared::push::apigateway::ApiGatewayConnections;
use shared::push::{ConnectionPusher, Pusher};
use shared::startup::wiring::wiring_of;
use shared::store::{DynamoStore, MemoryStore, Store};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How to start the stack.
#[derive(Clone, Default)]
pub struct StackOptions {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Environment values; anything missing falls back to the process environment, then to
    /// local defaults (the simulator when `CALENDLY_CLIENT_ID` is absent).
    pub env: HashMap<String, String>,
    /// Seconds between scheduled-sync runs (None: no timer).
    pub schedule_every: Option<u64>,
    /// Whether to read the process environment at all (tests don't).
    pub read_process_env: bool,
    /// Simulator settings, when the simulator runs.
    pub simulator: SimConfig,
    /// A simulator already running (another stack's), instead of a new one: a stack restarted
    /// with other keys keeps the same Calendly.
    pub running_simulator: Option<CalendlySim>,
    /// Another stack's embedded store, instead of a new one (DynamoDB stacks share a table by
    /// `TABLE_NAME`): a stack restarted with other keys keeps its data.
    pub embedded_store: Option<Arc<dyn Store>>,
}

/// A running stack.
pub struct LocalStack {
    /// Where it listens (HTTP and WebSocket).
    pub addr: SocketAddr,
    /// The use cases, as every function would wire them.
    pub services: Services,
    /// The stack's clock.
    pub clock: Arc<SystemClock>,
    /// The store behind the services.
    pub store: Arc<dyn Store>,
    /// The DynamoDB adapter, when the stack runs on DynamoDB (`STORE=dynamodb`).
    pub dynamo: Option<DynamoStore>,
    /// The simulator, when no real Calendly credentials were given.
    pub simulator: Option<CalendlySim>,
    /// The configuration the services were built from.
    pub config: Config,
}

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The environment is incomplete or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// `STORE` is unknown, or the DynamoDB table could not be reached or created.
    #[error("store: {0}")]
    Store(String),
    /// `QUEUE` is unknown, or the SQS queue could not be reached or created.
    #[error("queue: {0}")]
    Queue(String),
}

/// Sync jobs run at once by the local workers (Lambda's `MaximumConcurrency` × batch size).
const DEFAULT_WORKERS: usize = 20;

/// A fixed development key: the local stack's data lives in memory and dies with it.
const LOCAL_ENCRYPTION_KEY: &str = "6c6f63616c2d737461636b2d6f6e6c792d6e6f742d666f722d70726f64756374";
/// The demo JWT secret (only when `JWT_SECRET` is not set).
pub const LOCAL_JWT_SECRET: &str = "local-stack-only-jwt-secret-not-for-production";

impl LocalStack {
    /// Binds, wires and serves every route; returns once the stack accepts requests.
    pub async fn start(options: StackOptions) -> Result<Self, StackError> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port))).await?;
        let addr = listener.local_addr()?;
        let local_url = format!("http://{addr}");

        let lookup = |name: &str| -> Option<String> {
            options
                .env
                .get(name)
                .cloned()
                .or_else(|| if options.read_process_env { std::env::var(name).ok() } else { None })
                .filter(|v| !v.trim().is_empty())
        };
        let simulator = match (lookup("CALENDLY_CLIENT_ID"), &options.running_simulator) {
            (Some(_), _) => None,
            (None, Some(running)) => Some(running.clone()),
            (None, None) => Some(CalendlySim::start(options.simulator.clone(), 0).await?),
        };
        let mut defaults: HashMap<&str, String> = HashMap::from([
            ("CALENDLY_REDIRECT_URI", format!("{local_url}/auth/calendly/callback")),
            ("WEBHOOK_BASE_URL", local_url.clone()),
            ("ENCRYPTION_KEY", LOCAL_ENCRYPTION_KEY.to_string()),
            ("JWT_SECRET", LOCAL_JWT_SECRET.to_string()),
            ("TABLE_NAME", "velvena-local".to_string()),
        ]);
        if let Some(sim) = &simulator {
            defaults.insert("CALENDLY_CLIENT_ID", sim.config().client_id.clone());
            defaults.insert("CALENDLY_CLIENT_SECRET", sim.config().client_secret.clone());
            defaults.insert("CALENDLY_WEBHOOK_SIGNING_KEY", sim.config().webhook_signing_key.clone());
            defaults.insert("CALENDLY_API_BASE_URL", sim.base_url().to_string());
            defaults.insert("CALENDLY_AUTH_BASE_URL", sim.base_url().to_string());
        }
        let config = Config::from_lookup(|name| {
            // The signing keys may be set beside the simulator (a key roll: the simulator's
            // key as the previous one).
            let simulated = simulator.is_some()
                && name.starts_with("CALENDLY_")
                && name != "CALENDLY_REDIRECT_URI"
                && !name.starts_with("CALENDLY_WEBHOOK_SIGNING_KEY");
            if simulated { defaults.get(name).cloned() } else { lookup(name).or_else(|| defaults.get(name).cloned()) }
        })?;

        let clock = Arc::new(SystemClock::default());
        let dynamo = match lookup("STORE").as_deref() {
            None | Some("memory") => None,
            Some("dynamodb") => {
                let credentials = lookup("AWS_ACCESS_KEY_ID").zip(lookup("AWS_SECRET_ACCESS_KEY"));
                let endpoint = lookup("AWS_ENDPOINT_URL_DYNAMODB");
                let client = dynamo::client(endpoint.as_deref(), lookup("AWS_REGION").as_deref(), credentials);
                shared::store::dynamodb::table::create_table_if_missing(&client, &config.table_name)
                    .await
                    .map_err(StackError::Store)?;
                Some(DynamoStore::new(client, config.table_name.clone()))
            }
            Some(other) => return Err(StackError::Store(format!("STORE must be memory or dynamodb, not {other}"))),
        };
        let store: Arc<dyn Store> = match &dynamo {
            Some(d) => Arc::new(d.clone()),
            None => options.embedded_store.clone().unwrap_or_else(|| Arc::new(MemoryStore::new())),
        };
        // Each function reaches DynamoDB through its own grant, refused as IAM refuses on AWS
        // (the template grants the same actions: a test holds the two together).
        let granted = |function: &str| -> Arc<dyn Store> {
            match &dynamo {
                Some(d) => Arc::new(d.clone().granted_only(&wiring_of(function).dynamodb_actions())),
                None => store.clone(),
            }
        };
        let calendly = shared::startup::wiring::calendly_client(&config);
        // Pushes go through the real SDK client, to our own management endpoint by default.
        let management_endpoint = lookup("WEBSOCKET_MANAGEMENT_ENDPOINT")
            .unwrap_or_else(|| format!("{local_url}{}", gateway::MANAGEMENT_PATH));
        let gateway_client: Arc<dyn shared::push::ConnectionGateway> =
            Arc::new(ApiGatewayConnections::new(management_client(&management_endpoint)));
        let queue = match lookup("QUEUE").as_deref() {
            None | Some("embedded") => {
                let (queue, receiver) = shared::queue::EmbeddedQueue::new();
                jobs::LocalQueue::Embedded { queue, receiver }
            }
            Some("sqs") => {
                let credentials = lookup("AWS_ACCESS_KEY_ID").zip(lookup("AWS_SECRET_ACCESS_KEY"));
                let client = jobs::sqs_client(
                    lookup("AWS_ENDPOINT_URL_SQS").as_deref(),
                    lookup("AWS_REGION").as_deref(),
                    credentials,
                );
                let url = match config.sync_queue_url.clone() {
                    Some(url) => url,
                    None => jobs::create_queue(&client, &format!("{}-sync-jobs", config.table_name))
                        .await
                        .map_err(StackError::Queue)?,
                };
                jobs::LocalQueue::Sqs { queue: shared::queue::SqsQueue::new(client.clone(), url.clone()), client, url }
            }
            Some(other) => return Err(StackError::Queue(format!("QUEUE must be embedded or sqs, not {other}"))),
        };
        let workers = match lookup("SYNC_WORKERS") {
            None => DEFAULT_WORKERS,
            Some(v) => v.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                StackError::Config(ConfigError::Invalid { name: "SYNC_WORKERS", reason: "expected 1..=1000".into() })
            })?,
        };
        let (ticks, mut tick_rests) = shared::queue::EmbeddedTicks::new();
        let ticks: Arc<dyn shared::queue::TickQueue> = Arc::new(ticks);
        let job_queue = queue.sender();
        // Each function over its own grant, and a pusher of its own over it (as each Lambda
        // function's container has).
        let services = Services::per_function(&config, |function| {
            let store = granted(function);
            let pusher: Arc<dyn Pusher> = Arc::new(ConnectionPusher::new(
                store.clone(),
                gateway_client.clone(),
                clock.clone(),
                shared::views::push_payload,
            ));
            shared::app::Adapters {
                store,
                calendly: calendly.clone(),
                pusher,
                queue: job_queue.clone(),
                ticks: ticks.clone(),
                clock: clock.clone(),
            }
        });
        // What a tick hands on is resumed here, as `sync-scheduled` resumes its SQS messages.
        let resumer = services.clone();
        tokio::spawn(async move {
            while let Some(rest) = tick_rests.recv().await {
                if let Err(e) = resumer.scheduler().resume(rest, tick_deadline()).await {
                    tracing::warn!(error = %e, "a handed-on scheduled tick failed");
                }
            }
        });
        queue.start_workers(services.clone(), workers);

        let app = shared::http::all_routes(&services)
            .merge(Router::new().route("/_local/scheduled-sync", post(scheduled_sync)).with_state(services.clone()))
            .route("/openapi.json", get(openapi_document))
            .merge(gateway::routes(services.connector().clone(), granted("ws-disconnect")))
            .merge(console::routes(services.clone(), simulator.clone()));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local stack stopped serving");
            }
        });
        if let Some(every) = options.schedule_every.filter(|s| *s > 0) {
            let services = services.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = services.scheduler().tick(tick_deadline()).await {
                        tracing::warn!(error = %e, "scheduled sync run failed");
                    }
                }
            });
        }
        Ok(Self { addr, services, clock, store, dynamo, simulator, config })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws?token=` + a CRM JWT: where browsers connect.
    pub fn websocket_url(&self, token: &str) -> String {
        format!("ws://{}/ws?token={token}", self.addr)
    }

    /// A CRM token for `user` of `organization`, valid for a day (demo and tests).
    pub fn jwt(&self, user: &str, organization: &str) -> String {
        self.services.jwt().issue(user, organization, Utc::now() + Duration::days(1))
    }

    /// Waits (up to `within`) until the organization's current sync job has ended; returns it.
    pub async fn wait_for_sync(&self, org: &str, within: std::time::Duration) -> Option<SyncJob> {
        let org = OrganizationId::new(org);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.services.jobs().current_sync(&org).await.ok().flatten();
            if job.as_ref().is_some_and(|j| !j.state.is_active()) || tokio::time::Instant::now() >= deadline {
                return job.filter(|j| !j.state.is_active());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Queues a manual sync of `org` and waits for it to end (benchmarks).
    pub async fn sync_and_wait(&self, org: &str, within: std::time::Duration) -> Option<SyncJob> {
        self.services.jobs().request_sync(&OrganizationId::new(org), SyncTrigger::Manual).await.ok()?;
        self.wait_for_sync(org, within).await
    }

    /// Seeds the simulator with a demo host and a few bookings; returns the host.
    pub fn seed_demo(&self) -> Option<SimUser> {
        let sim = self.simulator.as_ref()?;
        let host = sim.add_user("Camille Martin", "camille@velvena.example");
        let day =
            |d: i64, h: u32| (Utc::now() + Duration::days(d)).date_naive().and_hms_opt(h, 30, 0).map(|t| t.and_utc());
        let specs = [
            ("John Doe", "john.doe@example.com", "Découverte 30min", day(1, 15)),
            ("Marie Curie", "marie@example.org", "Démo produit", day(2, 9)),
            ("Ada Lovelace", "ada@example.net", "Découverte 30min", day(3, 13)),
            ("John Doe", "JOHN.DOE@example.com", "Suivi 15min", day(8, 10)),
            // Yesterday's: one a salesperson can mark as a no-show.
            ("Alan Turing", "alan@example.org", "Démo produit", day(-1, 11)),
        ];
        let bookings = specs.into_iter().filter_map(|(n, e, ev, t)| t.map(|t| BookingSpec::new(n, e, ev, t))).collect();
        sim.seed_bookings(&host, bookings);
        Some(host)
    }
}

/// The contract, generated from the code (the same text as `docs/openapi.json`).
async fn openapi_document() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(shared::http::contract::openapi_json).clone();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], text)
}

/// The management API client with local credentials (the local endpoint does not check them).
fn management_client(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-3"))
        .credentials_provider(Credentials::new("local", "local", None, None, "local-stack"))
        .http_client(shared::https::sdk_http_client())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

async fn scheduled_sync(
    State(services): State<Services>,
) -> Result<axum::Json<shared::app::TickReport>, shared::http::ApiError> {
    Ok(axum::Json(services.scheduler().tick(tick_deadline()).await?))
}

/// A local tick has the time `sync-scheduled` has on AWS (its template timeout, 120 s).
fn tick_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(120)
}
