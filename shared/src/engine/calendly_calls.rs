//! Calls to Calendly under the tokens' rules: a refused token refreshed once, a lost
//! organization scope fallen back from, a revoked grant raised; what a delivery left out read.

use super::*;

impl SyncEngine {
    /// Runs a Calendly call with a valid token; after a 401, once more with a fresh token.
    pub(super) async fn authorized<T, F, Fut>(
        &self,
        session: &CalendlySession,
        integration: &Integration,
        call: F,
    ) -> Result<T, SyncError>
    where
        F: Fn(Arc<dyn CalendlyApi>, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, CalendlyError>>,
    {
        let (token, version) = self.tokens.access_token(session, integration).await?;
        match session.call(|api| call(api, token.clone())).await {
            Err(CalendlyError::Unauthorized) => {
                let (token, version) = self.tokens.replace_rejected(session, integration, version).await?;
                match session.call(|api| call(api, token.clone())).await {
                    Err(CalendlyError::Unauthorized) => {
                        self.access_lost(integration, version).await;
                        Err(TokenError::NeedsReconnect.into())
                    }
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    /// Records the fall-back to user scope and tells the organization why.
    pub(super) async fn organization_scope_lost(&self, integration: &Integration) -> Result<(), SyncError> {
        let org = &integration.organization_id;
        tracing::warn!(organization_id = %org, "Calendly refuses organization scope; back to user scope");
        self.store.fall_back_to_user_scope(org).await?;
        let notification = crate::domain::Notification::scope_reduced(integration, self.clock.now());
        self.store.add_notification(&notification).await?;
        self.pusher.push(org, crate::push::PushMessage::notification(&notification)).await;
        Ok(())
    }

    /// A token fresh from a successful refresh was refused too: the access was revoked in
    /// Calendly. The integration needs its user to reconnect (and drops off the schedule, so
    /// no more token requests are made for it); the organization is told, once.
    pub(super) async fn access_lost(&self, integration: &Integration, token_version: u64) {
        if let Err(e) = self.tokens.access_lost(integration, token_version).await {
            tracing::warn!(organization_id = %integration.organization_id, error = %e, "could not mark the integration for reconnection");
        }
    }

    /// Reads from Calendly what a delivery left out: the invitee (when it named only its URI)
    /// and its scheduled event. Never waits for a rate limit: a webhook answers in seconds.
    pub async fn fetch_delivered(
        &self,
        integration: &Integration,
        invitee_uri: &crate::calendly::delivery::InviteeUri,
        invitee: Option<Invitee>,
    ) -> Result<(Invitee, ScheduledEvent), SyncError> {
        let session = self.session(Duration::ZERO);
        let (invitee_uuid, event_uuid) = (invitee_uri.invitee_uuid(), invitee_uri.event_uuid());
        let invitee = match invitee {
            Some(invitee) => invitee,
            None => {
                self.authorized(&session, integration, |api, token| {
                    let (e, i) = (event_uuid.to_string(), invitee_uuid.to_string());
                    async move { api.get_invitee(&token, &e, &i).await }
                })
                .await?
            }
        };
        let event = match invitee.scheduled_event.clone() {
            Some(event) => event,
            None => {
                self.authorized(&session, integration, |api, token| {
                    let e = event_uuid.to_string();
                    async move { api.get_scheduled_event(&token, &e).await }
                })
                .await?
            }
        };
        Ok((invitee, event))
    }
}

/// What the organization hears when Calendly access is lost for good: one
/// `calendly_reconnect_needed` notification (pushed), and the settings mirror saying the
/// OAuth connection is gone.
pub struct ReconnectAlarm {
    store: Arc<dyn Store>,
    pusher: Arc<dyn Pusher>,
    clock: Arc<dyn Clock>,
}

impl ReconnectAlarm {
    /// An alarm writing to the store and pushing to the organization's browsers.
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, clock: Arc<dyn Clock>) -> Self {
        Self { store, pusher, clock }
    }
}

#[async_trait::async_trait]
impl crate::engine::tokens::AccessLostAlarm for ReconnectAlarm {
    async fn raise(&self, integration: &Integration) {
        let org = &integration.organization_id;
        let mut mirror = serde_json::Map::new();
        mirror.insert("oauth_connected".into(), serde_json::json!(false));
        if let Err(e) = self.store.merge_calendly_settings(org, &mirror).await {
            tracing::warn!(organization_id = %org, error = %e, "could not mirror the lost connection");
        }
        let notification = crate::domain::Notification::reconnect_needed(integration, self.clock.now());
        match self.store.add_notification(&notification).await {
            Ok(()) => self.pusher.push(org, PushMessage::notification(&notification)).await,
            Err(e) => tracing::warn!(organization_id = %org, error = %e, "could not add the reconnection notification"),
        }
    }
}
