//! Test doubles for the use-case tests: a Calendly that is down, a queue that records or
//! refuses, a pusher that records, and an integration connected in the embedded store.

use crate::calendly::{
    CalendlyApi, CalendlyError, CalendlyUser, EventQuery, EventType, EventTypeOwner, Invitee, NewWebhookSubscription,
    OrganizationMembership, Page, ScheduledEvent, TokenResponse, WebhookSubscription,
};
use crate::domain::schedule::TickRest;
use crate::domain::{ConnectedAccount, Integration, IntegrationId, OrganizationId, SyncJobMessage, UserId};
use crate::push::{PushMessage, Pusher};
use crate::queue::{JobQueue, QueueError, TickQueue};
use crate::store::{IntegrationStore, MemoryStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Calendly unreachable: every call fails as a network failure would, so a use case that
/// must not call Calendly is seen not to depend on it.
pub struct CalendlyDown;

fn down<T>() -> Result<T, CalendlyError> {
    Err(CalendlyError::Unavailable("Calendly is down in this test".into()))
}

#[async_trait]
impl CalendlyApi for CalendlyDown {
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        format!("https://auth.calendly.test/oauth/authorize?state={state}&code_challenge={code_challenge}")
    }
    async fn exchange_code(&self, _: &str, _: &str) -> Result<TokenResponse, CalendlyError> {
        down()
    }
    async fn refresh(&self, _: &str) -> Result<TokenResponse, CalendlyError> {
        down()
    }
    async fn delete_invitee_data(&self, _: &str, _: &[String]) -> Result<(), CalendlyError> {
        down()
    }
    async fn create_invitee_no_show(&self, _: &str, _: &str) -> Result<crate::calendly::InviteeNoShow, CalendlyError> {
        down()
    }
    async fn delete_invitee_no_show(&self, _: &str, _: &str) -> Result<(), CalendlyError> {
        down()
    }
    async fn list_routing_forms(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<Page<crate::calendly::RoutingForm>, CalendlyError> {
        down()
    }
    async fn get_routing_form(&self, _: &str, _: &str) -> Result<crate::calendly::RoutingForm, CalendlyError> {
        down()
    }
    async fn list_routing_form_submissions(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<Page<crate::calendly::RoutingFormSubmission>, CalendlyError> {
        down()
    }
    async fn revoke(&self, _: &str) -> Result<(), CalendlyError> {
        down()
    }
    async fn current_user(&self, _: &str) -> Result<CalendlyUser, CalendlyError> {
        down()
    }
    async fn list_scheduled_events(&self, _: &str, _: &EventQuery) -> Result<Page<ScheduledEvent>, CalendlyError> {
        down()
    }
    async fn list_invitees(&self, _: &str, _: &str, _: Option<&str>) -> Result<Page<Invitee>, CalendlyError> {
        down()
    }
    async fn list_event_types(
        &self,
        _: &str,
        _: &EventTypeOwner,
        _: Option<&str>,
    ) -> Result<Page<EventType>, CalendlyError> {
        down()
    }
    async fn get_scheduled_event(&self, _: &str, _: &str) -> Result<ScheduledEvent, CalendlyError> {
        down()
    }
    async fn get_invitee(&self, _: &str, _: &str, _: &str) -> Result<Invitee, CalendlyError> {
        down()
    }
    async fn list_webhook_subscriptions(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Page<WebhookSubscription>, CalendlyError> {
        down()
    }
    async fn organization_memberships(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Page<OrganizationMembership>, CalendlyError> {
        down()
    }
    async fn create_webhook_subscription(
        &self,
        _: &str,
        _: &NewWebhookSubscription,
    ) -> Result<WebhookSubscription, CalendlyError> {
        down()
    }
    async fn delete_webhook_subscription(&self, _: &str, _: &str) -> Result<(), CalendlyError> {
        down()
    }
}

/// A queue that keeps what it was sent, or refuses everything once `refuse` is set.
#[derive(Default)]
pub struct RecordingQueue {
    pub sent: Mutex<Vec<SyncJobMessage>>,
    pub refuse: AtomicBool,
}

#[async_trait]
impl JobQueue for RecordingQueue {
    async fn send(&self, messages: &[SyncJobMessage], _: Duration) -> Result<(), QueueError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(QueueError::Send("the queue refuses in this test".into()));
        }
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(messages);
        Ok(())
    }
}

/// A tick queue that keeps the rests handed on.
#[derive(Default)]
pub struct RecordingTicks(pub Mutex<Vec<TickRest>>);

impl RecordingTicks {
    /// The rests handed on so far, taken out.
    pub fn take(&self) -> Vec<TickRest> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl TickQueue for RecordingTicks {
    async fn hand_on(&self, rests: &[TickRest]) -> Result<(), QueueError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(rests);
        Ok(())
    }
}

/// Keeps the events that would have been pushed, with their organization.
#[derive(Default)]
pub struct RecordingPusher(pub Mutex<Vec<(OrganizationId, &'static str)>>);

#[async_trait]
impl Pusher for RecordingPusher {
    async fn push(&self, org: &OrganizationId, message: PushMessage) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((org.clone(), message.event()));
    }
}

/// An integration of `org` connected to the Calendly user `users/{org}`, saved in `store`.
pub async fn connected(store: &MemoryStore, org: &str, now: DateTime<Utc>) -> Integration {
    let account = ConnectedAccount {
        id: IntegrationId::generate(),
        organization_id: OrganizationId::new(org),
        connected_by: UserId::new("user-1"),
        calendly_user_uri: format!("https://api.calendly.com/users/{org}"),
        calendly_organization_uri: format!("https://api.calendly.com/organizations/{org}"),
        email: "host@example.com".into(),
        name: "Host".into(),
        scheduling_url: Some("https://calendly.com/host".into()),
    };
    let integration = Integration::connected(account, now + chrono::Duration::hours(2), now);
    store.save_connected_integration(integration).await.unwrap_or_else(|e| panic!("{e}"))
}
