//! The HTTP API as axum routers, declared once: each Lambda function serves its own router
//! and the local stack merges them all.

pub mod bodies;
mod callback;
pub mod contract;
pub mod error;
pub mod extract;
mod privacy;
mod prospects;
mod webhook;

pub use contract::{Route, openapi, route_table_markdown, routes};
pub use error::ApiError;

#[cfg(feature = "local")]
use crate::app::Services;
use crate::app::{
    Api, Bookings, Connecting, ErrorCode, IntegrationSettings, Jobs, ManualSync, NoShows, Notifications, OAuthCallback,
    Organizations, Privacy, WebhookIntake,
};
use crate::domain::{NotificationId, SyncTrigger};
use crate::views::{
    ConnectStartView, DisconnectedView, EventTypeView, EventTypesView, HealthView, NotificationReadView,
    NotificationView, OrganizationView, Page, StatusView, SyncJobView,
};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use contract::{ErrorBody, PageQuery};
use extract::{Authenticated, json_body, page_limit, typed_body};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One function's operations, listed once, as two routers: the documented one (an
/// `OpenApiRouter`: the OpenAPI document and the local stack are built from it) and the lean
/// one a Lambda function serves, which routes the same handlers by the same paths and methods
/// without building the document (for `api`: 0.6 ms and a few hundred KB of heap at its first
/// request). Handlers sharing a path go in one group (the document keeps one item per path).
macro_rules! function_routers {
    ($(#[$doc:meta])* $lean:ident, $documented:ident, $state:ty: $([$($handler:ident $(:: $inner:ident)?),+])+) => {
        fn $documented() -> OpenApiRouter<$state> {
            OpenApiRouter::new()$(.routes(routes!($($handler $(:: $inner)?),+)))+
        }

        $(#[$doc])*
        pub fn $lean() -> Router<$state> {
            let router = Router::new();
            $($(let router = lean_route!(router, $handler $(:: $inner)?);)+)+
            router
        }
    };
}

/// `router` with `handler` routed by the path and methods of its `#[utoipa::path]`.
macro_rules! lean_route {
    ($router:expr, $module:ident :: $handler:ident) => {
        utoipa_axum::paste! { route_by::<$module::[<__path_ $handler>], _, _, _>($router, $module::$handler) }
    };
    ($router:expr, $handler:ident) => {
        utoipa_axum::paste! { route_by::<[<__path_ $handler>], _, _, _>($router, $handler) }
    };
}

/// Routes `handler` as its documentation `P` says (only `path()` and `methods()` are read).
fn route_by<P, H, T, S>(router: Router<S>, handler: H) -> Router<S>
where
    P: utoipa::Path,
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    use utoipa_axum::PathItemExt;
    let methods = P::methods().iter().fold(axum::routing::MethodRouter::new(), |methods, method| {
        methods.on(method.to_method_filter(), handler.clone())
    });
    router.route(&P::path(), methods)
}

function_routers!(
    /// The router of the `api` function: everything but the OAuth callback, sync and webhooks.
    api_routes, api_routes_documented, Api:
    [health] [connect] [status] [update_settings] [list_events] [mark_no_show, unmark_no_show] [list_event_types] [disconnect]
    [prospects::list, prospects::create]
    [prospects::get, prospects::update, prospects::delete]
    [list_notifications] [mark_notification_read] [get_organization, patch_organization]
    [privacy::erase, privacy::list_erasures] [privacy::lift_suppression] [privacy::export]
);
function_routers!(
    /// The router of the `oauth-callback` function.
    oauth_routes, oauth_routes_documented, OAuthCallback: [callback::callback_redirect, callback::callback_json]
);
function_routers!(
    /// The router of the `sync-manual` function.
    sync_routes, sync_routes_documented, ManualSync: [sync_now]
);
function_routers!(
    /// The router of the `webhook` function.
    webhook_routes, webhook_routes_documented, WebhookIntake:
    [webhook::receive_unrouted] [webhook::receive_for_integration]
);

/// Every operation's documentation (the OpenAPI document is built from this): each function's
/// router documents its own, under its own state.
fn all_operations_documented() -> utoipa::openapi::OpenApi {
    let mut document = api_routes_documented().into_openapi();
    document.merge(oauth_routes_documented().into_openapi());
    document.merge(sync_routes_documented().into_openapi());
    document.merge(webhook_routes_documented().into_openapi());
    document
}

#[cfg(feature = "local")]
/// Every function's routes, each over its own capability, as one service (the local stack),
/// served as `serve` serves one function's.
pub fn all_routes(services: &Services) -> Router {
    let routes = Router::new()
        .merge(Router::from(api_routes_documented()).with_state(services.api().clone()))
        .merge(Router::from(oauth_routes_documented()).with_state(services.oauth_callback().clone()))
        .merge(Router::from(sync_routes_documented()).with_state(services.manual_sync().clone()))
        .merge(Router::from(webhook_routes_documented()).with_state(services.webhooks().clone()));
    serve(routes, ())
}

#[cfg(feature = "local")]
/// An HTTP function's lean router, by its binary name, served over its capability out of
/// `services` (what each Lambda function serves, in one process: tests).
pub fn function_router(function: &str, services: &Services) -> Option<Router> {
    Some(match function {
        "api" => serve(api_routes(), services.api().clone()),
        "oauth-callback" => serve(oauth_routes(), services.oauth_callback().clone()),
        "sync-manual" => serve(sync_routes(), services.manual_sync().clone()),
        "webhook" => serve(webhook_routes(), services.webhooks().clone()),
        _ => return None,
    })
}

/// Serves `routes` with request tracing, JSON 404s, and every error in the JSON format.
pub fn serve<S: Clone + Send + Sync + 'static>(routes: Router<S>, state: S) -> Router {
    routes
        .fallback(|| async { ApiError::App(crate::app::AppError::NotFound("route")) })
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(trace_request))
        .with_state(state)
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
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        axum::http::StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
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
    use tracing::Instrument;
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let correlation_id = correlation_id(&request);
    let span = tracing::info_span!("request", correlation_id = %correlation_id);
    let started = std::time::Instant::now();
    let work = next.run(request).instrument(span.clone());
    let mut response = crate::telemetry::correlation::within(correlation_id.clone(), work).await;
    span.in_scope(|| {
        tracing::info!(%method, %path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    });
    if let Ok(value) = axum::http::HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

/// The answer header naming the request's correlation id (what its log lines carry).
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// One id per request, on every log line it writes: the HTTP API's own `requestId` (the key of
/// its access log) when API Gateway invoked us, else the caller's `x-request-id` when it is a
/// plausible id, else a new one.
fn correlation_id(request: &axum::extract::Request) -> String {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let from_gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    let plausible =
        |id: &&str| (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.".contains(c));
    from_gateway
        .or_else(|| {
            let header = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
            header.filter(plausible).map(String::from)
        })
        .unwrap_or_else(crate::domain::ids::random_id)
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "api", summary = "Liveness", responses((status = 200, description = "Success", body = HealthView)))]
async fn health() -> Json<HealthView> {
    Json(HealthView { status: "ok".into() })
}

/// Starts a connect: the browser goes to `authorize_url` (Calendly's consent page, with a
/// single-use state and a PKCE challenge bound to the caller). An optional body
/// `{"scope": "organization"}` asks for every member's bookings (granted at completion to
/// owners and admins of the Calendly organization).
#[utoipa::path(post, path = "/calendly/connect", tag = "api", summary = "Start connecting Calendly (OAuth URL with state + PKCE)",
    security(("bearer" = [])), request_body(content = Option<contract::ConnectInput>),
    responses(
        (status = 200, description = "Success", body = ConnectStartView),
        (status = 400, body = ErrorBody, description = "`invalid_body` or `unknown_field`"),
        (status = 429, body = ErrorBody, description = "`too_many_connect_starts`: 10 per user per 10 minutes",
            headers(("retry-after" = u64, description = "Seconds until a connect can start"))),
    ))]
