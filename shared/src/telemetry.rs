//! Logging: JSON lines on Lambda (CloudWatch), readable lines locally; metrics as EMF lines.

pub mod metrics;

/// Installs the global subscriber once; `RUST_LOG` filters (default `info`).
pub fn init(json: bool) {
    if json {
        init_json_with(std::io::stdout);
    } else {
        let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_target(false);
        // A second init (tests, the local stack) keeps the first subscriber.
        let _ = builder.compact().try_init();
    }
}

/// Installs, once, the JSON lines Lambda writes (one object per event, the current span's
/// fields flattened in, no timestamp: CloudWatch stamps each line), to `writer` (stdout on
/// Lambda; the benchmark counts the bytes one sync logs).
pub fn init_json_with<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_target(false).with_writer(writer);
    let _ = builder.json().flatten_event(true).with_current_span(true).with_span_list(false).without_time().try_init();
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// The correlation id of the work in progress (an HTTP request's, a sync job's), readable by
/// whatever that work calls without being handed it: the pushes it makes carry it, so one
/// booking can be followed from Calendly's delivery to the browser.
pub mod correlation {
    use std::future::Future;

    tokio::task_local! {
        static CORRELATION_ID: String;
    }

    /// Runs `work` with `id` as its correlation id.
    pub async fn within<F: Future>(id: String, work: F) -> F::Output {
        CORRELATION_ID.scope(id, work).await
    }

    /// The correlation id of the work in progress, if it has one.
    pub fn current() -> Option<String> {
        CORRELATION_ID.try_with(Clone::clone).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn work_reads_its_own_id_and_none_outside() {
            assert_eq!(current(), None);
            let inner = within("req-1".into(), async { current() }).await;
            assert_eq!(inner.as_deref(), Some("req-1"));
            assert_eq!(current(), None);
        }
    }
}
