//! The simulator's HTTP surface: Calendly's auth host and API host on one port.
//!
//! One file on purpose: Calendly's whole HTTP surface as one table of routes and checks.

// Helpers return the ready error response itself; its size does not matter in a test double.
#![allow(clippy::result_large_err)]

use crate::Shared;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

mod routing_forms;
mod webhooks;
use routing_forms::{ROUTING_EVENT, get_routing_form, list_form_submissions, list_routing_forms};
use webhooks::{create_webhook, delete_webhook, list_webhooks, refusal};

type Sim = State<Arc<Shared>>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/users/me", get(users_me))
        .route("/event_types", get(event_types))
        .route("/scheduled_events", get(scheduled_events))
        .route("/scheduled_events/{uuid}", get(scheduled_event))
        .route("/scheduled_events/{uuid}/invitees", get(invitees))
        .route("/scheduled_events/{uuid}/invitees/{invitee}", get(invitee))
        .route("/webhook_subscriptions", get(list_webhooks).post(create_webhook))
        .route("/organization_memberships", get(organization_memberships))
        .route("/webhook_subscriptions/{uuid}", axum::routing::delete(delete_webhook))
        .route("/data_compliance/deletion/invitees", post(delete_invitee_data))
        .route("/invitee_no_shows", post(create_no_show))
        .route("/invitee_no_shows/{uuid}", axum::routing::delete(delete_no_show))
        .route("/routing_forms", get(list_routing_forms))
        .route("/routing_forms/{uuid}", get(get_routing_form))
        .route("/routing_form_submissions", get(list_form_submissions))
        .with_state(shared)
}

fn error(status: StatusCode, title: &str, message: &str) -> Response {
    (status, axum::Json(json!({ "title": title, "message": message }))).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, axum::Json(json!({ "error": code, "error_description": description }))).into_response()
}

/// The browser's consent: approves at once as the first user (or `login=<email>`).
async fn authorize(State(sim): Sim, Query(q): Params) -> Response {
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let mut state = sim.state();
    let user = match q.get("login") {
        Some(email) => state.users.iter().find(|u| &u.email == email).cloned(),
        None => state.users.first().cloned(),
    };
    let Some(user) = user else {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "no such user");
    };
    match state.approve(&sim.config, &user.uuid, &q) {
        Ok(code) => {
            let mut url = match url::Url::parse(&redirect_uri) {
                Ok(u) => u,
                Err(_) => {
                    return error(StatusCode::BAD_REQUEST, "Invalid Argument", "invalid redirect_uri");
                }
            };
            url.query_pairs_mut().append_pair("code", &code);
            if let Some(s) = q.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            Redirect::to(url.as_str()).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, "Invalid Argument", &message),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(value).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

async fn token(State(sim): Sim, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut state = sim.state();
    state.count("token");
    if state.unavailable {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", "try again later");
    }
    match basic_credentials(&headers) {
        Some((id, secret)) if id == sim.config.client_id && secret == sim.config.client_secret => {}
        _ => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
        }
    }
    let result = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => state.exchange_code(
            form.get("code").map(String::as_str).unwrap_or_default(),
            form.get("redirect_uri").map(String::as_str),
            form.get("code_verifier").map(String::as_str),
        ),
        Some("refresh_token") => state.refresh(form.get("refresh_token").map(String::as_str).unwrap_or_default()),
        _ => Err(("unsupported_grant_type", "The authorization grant type is not supported")),
    };
    match result {
        Ok(tokens) => axum::Json(tokens).into_response(),
        Err((code, description)) => oauth_error(StatusCode::BAD_REQUEST, code, description),
    }
}

async fn revoke(State(sim): Sim, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut state = sim.state();
    state.count("revoke");
    if form.get("client_id") != Some(&sim.config.client_id)
        || form.get("client_secret") != Some(&sim.config.client_secret)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    state.revoke(form.get("token").map(String::as_str).unwrap_or_default());
    axum::Json(json!({})).into_response()
}

fn permission_denied() -> Response {
    error(StatusCode::FORBIDDEN, "Permission Denied", "You do not have permission to access this resource")
}