async fn connect(
    State(connecting): State<Connecting>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<ConnectStartView>, ApiError> {
    let scope = match body.iter().all(u8::is_ascii_whitespace) {
        true => crate::domain::CalendlyScope::User,
        false => json_body::<contract::ConnectInput>(&body)?.scope.unwrap_or_default(),
    };
    Ok(Json((&connecting.start_connect(&caller, scope).await?).into()))
}

/// The connection as the settings page shows it, with the latest sync job.
#[utoipa::path(get, path = "/calendly/status", tag = "api", summary = "Connection state and the latest sync job",
    security(("bearer" = [])), responses((status = 200, description = "Success", body = StatusView)))]
async fn status(
    State(settings): State<IntegrationSettings>,
    Authenticated(caller): Authenticated,
) -> Result<Json<StatusView>, ApiError> {
    Ok(Json((&settings.status(&caller.organization_id).await?).into()))
}

/// Changes auto-sync and the booking filter; answers the new status.
#[utoipa::path(patch, path = "/calendly/settings", tag = "api",
    summary = "Auto-sync, interval, scope and booking filter (event types, ignored e-mails)",
    security(("bearer" = [])), request_body = bodies::SettingsInput,
    responses(
        (status = 200, description = "Success", body = StatusView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_field`, `unknown_field` or `invalid_interval`"),
        (status = 403, body = ErrorBody, description = "`calendly_scope_forbidden`: organization scope is for owners and admins"),
        (status = 409, body = ErrorBody, description = "`calendly_not_connected`, `calendly_organization_in_use` or `scope_change_in_progress`"),
        (status = 429, body = ErrorBody, description = "`too_many_scope_changes`: 10 scope changes per organization per minute",
            headers(("retry-after" = u64, description = "Seconds until the scope may be changed again"))),
    ))]
async fn update_settings(
    State(settings): State<IntegrationSettings>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<StatusView>, ApiError> {
    let change = typed_body::<bodies::SettingsInput>(&body)?.try_into()?;
    Ok(Json((&settings.update_settings(&caller.organization_id, change).await?).into()))
}

/// Queues a sync now: `202` with the job once it is recorded, or the job already under way.
/// Progress comes as `calendly:sync` pushes and in `GET /calendly/status`.
#[utoipa::path(post, path = "/calendly/sync", tag = "sync-manual", summary = "Queue a sync now (202 with the job)",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued (or the job already under way)", body = SyncJobView),
        (status = 409, body = ErrorBody, description = "`calendly_not_connected` or `calendly_needs_reconnect`"),
        (status = 429, body = ErrorBody, description = "`sync_cooldown`: one manual sync per organization per `MANUAL_SYNC_COOLDOWN_SECONDS` (60)",
            headers(("retry-after" = u64, description = "Seconds until the next manual sync may start"))),
        (status = 503, body = ErrorBody, description = "`queue_unavailable` or `store_busy`"),
    ))]
async fn sync_now(
    State(jobs): State<Jobs>,
    Authenticated(caller): Authenticated,
) -> Result<(StatusCode, Json<SyncJobView>), ApiError> {
    let queued = jobs.request_sync(&caller.organization_id, SyncTrigger::Manual).await?;
    Ok((StatusCode::ACCEPTED, Json((&queued.job).into())))
}

/// The organization's Calendly bookings, one page at a time.
#[utoipa::path(get, path = "/calendly/events", tag = "api", summary = "Synced Calendly bookings (paged)",
    security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "Success", body = Page<crate::views::BookingView>),
        (status = 400, body = ErrorBody, description = "`invalid_limit` or `invalid_cursor`"),
    ))]
async fn list_events(
    State(bookings): State<Bookings>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<crate::views::BookingView>>, ApiError> {
    let limit = page_limit(page.limit.as_deref())?;
    let result = bookings.list(&caller.organization_id, limit, page.cursor.as_deref()).await?;
    Ok(Json(Page::of(&result)))
}

/// Marks the booking's invitee as a no-show, at Calendly and here (one `Absence` note).
#[utoipa::path(post, path = "/calendly/events/{id}/no-show", tag = "api", operation_id = "mark_no_show",
    summary = "Mark a no-show (at Calendly too; one `Absence` note)",
    security(("bearer" = [])), params(("id" = String, Path, description = "The booking's id (the invitee's UUID)")),
    responses(
        (status = 200, description = "The booking as recorded (already marked: unchanged)", body = crate::views::BookingView),
        (status = 403, body = ErrorBody, description = "`calendly_scope_missing` (`scheduled_events:write`) or `calendly_forbidden`"),
        (status = 404, body = ErrorBody, description = "`not_found`"),
        (status = 409, body = ErrorBody, description = "`event_not_started`, `booking_canceled`, `calendly_not_connected` or `calendly_needs_reconnect`"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable`"),
    ))]
