//! What each function builds, the store ports that capability calls, and so the AWS actions it
//! is granted (`template.yaml` holds exactly these; `docs/SECURITY.md`'s table is generated from them).

use crate::store::StorePort;

/// What a function's wiring constructs: its capability, and so the store ports it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builds {
    /// The `api` routes (`app::Api`).
    Api,
    /// The OAuth callback (`app::OAuthCallback`).
    OAuthCallback,
    /// The manual sync (`app::ManualSync`).
    ManualSync,
    /// Calendly's deliveries (`app::WebhookIntake`).
    Webhook,
    /// The queue's consumer (`app::worker_of`).
    Worker,
    /// The scheduled tick (`scheduler_from_env`).
    Scheduler,
    /// `$connect` (`app::connector_of`).
    Connector,
    /// `$disconnect` over the connection records (`connection_store_from_env`).
    ConnectionRemoval,
    /// Every capability at once (`app::Services`: a local run, not a deployed function).
    Everything,
}

/// The ports a pusher calls: it lists an organization's connections and removes gone ones.
const PUSH: [StorePort; 2] = [StorePort::ConnectionRecords, StorePort::ConnectionRemoval];
/// The ports tokens call: the integration they live on, Calendly's rate window, and the
/// notification a revoked grant leaves.
const TOKENS: [StorePort; 3] = [StorePort::Integrations, StorePort::RateLimits, StorePort::Notifications];
/// The ports the sync engine calls besides the tokens' and the pusher's: what recording a
/// booking reads and writes, the people's keyed hashes, a job's committed counts.
const ENGINE: [StorePort; 8] = [
    StorePort::Organizations,
    StorePort::Bookings,
    StorePort::BookingContext,
    StorePort::Prospects,
    StorePort::Submissions,
    StorePort::PersonHashKey,
    StorePort::SyncJobs,
    StorePort::DeliveryLedger,
];

impl Builds {
    /// The store ports what it builds calls: its capability's own, and its parts' (tokens,
    /// engine, pusher).
    pub fn store_ports(self) -> Vec<StorePort> {
        let parts: &[&[StorePort]] = match self {
            Self::Api | Self::Everything => &[&StorePort::ALL],
            // Takes the state, claims the Calendly user, mirrors the settings, checks the
            // subscription, queues the first sync and tells the browsers.
            Self::OAuthCallback => &[
                &[StorePort::OAuthStates, StorePort::Quotas, StorePort::Organizations, StorePort::SyncJobs],
                &TOKENS,
                &PUSH,
            ],
            // Reads the job with its integration, records the queued one, tells the browsers.
            Self::ManualSync => &[&[StorePort::SyncJobs, StorePort::Integrations], &PUSH],
            // Routes by integration, counts deliveries in the ledger, records through the engine.
            Self::Webhook => &[&ENGINE, &TOKENS, &PUSH],
            // Runs jobs through the engine, checks the subscription, and deletes what the
            // organization's retention let expire.
            Self::Worker => &[&ENGINE, &TOKENS, &PUSH, &[StorePort::CalendlyDataDeletion]],
            // Reads the due index and hands jobs out on the schedule items.
            Self::Scheduler => &[&[StorePort::Schedule]],
            Self::Connector => &[&[StorePort::ConnectionRecords]],
            Self::ConnectionRemoval => &[&[StorePort::ConnectionRemoval]],
        };
        let mut ports: Vec<StorePort> = Vec::new();
        for port in parts.iter().flat_map(|p| p.iter()) {
            if !ports.contains(port) {
                ports.push(*port);
            }
        }
        ports
    }

    /// The DynamoDB actions its ports need: what the template grants the function, and what
    /// the local stack lets it do.
    pub fn dynamodb_actions(self) -> Vec<&'static str> {
        let ports = self.store_ports();
        let used: Vec<&'static str> =
            ports.iter().flat_map(|p| crate::store::dynamodb::actions_of(*p).iter().copied()).collect();
        // In one order, whatever the ports': the template's.
        ACTION_ORDER.iter().copied().filter(|a| used.contains(a)).collect()
    }
}

/// The order actions are listed in (the template's).
const ACTION_ORDER: [&str; 8] = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
];

