//! The HTTP API as axum routers, declared once: each Lambda function serves its own router
//! and the local stack merges them all.

pub mod error;
pub mod extract;
mod prospects;
mod webhook;

pub use error::ApiError;

use crate::domain::{NotificationId, OrganizationId};
use crate::service::Services;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use extract::{Authenticated, PageParams, json_body};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Routes of the `api` function: everything but OAuth callback, sync and webhooks.
pub fn api_routes() -> Router<Services> {
    Router::new()
        .route("/health", get(health))
        .route("/calendly/connect", post(connect))
        .route("/calendly/status", get(status))
        .route("/calendly/settings", axum::routing::patch(update_settings))
        .route("/calendly/events", get(list_events))
        .route("/calendly/event-types", get(list_event_types))
        .route("/calendly/disconnect", post(disconnect))
        .route("/prospects", get(prospects::list).post(prospects::create))
        .route("/prospects/{id}", get(prospects::get).patch(prospects::update).delete(prospects::delete))
        .route("/notifications", get(list_notifications))
        .route("/notifications/{id}/read", post(mark_notification_read))
        .route("/organization", get(get_organization).patch(patch_organization))
}

/// Routes of the `oauth-callback` function.
pub fn oauth_routes() -> Router<Services> {
    Router::new().route("/auth/calendly/callback", get(callback_redirect).post(callback_json))
}

/// Routes of the `sync-manual` function.
pub fn sync_routes() -> Router<Services> {
    Router::new().route("/calendly/sync", post(sync_now))
}

/// Routes of the `webhook` function.
pub fn webhook_routes() -> Router<Services> {
    Router::new()
        .route("/calendly/webhook", post(webhook::receive_unrouted))
        .route("/calendly/webhook/{integration_id}", post(webhook::receive_for_integration))
}

/// Every HTTP route, as `(function, method, path)`: the SAM template routes exactly these
/// (a test checks it), and each function's router serves its own.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("api", "GET", "/health"),
    ("api", "POST", "/calendly/connect"),
    ("api", "GET", "/calendly/status"),
    ("api", "PATCH", "/calendly/settings"),
    ("api", "GET", "/calendly/events"),
    ("api", "GET", "/calendly/event-types"),
    ("api", "POST", "/calendly/disconnect"),
    ("api", "GET", "/prospects"),
    ("api", "POST", "/prospects"),
    ("api", "GET", "/prospects/{id}"),
    ("api", "PATCH", "/prospects/{id}"),
    ("api", "DELETE", "/prospects/{id}"),
    ("api", "GET", "/notifications"),
    ("api", "POST", "/notifications/{id}/read"),
    ("api", "GET", "/organization"),
    ("api", "PATCH", "/organization"),
    ("oauth-callback", "GET", "/auth/calendly/callback"),
    ("oauth-callback", "POST", "/auth/calendly/callback"),
    ("sync-manual", "POST", "/calendly/sync"),
    ("webhook", "POST", "/calendly/webhook"),
    ("webhook", "POST", "/calendly/webhook/{integration_id}"),
];

/// The router of an HTTP function, by its binary name.
pub fn routes_of(function: &str) -> Option<Router<Services>> {
    match function {
        "api" => Some(api_routes()),
        "oauth-callback" => Some(oauth_routes()),
        "sync-manual" => Some(sync_routes()),
        "webhook" => Some(webhook_routes()),
        _ => None,
    }
}

/// Every route, as one service (the local stack).
pub fn all_routes() -> Router<Services> {
    api_routes().merge(oauth_routes()).merge(sync_routes()).merge(webhook_routes())
}

/// Serves `routes` with request tracing, JSON 404s, and every error in the JSON format.
pub fn serve(routes: Router<Services>, services: Services) -> Router {
    routes
        .fallback(|| async { ApiError::App(crate::service::AppError::NotFound("route")) })
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(trace_request))
        .with_state(services)
}