async fn mark_no_show(
    State(no_shows): State<NoShows>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<crate::views::BookingView>, ApiError> {
    let booking = no_shows.set(&caller.organization_id, &id, true).await?;
    Ok(Json((&booking).into()))
}

/// Takes the no-show back, at Calendly and here (the `Absence` note stays: it happened).
#[utoipa::path(delete, path = "/calendly/events/{id}/no-show", tag = "api", operation_id = "unmark_no_show",
    summary = "Take a no-show back (at Calendly too)",
    security(("bearer" = [])), params(("id" = String, Path, description = "The booking's id (the invitee's UUID)")),
    responses(
        (status = 200, description = "The booking as recorded (not marked: unchanged)", body = crate::views::BookingView),
        (status = 403, body = ErrorBody, description = "`calendly_scope_missing` (`scheduled_events:write`) or `calendly_forbidden`"),
        (status = 404, body = ErrorBody, description = "`not_found`"),
        (status = 409, body = ErrorBody, description = "`calendly_not_connected` or `calendly_needs_reconnect`"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable`"),
    ))]
async fn unmark_no_show(
    State(no_shows): State<NoShows>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<crate::views::BookingView>, ApiError> {
    let booking = no_shows.set(&caller.organization_id, &id, false).await?;
    Ok(Json((&booking).into()))
}

/// The connected user's event types, each with whether the filter takes its bookings.
#[utoipa::path(get, path = "/calendly/event-types", tag = "api", summary = "The connected user's event types (for the filter)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Success", body = EventTypesView),
        (status = 409, body = ErrorBody, description = "`calendly_not_connected` or `calendly_needs_reconnect`"),
        (status = 429, body = ErrorBody, description = "`event_types_rate_limited`: read from Calendly 6 times in 5 minutes (cached 5 minutes otherwise)",
            headers(("retry-after" = u64, description = "Seconds until Calendly may be asked again"))),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable`"),
    ))]