/// What one function wires. The wiring builds only this (`Lazy` refuses to build another
/// capability for the function), and the template test derives each function's IAM actions
/// from it.
#[derive(Clone, Copy, Debug)]
pub struct FunctionWiring {
    /// The function's name (its directory under `functions/`).
    pub function: &'static str,
    /// The capability it constructs (its DynamoDB actions follow).
    pub builds: Builds,
    /// Reads the secret (`secretsmanager:GetSecretValue`).
    pub secret: bool,
    /// Pushes to browsers (`execute-api:ManageConnections`; gone connections are deleted).
    pub push: bool,
    /// Queues sync jobs (`sqs:SendMessage`, and `SYNC_QUEUE_URL`).
    pub queue: bool,
}

impl FunctionWiring {
    /// The DynamoDB actions the function is granted.
    pub fn dynamodb_actions(&self) -> Vec<&'static str> {
        self.builds.dynamodb_actions()
    }
}

/// Every function's wiring.
pub const FUNCTIONS: [FunctionWiring; 8] = [
    FunctionWiring { function: "api", builds: Builds::Api, secret: true, push: true, queue: false },
    FunctionWiring { function: "oauth-callback", builds: Builds::OAuthCallback, secret: true, push: true, queue: true },
    FunctionWiring { function: "sync-manual", builds: Builds::ManualSync, secret: true, push: true, queue: true },
    FunctionWiring { function: "sync-scheduled", builds: Builds::Scheduler, secret: false, push: false, queue: true },
    FunctionWiring { function: "sync-worker", builds: Builds::Worker, secret: true, push: true, queue: true },
    FunctionWiring { function: "webhook", builds: Builds::Webhook, secret: true, push: true, queue: false },
    FunctionWiring { function: "ws-connect", builds: Builds::Connector, secret: true, push: false, queue: false },
    FunctionWiring {
        function: "ws-disconnect",
        builds: Builds::ConnectionRemoval,
        secret: false,
        push: false,
        queue: false,
    },
];

/// The wiring of `function`; a function missing from the table gets everything (local use).
pub fn wiring_of(function: &str) -> FunctionWiring {
    FUNCTIONS.iter().find(|w| w.function == function).copied().unwrap_or(FunctionWiring {
        function: "local",
        builds: Builds::Everything,
        secret: true,
        push: true,
        queue: true,
    })
}

/// The start of `docs/SECURITY.md`'s table of what each function may do.
pub const GRANTS_TABLE_BEGIN: &str = "<!-- grants:begin (generated from shared::startup::wiring::FUNCTIONS: cargo run -p local-stack --bin contract) -->";
/// See `GRANTS_TABLE_BEGIN`.
pub const GRANTS_TABLE_END: &str = "<!-- grants:end -->";

/// What each function builds, the store ports it calls and the AWS actions it is granted for
/// them (the template's policies hold exactly these: a test compares the two).
pub fn grants_table_markdown() -> String {
    let mut table =
        String::from("| function | builds | store ports | DynamoDB actions | also |\n|---|---|---|---|---|\n");
    for wiring in FUNCTIONS {
        let ports: Vec<String> = wiring.builds.store_ports().iter().map(|p| format!("{p:?}")).collect();
        let ports = if ports.len() == StorePort::ALL.len() { "every one".to_string() } else { ports.join(", ") };
        let actions: Vec<&str> =
            wiring.dynamodb_actions().into_iter().map(|a| a.trim_start_matches("dynamodb:")).collect();
        let mut also = Vec::new();
        if wiring.secret {
            also.push("`secretsmanager:GetSecretValue`");
        }
        if wiring.push {
            also.push("`execute-api:ManageConnections`");
        }
        if wiring.queue {
            also.push("`sqs:SendMessage`");
        }
        table.push_str(&format!(
            "| `{}` | {:?} | {} | {} | {} |\n",
            wiring.function,
            wiring.builds,
            ports,
            actions.join(", "),
            if also.is_empty() { "–".to_string() } else { also.join(", ") }
        ));
    }
    table
}

/// `document` with its table of grants replaced by the one `FUNCTIONS` implies (`None`: no markers).
pub fn with_grants_table(document: &str) -> Option<String> {
    let start = document.find(GRANTS_TABLE_BEGIN)? + GRANTS_TABLE_BEGIN.len();
    let end = start + document[start..].find(GRANTS_TABLE_END)?;
    Some(format!("{}\n{}{}", &document[..start], grants_table_markdown(), &document[end..]))
}
