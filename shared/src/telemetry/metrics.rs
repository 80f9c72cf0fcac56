//! Metrics as CloudWatch Embedded Metric Format (EMF): counted in memory while an invocation
//! runs, written to stdout as JSON lines when it ends (`flush`), where CloudWatch Logs turns
//! them into metrics. No client, no network call, nothing at init.
//!
//! A writer of our own rather than the `metrics` facade with an EMF exporter: the product
//! emits a fixed, small set (the `Metric` enum), one line per dimension set per invocation,
//! and this costs no dependency, no global recorder installation at start-up and no
//! background task. Dimensions are low-cardinality on purpose: the function and an outcome,
//! never an organization.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The namespace every metric is published under.
pub const NAMESPACE: &str = "Velvena/Calendly";
/// EMF takes at most this many values of one metric in one document; more are dropped (an
/// invocation records one or a few of each distribution).
pub const MAX_VALUES: usize = 100;

/// What the product measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Sync jobs ended (outcome `succeeded` or `failed`).
    SyncJobs,
    /// How long an ended sync job took, from its start (milliseconds).
    SyncJobDuration,
    /// Sync job slices paused under Calendly's rate limit.
    RateLimitPauses,
    /// Bookings recorded (outcome `created`, `updated` or `canceled`).
    Bookings,
    /// Requests sent to Calendly's API.
    CalendlyRequests,
    /// Calendly's 429 answers.
    CalendlyRateLimited,
    /// Webhook deliveries by answer (`processed`, `ignored`, `deferred`, `gone`, `rejected`,
    /// `failed`).
    WebhookDeliveries,
    /// A delivery's lag: its receipt less the event's `created_at` (milliseconds).
    WebhookLag,
    /// WebSocket pushes (outcome `sent` or `gone`).
    Pushes,
    /// DynamoDB throttling answers (each retried).
    DynamoThrottles,
    /// Transactions cancelled by a conflict and retried.
    DynamoConflictsRetried,
    /// Token refreshes at Calendly (outcome `succeeded` or `failed`).
    TokenRefreshes,
    /// Erasures carried out.
    Erasures,
}

impl Metric {
    /// Every metric, as the dashboard shows them.
    pub const ALL: [Metric; 13] = [
        Self::SyncJobs,
        Self::SyncJobDuration,
        Self::RateLimitPauses,
        Self::Bookings,
        Self::CalendlyRequests,
        Self::CalendlyRateLimited,
        Self::WebhookDeliveries,
        Self::WebhookLag,
        Self::Pushes,
        Self::DynamoThrottles,
        Self::DynamoConflictsRetried,
        Self::TokenRefreshes,
        Self::Erasures,
    ];

    /// Its name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Self::SyncJobs => "SyncJobs",
            Self::SyncJobDuration => "SyncJobDuration",
            Self::RateLimitPauses => "RateLimitPauses",
            Self::Bookings => "Bookings",
            Self::CalendlyRequests => "CalendlyRequests",
            Self::CalendlyRateLimited => "CalendlyRateLimited",
            Self::WebhookDeliveries => "WebhookDeliveries",
            Self::WebhookLag => "WebhookLag",
            Self::Pushes => "Pushes",
            Self::DynamoThrottles => "DynamoThrottles",
            Self::DynamoConflictsRetried => "DynamoConflictsRetried",
            Self::TokenRefreshes => "TokenRefreshes",
            Self::Erasures => "Erasures",
        }
    }

    /// Its CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Self::SyncJobDuration | Self::WebhookLag => "Milliseconds",
            _ => "Count",
        }
    }
}

/// What one invocation recorded so far, by outcome (the optional dimension), then metric.
#[derive(Debug, Default)]
pub struct Registry {
    samples: Mutex<BTreeMap<Option<&'static str>, BTreeMap<Metric, Samples>>>,
}

#[derive(Debug, Default, Clone)]
struct Samples {
    /// Counts are summed; distributions keep their values.
    sum: f64,
    values: Vec<f64>,
}

impl Registry {
    /// Adds `n` to a count.
    pub fn count(&self, metric: Metric, outcome: Option<&'static str>, n: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.entry(outcome).or_default().entry(metric).or_default().sum += n as f64;
    }