async fn list_event_types(
    State(settings): State<IntegrationSettings>,
    Authenticated(caller): Authenticated,
) -> Result<Json<EventTypesView>, ApiError> {
    let choices = settings.event_types(&caller.organization_id).await?;
    Ok(Json(EventTypesView { items: choices.iter().map(EventTypeView::from).collect() }))
}

/// Disconnects: revokes at Calendly, deletes the subscription, soft-deletes the integration.
/// Idempotent; prospects stay. With `{"purge": true}` every booking, event fingerprint and
/// notification of the organization is deleted too, for up to 5 s a call: `purge.complete:
/// false` means call again to go on.
#[utoipa::path(post, path = "/calendly/disconnect", tag = "api", summary = "Disconnect (revoke, soft-delete; idempotent; optional purge)",
    security(("bearer" = [])), request_body(content = Option<contract::DisconnectInput>),
    responses(
        (status = 200, description = "Success", body = DisconnectedView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_field` or `unknown_field`"),
    ))]
async fn disconnect(
    State(connecting): State<Connecting>,
    State(privacy): State<Privacy>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<DisconnectedView>, ApiError> {
    let purge = match body.iter().all(u8::is_ascii_whitespace) {
        true => false,
        false => typed_body::<contract::DisconnectInput>(&body)?.purge,
    };
    connecting.disconnect(&caller.organization_id).await?;
    let purged = match purge {
        true => Some((&privacy.purge(&caller.organization_id, PURGE_BUDGET).await?).into()),
        false => None,
    };
    Ok(Json(DisconnectedView { connected: false, purge: purged }))
}

/// How long one disconnect call purges (within the function's 10 s, with the disconnect itself).
const PURGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The organization's notifications, newest first.
#[utoipa::path(get, path = "/notifications", tag = "api", summary = "Notifications, newest first (paged)",
    security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "Success", body = Page<NotificationView>),
        (status = 400, body = ErrorBody, description = "`invalid_limit` or `invalid_cursor`"),
    ))]
async fn list_notifications(
    State(notifications): State<Notifications>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<NotificationView>>, ApiError> {
    let limit = page_limit(page.limit.as_deref())?;
    let result = notifications.list(&caller.organization_id, limit, page.cursor.as_deref()).await?;
    Ok(Json(Page::of(&result)))
}

/// Marks one notification read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "api", summary = "Mark a notification read",
    security(("bearer" = [])), params(("id" = String, Path, description = "The notification's id")),
    responses(
        (status = 200, description = "Success", body = NotificationReadView),
        (status = 404, body = ErrorBody, description = "`not_found`"),
    ))]
async fn mark_notification_read(
    State(notifications): State<Notifications>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<NotificationReadView>, ApiError> {
    notifications.mark_read(&caller.organization_id, &NotificationId::new(id.clone())).await?;
    Ok(Json(NotificationReadView { id, read: true }))
}

/// The caller's organization and its settings.
#[utoipa::path(get, path = "/organization", tag = "api", summary = "The organization and its settings",
    security(("bearer" = [])), responses((status = 200, description = "Success", body = OrganizationView)))]
async fn get_organization(
    State(organizations): State<Organizations>,
    Authenticated(caller): Authenticated,
) -> Result<Json<OrganizationView>, ApiError> {
    Ok(Json((&organizations.get(&caller.organization_id).await?).into()))
}

/// Merges settings into the organization's, key by key, keeping the others.
#[utoipa::path(patch, path = "/organization", tag = "api", summary = "Merge settings (others kept; `calendly` read-only)",
    security(("bearer" = [])), request_body = bodies::OrganizationInput,
    responses(
        (status = 200, description = "Success", body = OrganizationView),
        (status = 400, body = ErrorBody,
            description = "`invalid_body`, `unknown_field`, `invalid_timezone`, `read_only_setting`, `settings_too_large` or `invalid_settings`"),
    ))]
async fn patch_organization(
    State(organizations): State<Organizations>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<OrganizationView>, ApiError> {
    let settings = typed_body::<bodies::OrganizationInput>(&body)?.settings;
    let organization = organizations.merge_settings(&caller.organization_id, &settings).await?;
    Ok(Json((&organization).into()))
}
