//! The dead-letter queue for real, on moto's SQS: a sync job message whose worker can't reach
//! its store fails five receives and is set aside in the dead-letter queue (the template's
//! `maxReceiveCount`), `scripts/redrive-dlq` (the runbook's command) puts it back, and the job
//! runs.

use crate::helpers::{TestApp, in_days};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::app::Adapters;
use shared::domain::{SyncJob, SyncTrigger};
use std::collections::HashMap;
use std::sync::Arc;

/// The template's `maxReceiveCount`.
const MAX_RECEIVE_COUNT: usize = 5;

async fn queue_with_dead_letters(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
    let attributes =
        sqs.get_queue_attributes().queue_url(&dlq).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    let dlq_arn = attributes.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#);
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        // Back at once after a failed receive (the template's is 720 s).
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (queue, dlq)
}

async fn visible(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attributes[&QueueAttributeName::ApproximateNumberOfMessages].parse().unwrap()
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_a_redrive_runs_it() {
    let endpoint = local_stack::dynamo::test_endpoint().await;
    let sqs = local_stack::jobs::sqs_client(Some(&endpoint), None, None);
    let name = format!("velvena-dlq-{}", shared::crypto::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let (poisoned, dead_letters) = queue_with_dead_letters(&sqs, &name).await;

    // The stack runs its own worker on its own SQS queue; the job is its organization's.
    let env = HashMap::from([
        ("QUEUE".to_string(), "sqs".to_string()),
        ("AWS_ENDPOINT_URL_SQS".to_string(), endpoint.clone()),
        ("TABLE_NAME".to_string(), format!("{name}-stack")),
    ]);
    let app = TestApp::spawn_with(local_stack::StackOptions { env, ..Default::default() }).await;
    let host = app.host("Camille Martin");
    app.connect("org-a", &host).await;
    app.seed(&host, "John Doe", "john@example.com", "Découverte 30min", in_days(2));
    let org = shared::domain::OrganizationId::new("org-a");
    let integration = app.stack.store.get_integration(&org).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let (start, end) = (now - chrono::Duration::days(30), now + chrono::Duration::days(365));
    let job = SyncJob::queued(
        integration.organization_id.clone(),
        integration.id.clone(),
        SyncTrigger::Manual,
        start,
        end,
        now,
    );
    app.stack.store.start_sync_job(&job, now).await.unwrap();
    let body = serde_json::to_string(&job.message()).unwrap();
    sqs.send_message().queue_url(&poisoned).message_body(body).send().await.unwrap();

    // A worker whose store is unreachable (nothing listens on the discard port), fed like the
    // event source mapping: what it reports failed is not deleted and comes back.
    let dead_store =
        shared::store::DynamoStore::new(local_stack::dynamo::client(Some("http://127.0.0.1:9"), None, None), "t");
    let adapters = Adapters {
        store: Arc::new(dead_store),
        calendly: shared::startup::wiring::calendly_client(&app.stack.config),
        pusher: Arc::new(shared::push::NoPushEndpoint),
        queue: Arc::new(shared::queue::NoQueue),
        ticks: Arc::new(shared::queue::NoQueue),
        clock: app.stack.clock.clone(),
    };
    let broken = shared::app::worker_of(&app.stack.config, adapters);
    let mut receives = 0;
    for _ in 0..20 {
        let messages = sqs.receive_message().queue_url(&poisoned).send().await.unwrap().messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        receives += messages.len();
        let mut event = aws_lambda_events::sqs::SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| {
                let mut record = aws_lambda_events::sqs::SqsMessage::default();
                record.message_id = m.message_id;
                record.body = m.body;
                record
            })
            .collect();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let answer = sync_worker::handle(&broken, event, deadline).await;
        assert_eq!(answer.batch_item_failures.len(), 1, "reported failed, so SQS brings it back");
    }
    assert_eq!(receives, MAX_RECEIVE_COUNT, "received maxReceiveCount times, then set aside");
    assert_eq!(visible(&sqs, &dead_letters).await, 1, "in the dead-letter queue");
    let waiting = app.stack.store.get_sync_job(&integration.organization_id).await.unwrap().unwrap();
    assert_eq!(waiting.state, shared::domain::SyncJobState::Queued, "the job never ran");
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_none(), "nothing synced yet");

    // The runbook's redrive, to the queue the stack's worker consumes.
    let stack_queue =
        sqs.get_queue_url().queue_name(format!("{name}-stack-sync-jobs")).send().await.unwrap().queue_url.unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/redrive-dlq");
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let output = std::process::Command::new(python)
        .args([script, "--dlq-url", &dead_letters, "--queue-url", &stack_queue, "--endpoint-url", &endpoint])
        .envs([("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "eu-west-3")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("moved 1 message"), "{said}");
    assert_eq!(visible(&sqs, &dead_letters).await, 0);

    let ended = app.wait_for_sync("org-a").await;
    assert_eq!((ended["id"].as_str(), ended["state"].as_str()), (Some(job.id.as_str()), Some("succeeded")), "{ended}");
    assert!(app.prospect_by_email("org-a", "john@example.com").await.is_some(), "the redriven job synced");
}