    /// Records one value of a distribution (e.g. a duration).
    pub fn observe(&self, metric: Metric, outcome: Option<&'static str>, value: f64) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let entry = samples.entry(outcome).or_default().entry(metric).or_default();
        if entry.values.len() < MAX_VALUES {
            entry.values.push(value);
        }
    }

    /// The EMF documents of what was recorded, emptying the registry: one per outcome (the
    /// dimension values are the document's own keys), all under `function`.
    pub fn take_documents(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        let taken = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        taken
            .into_iter()
            .filter(|(_, metrics)| !metrics.is_empty())
            .map(|(outcome, metrics)| {
                let dimensions: Vec<&str> = std::iter::once("Function").chain(outcome.map(|_| "Outcome")).collect();
                let mut document = Map::new();
                let definitions: Vec<Value> =
                    metrics.keys().map(|m| json!({ "Name": m.name(), "Unit": m.unit() })).collect();
                document.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms,
                        "CloudWatchMetrics": [{ "Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": definitions }],
                    }),
                );
                document.insert("Function".into(), json!(function));
                if let Some(outcome) = outcome {
                    document.insert("Outcome".into(), json!(outcome));
                }
                for (metric, samples) in metrics {
                    let value = match metric.unit() {
                        "Count" => json!(samples.sum),
                        _ => json!(samples.values),
                    };
                    document.insert(metric.name().into(), value);
                }
                Value::Object(document)
            })
            .collect()
    }
}

/// The process's registry (one invocation at a time per Lambda container).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Adds `n` to a count of this invocation.
pub fn count(metric: Metric, outcome: Option<&'static str>, n: u64) {
    registry().count(metric, outcome, n);
}

/// Records one value of a distribution of this invocation.
pub fn observe(metric: Metric, outcome: Option<&'static str>, value: f64) {
    registry().observe(metric, outcome, value);
}

/// Ends an invocation of `function`: on Lambda (the Runtime API is set), what it recorded
/// goes to stdout as EMF lines; elsewhere (the local stack, tests), or with `EMF_METRICS=off`
/// (no metrics, no log volume for them), it is dropped, so the registry never grows.
pub fn flush(function: &str) {
    static ON_LAMBDA: OnceLock<bool> = OnceLock::new();
    let on_lambda = *ON_LAMBDA.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
            && std::env::var("EMF_METRICS").map_or(true, |v| v.trim() != "off")
    });
    let documents = registry().take_documents(function, chrono::Utc::now().timestamp_millis());
    if on_lambda {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for document in documents {
            let _ = writeln!(out, "{document}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_one_emf_document_per_outcome_and_the_registry_starts_over() {
        let registry = Registry::default();
        registry.count(Metric::WebhookDeliveries, Some("processed"), 1);
        registry.count(Metric::WebhookDeliveries, Some("processed"), 2);
        registry.count(Metric::WebhookDeliveries, Some("gone"), 1);
        registry.observe(Metric::WebhookLag, None, 1200.0);
        registry.observe(Metric::WebhookLag, None, 300.0);
        registry.count(Metric::CalendlyRequests, None, 4);
        let documents = registry.take_documents("webhook", 1_700_000_000_000);
        assert_eq!(documents.len(), 3, "{documents:?}");
        let plain = &documents[0];
        assert_eq!(plain["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(plain["Function"], "webhook");
        assert_eq!(plain["WebhookLag"], json!([1200.0, 300.0]));
        assert_eq!(plain["CalendlyRequests"], json!(4.0));
        let names: Vec<&str> =
            directive["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["CalendlyRequests", "WebhookLag"]);
        let gone = documents.iter().find(|d| d["Outcome"] == "gone").unwrap();
        assert_eq!(gone["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Outcome"]]));
        assert_eq!(gone["WebhookDeliveries"], json!(1.0));
        let processed = documents.iter().find(|d| d["Outcome"] == "processed").unwrap();
        assert_eq!(processed["WebhookDeliveries"], json!(3.0));
        assert!(registry.take_documents("webhook", 0).is_empty(), "taken once");
    }

    #[test]
    fn a_distribution_keeps_at_most_what_emf_takes() {
        let registry = Registry::default();
        for i in 0..150 {
            registry.observe(Metric::SyncJobDuration, Some("succeeded"), f64::from(i));
        }
        let documents = registry.take_documents("sync-worker", 0);
        assert_eq!(documents[0]["SyncJobDuration"].as_array().unwrap().len(), MAX_VALUES);
    }
}
