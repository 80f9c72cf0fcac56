//! Webhook subscriptions of the simulated Calendly: listed, created under Calendly's rules,
//! deleted.

use super::*;

pub(super) async fn list_webhooks(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "webhook_subscriptions", "webhooks:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !q.contains_key("organization") || !q.contains_key("scope") {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "organization and scope are required");
    }
    let state = sim.state();
    let Some(me) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    if q.get("organization") != Some(&me.organization_uri) {
        return permission_denied();
    }
    let manager = matches!(state.role(&user), "owner" | "admin");
    // `scope` filters: organization-scoped subscriptions (owners and admins only), or one
    // user's (a member lists their own; managers anyone's of the organization).
    let list: Vec<Value> = match (q.get("scope").map(String::as_str), q.get("user")) {
        (Some("organization"), _) if manager => state
            .webhooks
            .iter()
            .filter(|w| w.scope == "organization" && w.organization_uri == me.organization_uri)
            .map(|w| w.to_json())
            .collect(),
        (Some("user"), Some(u)) if u == &me.uri || manager => state
            .webhooks
            .iter()
            .filter(|w| w.scope == "user" && &format!("{}/users/{}", crate::model::API, w.user_uuid) == u)
            .filter(|w| w.organization_uri == me.organization_uri)
            .map(|w| w.to_json())
            .collect(),
        (Some("user"), None) => return error(StatusCode::BAD_REQUEST, "Invalid Argument", "user is required"),
        (Some("organization" | "user"), _) => return permission_denied(),
        _ => return error(StatusCode::BAD_REQUEST, "Invalid Argument", "scope must be user or organization"),
    };
    match page(&list, &q, "/webhook_subscriptions") {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}

pub(super) fn refusal(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let title = match status {
        StatusCode::NOT_FOUND => "Resource Not Found",
        _ => "Invalid Argument",
    };
    error(status, title, message)
}

pub(super) async fn create_webhook(State(sim): Sim, headers: HeaderMap, body: String) -> Response {
    let (user, rl) = match gate(&sim, &headers, "webhook_subscriptions", "webhooks:write").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "body must be JSON");
    };
    let url = body.get("url").and_then(Value::as_str).unwrap_or_default().to_string();
    let events: Vec<String> = body
        .get("events")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let scope = body.get("scope").and_then(Value::as_str).unwrap_or_default();
    let organization = body.get("organization").and_then(Value::as_str).unwrap_or_default().to_string();
    let known =
        ["invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted", ROUTING_EVENT];
    if url::Url::parse(&url).is_err()
        || events.is_empty()
        || events.iter().any(|e| !known.contains(&e.as_str()))
        || organization.is_empty()
    {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "url, events and organization are required");
    }
    let mut state = sim.state();
    let Some(me) = state.user(&user).cloned() else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "user");
    };
    match scope {
        "user"
            if body.get("user").and_then(Value::as_str) == Some(me.uri.as_str())
                && organization == me.organization_uri => {}
        "organization" if organization == me.organization_uri => {
            if !matches!(state.role(&user), "owner" | "admin") {
                return error(
                    StatusCode::FORBIDDEN,
                    "Permission Denied",
                    "Only organization owners and admins can create organization-scoped subscriptions",
                );
            }
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "scope user requires this user and organization; scope organization this organization",
            );
        }
    }
    if let Some(message) = state.webhook_refusals.get(&user) {
        return error(StatusCode::FORBIDDEN, "Permission Denied", message);
    }
    // Routing form events: organization subscriptions only, and the token must read routing
    // forms (a family's payloads need its read scope).
    if events.iter().any(|e| e == ROUTING_EVENT) {
        if scope != "organization" {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "routing_form_submission.created requires an organization scope",
            );
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let scopes = state.authenticate(token).map(|(_, s)| s).unwrap_or_default();
        if !crate::model::grants(&scopes, "routing_forms:read") {
            return error(
                StatusCode::FORBIDDEN,
                "Permission Denied",
                "This request requires the routing_forms:read scope",
            );
        }
    }
    // Within one organization, one user's subscriptions can't share a URL.
    if state.webhooks.iter().any(|w| w.callback_url == url && w.organization_uri == organization && w.user_uuid == user)
    {
        return error(StatusCode::CONFLICT, "Already Exists", "Hook with this url already exists");
    }
    let now = state.now();
    let hook = crate::model::Webhook {
        uuid: crate::uuid(),
        callback_url: url,
        user_uuid: user,
        scope: scope.to_string(),
        organization_uri: organization,
        events,
        state: "active".into(),
        retry_started_at: None,
        created_at: now,
    };
    let json = hook.to_json();
    state.webhooks.push(hook);
    with_headers((StatusCode::CREATED, axum::Json(json!({ "resource": json }))).into_response(), rl)
}

pub(super) async fn delete_webhook(State(sim): Sim, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    let (user, rl) = match gate(&sim, &headers, "webhook_subscriptions", "webhooks:write").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut state = sim.state();
    // Its creator, or an owner or admin of its organization; nobody else.
    let organization = state.user(&user).map(|u| u.organization_uri.clone()).unwrap_or_default();
    let manager = matches!(state.role(&user), "owner" | "admin");
    let Some(at) = state.webhooks.iter().position(|w| w.uuid == uuid && w.organization_uri == organization) else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource.");
    };
    if state.webhooks[at].user_uuid != user && !manager {
        return permission_denied();
    }
    state.webhooks.remove(at);
    with_headers(StatusCode::NO_CONTENT.into_response(), rl)
}