/// Authenticates an API request, checks the token grants `scope` (Calendly's per-endpoint
/// check since 2026-03-03), applies latency, availability and the rate limit.
async fn gate(
    sim: &Shared,
    headers: &HeaderMap,
    kind: &str,
    scope: &str,
) -> Result<(String, [(String, String); 3]), Response> {
    let latency = sim.state().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut state = sim.state();
    state.count(kind);
    if state.unavailable {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "Calendly is temporarily unavailable",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some((user, scopes)) = state.authenticate(token).filter(|(u, _)| !state.refused_users.contains(u)) else {
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthenticated", "The access token is invalid"));
    };
    if !crate::model::grants(&scopes, scope) {
        state.count("scope_refused");
        return Err(error(
            StatusCode::FORBIDDEN,
            "Permission Denied",
            &format!("This request requires the {scope} scope"),
        ));
    }
    match state.rate_limit(&user, sim.config.rate_limit, sim.config.rate_window) {
        Ok((limit, remaining, reset)) => Ok((
            user,
            [
                ("x-ratelimit-limit".into(), limit.to_string()),
                ("x-ratelimit-remaining".into(), remaining.to_string()),
                ("x-ratelimit-reset".into(), reset.to_string()),
            ],
        )),
        Err(reset) => {
            state.count("rate_limited");
            let mut response =
                error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", "You have exceeded the rate limit");
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", sim.config.rate_limit.into());
            headers.insert("x-ratelimit-remaining", 0.into());
            headers.insert("x-ratelimit-reset", reset.into());
            Err(response)
        }
    }
}

fn with_headers(mut response: Response, headers: [(String, String); 3]) -> Response {
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (header::HeaderName::try_from(k), header::HeaderValue::try_from(v)) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

fn count_param(q: &HashMap<String, String>) -> Result<usize, Response> {
    match q.get("count") {
        None => Ok(20),
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| (1..=100).contains(c))
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid Argument", "count must be between 1 and 100")),
    }
}

fn page<T: Clone>(items: &[T], q: &HashMap<String, String>, path: &str) -> Result<(Vec<T>, Value), Response> {
    let count = count_param(q)?;
    let offset = match q.get("page_token") {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid Argument", "invalid page_token"))?,
    };
    let slice: Vec<T> = items.iter().skip(offset).take(count).cloned().collect();
    let next =
        (offset + slice.len() < items.len()).then(|| URL_SAFE_NO_PAD.encode(format!("o:{}", offset + slice.len())));
    let pagination = json!({
        "count": slice.len(),
        "next_page": next.as_ref().map(|t| format!("https://api.calendly.com{path}?count={count}&page_token={t}")),
        "previous_page": null,
        "next_page_token": next,
        "previous_page_token": null,
    });
    Ok((slice, pagination))
}

async fn users_me(State(sim): Sim, headers: HeaderMap) -> Response {
    let (user, rl) = match gate(&sim, &headers, "users_me", "users:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let Some(u) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    with_headers(axum::Json(json!({ "resource": state.user_json(&u) })).into_response(), rl)
}

fn parse_time(q: &HashMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, Response> {
    q.get(key)
        .map(|v| {
            v.parse::<DateTime<Utc>>().map_err(|_| {
                error(StatusCode::BAD_REQUEST, "Invalid Argument", &format!("{key} must be a UTC timestamp"))
            })
        })
        .transpose()
}

async fn scheduled_events(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "scheduled_events", "scheduled_events:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let Some(me) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    let organization_wide = match (q.get("user"), q.get("organization")) {
        (Some(u), _) if u == &me.uri => false,
        (None, Some(o)) if o == &me.organization_uri && matches!(state.role(&user), "owner" | "admin") => true,
        (None, None) => {
            return error(StatusCode::BAD_REQUEST, "Invalid Argument", "user or organization is required");
        }
        _ => {
            return error(
                StatusCode::FORBIDDEN,
                "Permission Denied",
                "You do not have permission to access this resource",
            );
        }
    };
    let (min, max) = match (parse_time(&q, "min_start_time"), parse_time(&q, "max_start_time")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let status = q.get("status");
    let descending = match q.get("sort").map(String::as_str) {
        None | Some("start_time:asc") => false,
        Some("start_time:desc") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "sort must be start_time:asc or start_time:desc",
            );
        }
    };
    let hosts: std::collections::HashSet<&str> = match organization_wide {
        true => state.members_of(&me.organization_uri).map(|u| u.uuid.as_str()).collect(),
        false => std::iter::once(user.as_str()).collect(),
    };
    let mut matching: Vec<&crate::model::Event> = state
        .events
        .iter()
        .filter(|e| hosts.contains(e.user_uuid.as_str()))
        .filter(|e| min.is_none_or(|m| e.start >= m) && max.is_none_or(|m| e.start <= m))
        .filter(|e| status.is_none_or(|s| &e.status == s))
        .collect();
    // Stable, like Calendly's: by start time, then by creation.
    matching.sort_by_key(|e| (e.start, e.created_at));
    if descending {
        matching.reverse();
    }
    match page(&matching, &q, "/scheduled_events") {
        Ok((collection, mut pagination)) => {
            let collection: Vec<Value> = collection.into_iter().map(|e| state.event_json(e)).collect();
            if state.repeat_page_token {
                pagination["next_page_token"] = json!(URL_SAFE_NO_PAD.encode("o:0"));
            }
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}

/// Event types: one per name a user was booked under, each user's its own. `user=` (that
/// user only, unless the caller manages the organization) or `organization=` (owners and
/// admins: every member's).
async fn event_types(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "event_types", "event_types:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let Some(me) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    let manager = matches!(state.role(&user), "owner" | "admin");
    let owners: Vec<&crate::SimUser> = match (q.get("user"), q.get("organization")) {
        (Some(u), None) if u == &me.uri => vec![&me],
        (Some(u), None) if manager => state.members_of(&me.organization_uri).filter(|m| &m.uri == u).collect(),
        (None, Some(o)) if o == &me.organization_uri && manager => state.members_of(&me.organization_uri).collect(),
        (None, None) => return error(StatusCode::BAD_REQUEST, "Invalid Argument", "user or organization is required"),
        _ => return permission_denied(),
    };
    let mut list: Vec<Value> = Vec::new();
    for owner in owners {
        let mut names: Vec<&str> =
            state.events.iter().filter(|e| e.user_uuid == owner.uuid).map(|e| e.name.as_str()).collect();
        names.sort();
        names.dedup();
        let handle = owner.email.split('@').next().unwrap_or_default();
        list.extend(names.into_iter().map(|n| {
            let slug = n.to_lowercase().replace(' ', "-");
            json!({
                "uri": crate::model::SimState::event_type_uri(&owner.uuid, n),
                "name": n,
                "active": true,
                "slug": slug,
                "scheduling_url": format!("https://calendly.com/{handle}/{slug}"),
                "kind": "solo",
                "duration": 30,
                "profile": { "type": "User", "name": owner.name, "owner": owner.uri },
            })
        }));
    }
    match page(&list, &q, "/event_types") {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}

async fn scheduled_event(State(sim): Sim, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    let (user, rl) = match gate(&sim, &headers, "scheduled_event", "scheduled_events:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    match state.event(&uuid).filter(|e| state.can_see(&user, e)) {
        Some(e) => with_headers(axum::Json(json!({ "resource": state.event_json(e) })).into_response(), rl),
        None => error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource."),
    }
}

async fn invitee(State(sim): Sim, headers: HeaderMap, Path((uuid, invitee)): Path<(String, String)>) -> Response {
    let (user, rl) = match gate(&sim, &headers, "invitee", "scheduled_events:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let owned = state.event(&uuid).is_some_and(|e| state.can_see(&user, e));
    match state.invitees_of(&uuid).find(|i| i.uuid == invitee).filter(|_| owned) {
        Some(i) => with_headers(axum::Json(json!({ "resource": state.invitee_json(i) })).into_response(), rl),
        None => error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource."),
    }
}

async fn invitees(State(sim): Sim, headers: HeaderMap, Path(uuid): Path<String>, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "invitees", "scheduled_events:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    if !state.event(&uuid).is_some_and(|e| state.can_see(&user, e)) {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource.");
    }
    if let Some(status) = state.failing_events.get(&uuid).and_then(|s| StatusCode::from_u16(*s).ok()) {
        return error(status, "Permission Denied", "You do not have permission to access this resource");
    }
    let list: Vec<Value> = state.invitees_of(&uuid).map(|i| state.invitee_json(i)).collect();
    match page(&list, &q, &format!("/scheduled_events/{uuid}/invitees")) {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}

/// Calendly's invitee data deletion: Enterprise plans only (403 otherwise), `emails` required;
/// 202 with an empty object. The deletion itself takes Calendly up to 7 days.
async fn delete_invitee_data(State(sim): Sim, headers: HeaderMap, body: String) -> Response {
    let (user, rl) = match gate(&sim, &headers, "data_compliance", "data_compliance:write").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let emails: Option<Vec<String>> = serde_json::from_str::<Value>(&body).ok().and_then(|b| {
        b.get("emails")?.as_array()?.iter().map(|e| e.as_str().map(String::from)).collect::<Option<Vec<_>>>()
    });
    let Some(emails) = emails.filter(|e| !e.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "emails is required");
    };
    let mut state = sim.state();
    let Some(organization) = state.user(&user).map(|u| u.organization_uri.clone()) else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    if !state.enterprise_organizations.contains(&organization) {
        return error(StatusCode::FORBIDDEN, "Permission Denied", "This endpoint requires an Enterprise subscription");
    }
    state.invitee_deletions.push((organization, emails));
    with_headers((StatusCode::ACCEPTED, axum::Json(json!({}))).into_response(), rl)
}

/// `POST /invitee_no_shows {"invitee": uri}` (`scheduled_events:write`): 201 with the no-show,
/// then Calendly's own `invitee_no_show.created` delivery (the echo of the caller's change).
async fn create_no_show(State(sim): Sim, headers: HeaderMap, body: String) -> Response {
    let (user, rl) = match gate(&sim, &headers, "invitee_no_shows", "scheduled_events:write").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let invitee = serde_json::from_str::<Value>(&body).ok().and_then(|b| b.get("invitee")?.as_str().map(String::from));
    let Some(invitee) = invitee else {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "invitee is required");
    };
    let marked = sim.state().mark_no_show(&user, &invitee);
    match marked {
        Ok((resource, deliveries)) => {
            crate::CalendlySim::echo(&sim, deliveries);
            with_headers((StatusCode::CREATED, axum::Json(json!({ "resource": resource }))).into_response(), rl)
        }
        Err((status, message)) => refusal(status, &message),
    }
}

/// `DELETE /invitee_no_shows/{uuid}` (`scheduled_events:write`): 204, then the
/// `invitee_no_show.deleted` delivery.
async fn delete_no_show(State(sim): Sim, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    let (user, rl) = match gate(&sim, &headers, "invitee_no_shows", "scheduled_events:write").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let unmarked = sim.state().unmark_no_show(&user, &uuid);
    match unmarked {
        Ok(deliveries) => {
            crate::CalendlySim::echo(&sim, deliveries);
            with_headers(StatusCode::NO_CONTENT.into_response(), rl)
        }
        Err((status, message)) => refusal(status, &message),
    }
}

/// `GET /organization_memberships?organization=&user=`: the caller's organization only.
async fn organization_memberships(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "organization_memberships", "organizations:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let Some(me) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    match (q.get("organization"), q.get("user")) {
        (None, None) => return error(StatusCode::BAD_REQUEST, "Invalid Argument", "organization or user is required"),
        (Some(o), _) if o != &me.organization_uri => {
            return error(
                StatusCode::FORBIDDEN,
                "Permission Denied",
                "You do not have permission to access this resource",
            );
        }
        _ => {}
    }
    let list: Vec<Value> = state
        .users
        .iter()
        .filter(|u| u.organization_uri == me.organization_uri)
        .filter(|u| q.get("user").is_none_or(|wanted| wanted == &u.uri))
        .map(|u| {
            json!({
                "uri": format!("{}/organization_memberships/{}", crate::model::API, u.uuid),
                "role": state.role(&u.uuid),
                "user": state.user_json(u),
                "organization": u.organization_uri,
                "created_at": "2024-01-01T00:00:00.000000Z",
                "updated_at": "2024-01-01T00:00:00.000000Z",
            })
        })
        .collect();
    match page(&list, &q, "/organization_memberships") {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}
