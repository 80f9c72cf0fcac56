//! The local console: one self-contained page (`console.html`, no build step, nothing fetched
//! from elsewhere) signed in as the demo organization, using only the public HTTP API and the
//! WebSocket like Velvena's frontend would; plus, with the simulator, local-only routes that
//! book, cancel and reschedule in the simulated Calendly (which then delivers signed webhooks).
//! Never deployed: the Lambda functions don't serve it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use calendly_sim::{Booked, BookingSpec, CalendlySim, SimUser};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use shared::app::Services;
use shared::domain::OrganizationId;

const PAGE: &str = include_str!("console.html");
/// Who the console is signed in as (the demo token `cargo run -p local-stack` prints).
pub const DEMO_USER: &str = "demo-user";
/// The organization of the demo token.
pub const DEMO_ORGANIZATION: &str = "demo-org";

#[derive(Clone)]
struct Console {
    services: Services,
    simulator: Option<CalendlySim>,
}

/// `GET /` (and `/settings/integrations`, where Calendly's callback sends the browser back),
/// and the simulator's local routes.
pub fn routes(services: Services, simulator: Option<CalendlySim>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/settings/integrations", get(page))
        .route("/_local/simulator", get(simulator_available))
        .route("/_local/simulator/booking", post(book))
        .route("/_local/simulator/cancel", post(cancel))
        .route("/_local/simulator/reschedule", post(reschedule))
        .layer(axum::middleware::from_fn(loopback_host_only))
        .with_state(Console { services, simulator })
}

/// The console hands out a signed-in token, so it answers only when the browser asked for this
/// machine by a loopback name: a page of another site whose name is made to resolve to
/// 127.0.0.1 (DNS rebinding) sends its own name as `Host` and gets a 421.
async fn loopback_host_only(request: Request, next: Next) -> Response {
    let host = request.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if loopback_host(host).is_none() {
        return failure(
            StatusCode::MISDIRECTED_REQUEST,
            "not_local",
            "the local console answers on 127.0.0.1 and localhost only",
        );
    }
    next.run(request).await
}

/// `host` (a `Host` header: name and optional port) when its name is a loopback one.
fn loopback_host(host: &str) -> Option<&str> {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(name, _)| name)?,
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "::1").then_some(host)
}

async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let token = console.services.jwt().issue(DEMO_USER, DEMO_ORGANIZATION, Utc::now() + Duration::days(1));
    // The page's one script and one style sheet run by a nonce of this answer, nothing else does
    // (no inline handler, no other origin); the WebSocket goes to this very host.
    let nonce = shared::crypto::random_token(18);
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).and_then(loopback_host);
    let html = PAGE
        .replacen(
            "<meta charset=\"utf-8\">",
            &format!("<meta charset=\"utf-8\">\n<meta name=\"velvena-token\" content=\"{token}\">"),
            1,
        )
        .replacen("<style>", &format!("<style nonce=\"{nonce}\">"), 1)
        .replacen("<script>", &format!("<script nonce=\"{nonce}\">"), 1);
    let sockets = host.map(|h| format!(" ws://{h}")).unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'{sockets}; \
         img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("static header"));
    headers.insert(axum::http::header::CONTENT_SECURITY_POLICY, policy.parse().expect("a nonce is URL-safe base64"));
    headers.insert(axum::http::header::X_FRAME_OPTIONS, "DENY".parse().expect("static header"));
    response
}

async fn simulator_available(State(console): State<Console>) -> StatusCode {
    if console.simulator.is_some() { StatusCode::OK } else { StatusCode::NOT_FOUND }
}

fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
}

/// The simulator and the Calendly user the caller's organization is connected to.
async fn connected_host(
    console: &Console,
    headers: &HeaderMap,
) -> Result<(CalendlySim, SimUser, OrganizationId), Response> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = console
        .services
        .authenticate(header)
        .map_err(|e| failure(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
    let sim =
        console.simulator.clone().ok_or_else(|| failure(StatusCode::NOT_FOUND, "no_simulator", "real Calendly"))?;
    let integration = console
        .services
        .store()
        .get_integration(&caller.organization_id)
        .await
        .ok()
        .flatten()
        .filter(|i| i.is_active)
        .ok_or_else(|| failure(StatusCode::CONFLICT, "calendly_not_connected", "connect Calendly first"))?;
    let host = sim
        .user_by_uri(&integration.calendly_user_uri)
        .ok_or_else(|| failure(StatusCode::CONFLICT, "unknown_host", "not a simulated Calendly user"))?;
    Ok((sim, host, caller.organization_id))
}

#[derive(Deserialize)]
struct NewBooking {
    name: String,
    email: String,
    start: DateTime<Utc>,
    event_name: String,
}

async fn book(State(console): State<Console>, headers: HeaderMap, Json(body): Json<NewBooking>) -> Response {
    let (sim, host, _) = match connected_host(&console, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let booked = sim.book(&host, BookingSpec::new(&body.name, &body.email, &body.event_name, body.start)).await;
    (StatusCode::CREATED, Json(json!({ "invitee_uri": booked.invitee_uri() }))).into_response()
}

#[derive(Deserialize)]
struct BookingRef {
    invitee_uri: String,
}

/// `…/scheduled_events/{event}/invitees/{invitee}` as the simulator's handle.
fn booked(uri: &str) -> Option<Booked> {
    let mut parts = uri.rsplit('/');
    let invitee_uuid = parts.next()?.to_string();
    let event_uuid = parts.nth(1)?.to_string();
    Some(Booked { event_uuid, invitee_uuid })
}

async fn cancel(State(console): State<Console>, headers: HeaderMap, Json(body): Json<BookingRef>) -> Response {
    let (sim, _, _) = match connected_host(&console, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(booked) = booked(&body.invitee_uri) else {
        return failure(StatusCode::BAD_REQUEST, "invalid_invitee_uri", "not an invitee URI");
    };
    sim.cancel(&booked, "Annulé depuis la console").await;
    StatusCode::NO_CONTENT.into_response()
}

async fn reschedule(State(console): State<Console>, headers: HeaderMap, Json(body): Json<BookingRef>) -> Response {
    let (sim, _, org) = match connected_host(&console, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(booked) = booked(&body.invitee_uri) else {
        return failure(StatusCode::BAD_REQUEST, "invalid_invitee_uri", "not an invitee URI");
    };
    let stored = console.services.store().get_booking(&org, &booked.invitee_uuid).await.ok().flatten();
    let Some(stored) = stored else {
        return failure(StatusCode::NOT_FOUND, "not_found", "booking not found");
    };
    let moved = sim.reschedule(&booked, stored.details.start_time + Duration::days(1)).await;
    (StatusCode::CREATED, Json(json!({ "invitee_uri": moved.invitee_uri() }))).into_response()
}
