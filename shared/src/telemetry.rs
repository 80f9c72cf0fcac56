//! Logging: JSON lines on Lambda (CloudWatch), readable lines locally; metrics as EMF lines.

pub mod metrics;

/// Installs the global subscriber once; `RUST_LOG` filters (default `info`).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests, the local stack) keeps the first subscriber.
    let _ = result;
}
