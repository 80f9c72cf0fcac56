//! The reqwest adapter of `CalendlyApi`.

use crate::calendly::{
    CalendlyApi, CalendlyError, CalendlyUser, EventQuery, EventType, EventTypeOwner, Invitee, InviteeNoShow,
    NewWebhookSubscription, OrganizationMembership, Page, RateWindow, Resource, RoutingForm, RoutingFormSubmission,
    ScheduledEvent, TokenResponse, WebhookSubscription, last_segment,
};
use crate::clock::{Clock, SystemClock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// Where Calendly lives and who we are to it.
#[derive(Clone, Debug)]
pub struct CalendlySettings {
    /// The OAuth application's client id.
    pub client_id: String,
    /// The OAuth application's client secret.
    pub client_secret: crate::crypto::Secret,
    /// The redirect URI registered with the application.
    pub redirect_uri: String,
    /// Calendly's API (the simulator's locally).
    pub api_base_url: String,
    /// Calendly's OAuth server.
    pub auth_base_url: String,
}

/// The longest a Calendly exchange may take (well inside a Lambda invocation).
const CALENDLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Calendly over HTTPS, through the process's one HTTPS client (`crate::https`).
pub struct HttpCalendly {
    settings: CalendlySettings,
    /// What Calendly's `X-RateLimit-*` headers last said, per access token (per user).
    rate_windows: std::sync::Mutex<std::collections::HashMap<String, RateWindow>>,
    /// Calendly's rate windows are in real time: the system clock, never a moved one.
    clock: SystemClock,
}

impl HttpCalendly {
    /// A client for the Calendly of `settings`; nothing is built before the first request.
    pub fn new(settings: CalendlySettings) -> Self {
        Self { settings, rate_windows: Default::default(), clock: SystemClock::default() }
    }

    /// A request to Calendly, with Calendly's time limit.
    fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        crate::https::client().request(method, url).timeout(CALENDLY_TIMEOUT)
    }

    /// Sends an API request unless the user's rate-limit window is spent: then it answers
    /// `Paced` without sending, so a large sync stays under Calendly's limit instead of
    /// collecting 429s (the caller decides whether to wait or to come back later).
    async fn send(&self, access_token: &str, request: reqwest::RequestBuilder) -> Result<Response, CalendlyError> {
        let now = self.clock.now();
        if let Some(w) = self.rate_window(access_token).filter(|w| w.spent_at(now)) {
            return Err(CalendlyError::Paced { retry_after_secs: w.seconds_to_reset(now) });
        }
        let response = request.bearer_auth(access_token).send().await.map_err(unreachable)?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if let (Some(remaining), Some(reset)) = (header("x-ratelimit-remaining"), header("x-ratelimit-reset")) {
            self.restore_rate_window(access_token, RateWindow::observed(remaining, reset, self.clock.now()));
        }
        Ok(response)
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_base_url)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, CalendlyError> {
        let response = self
            .request(reqwest::Method::POST, format!("{}/oauth/token", self.settings.auth_base_url))
            .basic_auth(&self.settings.client_id, Some(self.settings.client_secret.expose()))
            .form(form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return decode(response).await;
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match (status, body.get("error").and_then(Value::as_str)) {
            (StatusCode::TOO_MANY_REQUESTS, _) => Err(CalendlyError::RateLimited { retry_after_secs: 60 }),
            (s, _) if s.is_server_error() => {
                Err(CalendlyError::Unavailable(format!("token endpoint answered {s}").into()))
            }
            (_, Some(error)) => Err(CalendlyError::OAuth {
                error: error.to_string(),
                description: body.get("error_description").and_then(Value::as_str).unwrap_or(error).to_string(),
            }),
            (s, None) => Err(CalendlyError::Api { status: s.as_u16(), message: body.to_string() }),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        access_token: &str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T, CalendlyError> {
        let response = self.send(access_token, self.request(reqwest::Method::GET, url).query(query)).await?;
        decode(check(response).await?).await
    }
}

fn unreachable(error: reqwest::Error) -> CalendlyError {
    CalendlyError::Unavailable(Box::new(error))
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, CalendlyError> {
    let bytes = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&bytes).map_err(CalendlyError::Decode)
}

/// Maps a non-success status to an error (branching on the status: titles are inconsistent).
async fn check(response: Response) -> Result<Response, CalendlyError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let reset =
        response.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    Err(match status {
        StatusCode::UNAUTHORIZED => CalendlyError::Unauthorized,
        StatusCode::FORBIDDEN => CalendlyError::Forbidden(message),
        StatusCode::NOT_FOUND => CalendlyError::NotFound,
        StatusCode::CONFLICT => CalendlyError::AlreadyExists,
        StatusCode::TOO_MANY_REQUESTS => CalendlyError::RateLimited { retry_after_secs: reset.unwrap_or(60) },
        s if s.is_server_error() => CalendlyError::Unavailable(format!("Calendly answered {s}").into()),
        s => CalendlyError::Api { status: s.as_u16(), message },
    })
}

fn with_page_token(params: &mut Vec<(&str, String)>, page_token: Option<&str>) {
    if let Some(token) = page_token {
        params.push(("page_token", token.to_string()));
    }
}

fn calendly_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[async_trait]
impl CalendlyApi for HttpCalendly {
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.settings.auth_base_url))
            .expect("the auth base URL was validated at start-up");
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("scope", &super::scopes::requested_scopes())
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    async fn exchange_code(&self, code: &str, code_verifier: &str) -> Result<TokenResponse, CalendlyError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.redirect_uri),
            ("code_verifier", code_verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, CalendlyError> {
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    async fn revoke(&self, token: &str) -> Result<(), CalendlyError> {
        let response = self
            .request(reqwest::Method::POST, format!("{}/oauth/revoke", self.settings.auth_base_url))
            .form(&[
                ("client_id", self.settings.client_id.as_str()),
                ("client_secret", self.settings.client_secret.expose()),
                ("token", token),
            ])
            .send()
            .await
            .map_err(unreachable)?;
        check(response).await.map(|_| ())
    }

    async fn current_user(&self, access_token: &str) -> Result<CalendlyUser, CalendlyError> {
        self.get::<Resource<CalendlyUser>>(access_token, &self.api("/users/me"), &[]).await.map(|r| r.resource)
    }

    async fn list_scheduled_events(
        &self,
        access_token: &str,
        query: &EventQuery,
    ) -> Result<Page<ScheduledEvent>, CalendlyError> {
        let owner = match &query.organization_uri {
            Some(organization) => ("organization", organization.clone()),
            None => ("user", query.user_uri.clone()),
        };
        let mut params = vec![
            owner,
            ("min_start_time", calendly_time(query.min_start_time)),
            ("max_start_time", calendly_time(query.max_start_time)),
            ("count", "100".to_string()),
            ("sort", "start_time:asc".to_string()),
        ];
        if let Some(token) = &query.page_token {
            params.push(("page_token", token.clone()));
        }
        self.get(access_token, &self.api("/scheduled_events"), &params).await
    }

    async fn list_invitees(
        &self,
        access_token: &str,
        event_uuid: &str,
        page_token: Option<&str>,
    ) -> Result<Page<Invitee>, CalendlyError> {
        let mut params = vec![("count", "100".to_string())];
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api(&format!("/scheduled_events/{event_uuid}/invitees")), &params).await
    }

    async fn list_event_types(
        &self,
        access_token: &str,
        owner: &EventTypeOwner,
        page_token: Option<&str>,
    ) -> Result<Page<EventType>, CalendlyError> {
        let mut params = match owner {
            EventTypeOwner::User(user) => vec![("user", user.clone())],
            EventTypeOwner::Organization(organization) => vec![("organization", organization.clone())],
        };
        params.push(("count", "100".to_string()));
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api("/event_types"), &params).await
    }

    async fn get_scheduled_event(&self, access_token: &str, event_uuid: &str) -> Result<ScheduledEvent, CalendlyError> {
        let url = self.api(&format!("/scheduled_events/{event_uuid}"));
        self.get::<Resource<ScheduledEvent>>(access_token, &url, &[]).await.map(|r| r.resource)
    }

    async fn get_invitee(
        &self,
        access_token: &str,
        event_uuid: &str,
        invitee_uuid: &str,
    ) -> Result<Invitee, CalendlyError> {
        let url = self.api(&format!("/scheduled_events/{event_uuid}/invitees/{invitee_uuid}"));
        self.get::<Resource<Invitee>>(access_token, &url, &[]).await.map(|r| r.resource)
    }

    async fn list_webhook_subscriptions(
        &self,
        access_token: &str,
        organization_uri: &str,
        user_uri: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Page<WebhookSubscription>, CalendlyError> {
        let mut params = vec![("organization", organization_uri.to_string()), ("count", "100".to_string())];
        match user_uri {
            Some(user) => {
                params.push(("user", user.to_string()));
                params.push(("scope", "user".to_string()));
            }
            None => params.push(("scope", "organization".to_string())),
        }
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api("/webhook_subscriptions"), &params).await
    }

    async fn organization_memberships(
        &self,
        access_token: &str,
        organization_uri: &str,
        user_uri: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Page<OrganizationMembership>, CalendlyError> {
        let mut params = vec![("organization", organization_uri.to_string()), ("count", "100".to_string())];
        if let Some(user) = user_uri {
            params.push(("user", user.to_string()));
        }
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api("/organization_memberships"), &params).await
    }

    async fn create_webhook_subscription(
        &self,
        access_token: &str,
        request: &NewWebhookSubscription,
    ) -> Result<WebhookSubscription, CalendlyError> {
        let body = match request.organization_wide {
            true => json!({
                "url": request.url,
                "events": request.events,
                "organization": request.organization_uri,
                "scope": "organization",
            }),
            false => json!({
                "url": request.url,
                "events": request.events,
                "organization": request.organization_uri,
                "user": request.user_uri,
                "scope": "user",
            }),
        };
        let response = self
            .send(access_token, self.request(reqwest::Method::POST, self.api("/webhook_subscriptions")).json(&body))
            .await?;
        let created: Resource<WebhookSubscription> = decode(check(response).await?).await?;
        Ok(created.resource)
    }

    async fn list_routing_forms(
        &self,
        access_token: &str,
        organization_uri: &str,
        page_token: Option<&str>,
    ) -> Result<Page<RoutingForm>, CalendlyError> {
        let mut params = vec![("organization", organization_uri.to_string()), ("count", "100".to_string())];
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api("/routing_forms"), &params).await
    }

    async fn get_routing_form(&self, access_token: &str, form_uri: &str) -> Result<RoutingForm, CalendlyError> {
        let url = self.api(&format!("/routing_forms/{}", last_segment(form_uri)));
        self.get::<Resource<RoutingForm>>(access_token, &url, &[]).await.map(|r| r.resource)
    }

    async fn list_routing_form_submissions(
        &self,
        access_token: &str,
        form_uri: &str,
        page_token: Option<&str>,
    ) -> Result<Page<RoutingFormSubmission>, CalendlyError> {
        let mut params =
            vec![("form", form_uri.to_string()), ("count", "100".to_string()), ("sort", "created_at:desc".to_string())];
        with_page_token(&mut params, page_token);
        self.get(access_token, &self.api("/routing_form_submissions"), &params).await
    }

    async fn delete_webhook_subscription(
        &self,
        access_token: &str,
        subscription_uri: &str,
    ) -> Result<(), CalendlyError> {
        let url = self.api(&format!("/webhook_subscriptions/{}", last_segment(subscription_uri)));
        let response = self.send(access_token, self.request(reqwest::Method::DELETE, url)).await?;
        match check(response).await {
            Ok(_) | Err(CalendlyError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_invitee_data(&self, access_token: &str, emails: &[String]) -> Result<(), CalendlyError> {
        let body = json!({ "emails": emails });
        let url = self.api("/data_compliance/deletion/invitees");
        let response = self.send(access_token, self.request(reqwest::Method::POST, url).json(&body)).await?;
        check(response).await.map(|_| ())
    }

    async fn create_invitee_no_show(
        &self,
        access_token: &str,
        invitee_uri: &str,
    ) -> Result<InviteeNoShow, CalendlyError> {
        let body = json!({ "invitee": invitee_uri });
        let url = self.api("/invitee_no_shows");
        let response = self.send(access_token, self.request(reqwest::Method::POST, url).json(&body)).await?;
        let created: Resource<InviteeNoShow> = decode(check(response).await?).await?;
        Ok(created.resource)
    }

    async fn delete_invitee_no_show(&self, access_token: &str, no_show_uri: &str) -> Result<(), CalendlyError> {
        let url = self.api(&format!("/invitee_no_shows/{}", last_segment(no_show_uri)));
        let response = self.send(access_token, self.request(reqwest::Method::DELETE, url)).await?;
        check(response).await.map(|_| ())
    }

    fn rate_window(&self, access_token: &str) -> Option<RateWindow> {
        self.rate_windows.lock().unwrap_or_else(|e| e.into_inner()).get(access_token).copied()
    }

    fn restore_rate_window(&self, access_token: &str, window: RateWindow) {
        let mut windows = self.rate_windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.clear();
        }
        let stored = windows.entry(access_token.to_string()).or_insert(window);
        if window.supersedes(stored) {
            *stored = window;
        }
    }
}