/// Errors axum answers by itself (a body over the size limit, a wrong method or content
/// type) come as plain text: they are given the API's `{"error": {"code", "message"}}` form.
/// The callback's HTML pages are left alone.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let content_type = response.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let formatted = content_type.is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || formatted {
        return response;
    }
    let code = match status {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        axum::http::StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        m => m.to_string(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn trace_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn connect(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(serde_json::to_value(services.start_connect(&caller).await?).unwrap_or_default()))
}

#[derive(Deserialize)]
struct CallbackBody {
    code: String,
    state: String,
}

async fn callback_json(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: CallbackBody = json_body(&body)?;
    let outcome = services.complete_connect(&body.code, &body.state, &caller).await?;
    Ok(Json(json!({
        "connected": outcome.connected,
        "email": outcome.email,
        "name": outcome.name,
        "user_uri": outcome.user_uri,
        "sync": outcome.sync,
    })))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The browser's redirect from Calendly. It connects nothing by itself: a code and a state are
/// no proof of who is at the browser (RFC 6749 §10.12; a connect link sent to someone else
/// would otherwise connect *their* account to the sender's organization). They go to the
/// frontend, which completes with `POST /auth/calendly/callback` under the JWT of the user
/// who started the connect; without a frontend, a page says how.
async fn callback_redirect(State(services): State<Services>, Query(query): Query<CallbackQuery>) -> Response {
    let frontend = services.frontend_url.as_deref();
    match (&query.code, &query.state, &query.error) {
        (_, _, Some(error)) => {
            let reason = query.error_description.as_deref().unwrap_or(error);
            match frontend {
                Some(f) => redirect_to(f, &[("calendly", "denied"), ("calendly_error", reason)]),
                None => page(
                    axum::http::StatusCode::BAD_REQUEST,
                    "La connexion à Calendly a échoué",
                    &format!("<p>Calendly n'a pas donné l'accès : {}</p>", escape_html(reason)),
                ),
            }
        }
        (Some(code), Some(state), None) => match frontend {
            Some(f) => redirect_to(f, &[("calendly_code", code), ("calendly_state", state)]),
            None => page(
                axum::http::StatusCode::OK,
                "Terminer la connexion à Calendly",
                &format!(
                    "<p>Calendly a accepté. Pour terminer, l'application (ou vous, avec le jeton de la personne qui a lancé la connexion) envoie&nbsp;:</p>\
                     <pre>POST /auth/calendly/callback\nAuthorization: Bearer &lt;JWT&gt;\n\n{{\"code\": \"{}\", \"state\": \"{}\"}}</pre>",
                    escape_html(code),
                    escape_html(state)
                ),
            ),
        },
        _ => page(axum::http::StatusCode::BAD_REQUEST, "Calendly", "<p>code et state sont requis.</p>"),
    }
}

fn redirect_to(frontend: &str, params: &[(&str, &str)]) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let mut response = Redirect::to(&format!("{frontend}/settings/integrations?{query}")).into_response();
    secure_headers(&mut response);
    response
}

/// A small HTML page with the headers such a page needs: no scripts, no framing, no caching.
fn page(status: axum::http::StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>{}</title><h1>{}</h1>{body}",
        escape_html(title),
        escape_html(title)
    );
    let mut response = (status, Html(html)).into_response();
    secure_headers(&mut response);
    response
}

fn secure_headers(response: &mut Response) {
    use axum::http::HeaderValue;
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn status(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(services.status(&caller.organization_id).await?))
}

async fn update_settings(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Map<String, Value> = json_body(&body)?;
    let mut auto_sync = None;
    let mut interval = None;
    let mut event_types: Option<Option<Vec<String>>> = None;
    let mut ignore_emails: Option<Vec<String>> = None;
    let strings = |field: &str, value: &Value| -> Result<Vec<String>, ApiError> {
        value
            .as_array()
            .filter(|items| items.len() <= 200)
            .and_then(|items| {
                items.iter().map(|v| v.as_str().map(|s| s.trim().to_string())).collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                ApiError::bad_request("invalid_field", format!("{field} must be a list of at most 200 strings"))
            })
    };
    for (key, value) in &body {
        match key.as_str() {
            "event_types" if value.is_null() => event_types = Some(None),
            "event_types" => event_types = Some(Some(strings("event_types", value)?)),
            "ignore_emails" => ignore_emails = Some(strings("ignore_emails", value)?),
            "auto_sync_enabled" => {
                auto_sync = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| ApiError::bad_request("invalid_field", "auto_sync_enabled must be a boolean"))?,
                )
            }
            "sync_interval_minutes" => {
                interval = Some(value.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| {
                    ApiError::bad_request("invalid_field", "sync_interval_minutes must be a whole number")
                })?)
            }
            other => {
                return Err(ApiError::bad_request("unknown_field", format!("unknown field '{other}'")));
            }
        }
    }
    if event_types.is_some() || ignore_emails.is_some() {
        services.update_booking_filter(&caller.organization_id, event_types, ignore_emails).await?;
    }
    Ok(Json(services.update_sync_settings(&caller.organization_id, auto_sync, interval).await?))
}

/// `202` with the queued job, once it is recorded; the job already under way if there is one.
async fn sync_now(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let queued = services.request_sync(&caller.organization_id, crate::domain::SyncTrigger::Manual).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(queued.job.to_json())))
}

async fn list_events(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let result = services
        .store
        .list_bookings(&caller.organization_id, page.limit()?, page.cursor.as_deref())
        .await
        .map_err(crate::service::AppError::from)?;
    Ok(Json(
        json!({ "items": result.items.iter().map(|b| b.to_json()).collect::<Vec<_>>(), "next_cursor": result.next_cursor }),
    ))
}

async fn list_event_types(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(services.event_types(&caller.organization_id).await?))
}

async fn disconnect(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(services.disconnect(&caller.organization_id).await?))
}

async fn list_notifications(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let result = services
        .store
        .list_notifications(&caller.organization_id, page.limit()?, page.cursor.as_deref())
        .await
        .map_err(crate::service::AppError::from)?;
    Ok(Json(
        json!({ "items": result.items.iter().map(|n| n.to_json()).collect::<Vec<_>>(), "next_cursor": result.next_cursor }),
    ))
}

async fn mark_notification_read(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = services
        .store
        .mark_notification_read(&caller.organization_id, &NotificationId::new(id.clone()))
        .await
        .map_err(crate::service::AppError::from)?;
    if !found {
        return Err(crate::service::AppError::NotFound("notification").into());
    }
    Ok(Json(json!({ "id": id, "read": true })))
}

async fn get_organization(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    organization_json(&services, &caller.organization_id).await
}

async fn organization_json(services: &Services, org: &OrganizationId) -> Result<Json<Value>, ApiError> {
    let organization = services.store.get_organization(org).await.map_err(crate::service::AppError::from)?;
    Ok(Json(json!({ "id": organization.id, "settings": organization.settings })))
}

async fn patch_organization(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Map<String, Value> = json_body(&body)?;
    let settings = match body.get("settings") {
        Some(Value::Object(settings)) => settings.clone(),
        _ => {
            return Err(ApiError::bad_request("invalid_body", "expected {\"settings\": {...}}"));
        }
    };
    if let Some(other) = body.keys().find(|k| *k != "settings") {
        return Err(ApiError::bad_request("unknown_field", format!("unknown field '{other}'")));
    }
    if let Some(tz) = settings.get("timezone").filter(|v| !v.is_null()) {
        let valid = tz.as_str().is_some_and(|t| t.parse::<chrono_tz::Tz>().is_ok());
        if !valid {
            return Err(ApiError::bad_request(
                "invalid_timezone",
                "settings.timezone must be an IANA timezone name such as Europe/Paris",
            ));
        }
    }
    let current =
        services.store.get_organization(&caller.organization_id).await.map_err(crate::service::AppError::from)?;
    crate::domain::check_settings_patch(&current.settings, &settings).map_err(|e| {
        let code = match e {
            crate::domain::SettingsError::ReadOnly => "read_only_setting",
            crate::domain::SettingsError::TooLarge => "settings_too_large",
            _ => "invalid_settings",
        };
        ApiError::bad_request(code, e.to_string())
    })?;
    services.store.merge_settings(&caller.organization_id, &settings).await.map_err(crate::service::AppError::from)?;
    organization_json(&services, &caller.organization_id).await
}
