//! Routing forms and their submissions in the simulated Calendly.

use super::*;

pub(super) const ROUTING_EVENT: &str = "routing_form_submission.created";

/// `GET /routing_forms?organization=` (`routing_forms:read`): the organization's forms, to
/// any member of it.
pub(super) async fn list_routing_forms(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "routing_forms", "routing_forms:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let organization = state.user(&user).map(|u| u.organization_uri.clone()).unwrap_or_default();
    match q.get("organization") {
        None => return error(StatusCode::BAD_REQUEST, "Invalid Argument", "organization is required"),
        Some(o) if *o != organization => return permission_denied(),
        Some(_) => {}
    }
    let list: Vec<Value> =
        state.routing_forms.iter().filter(|f| f.organization_uri == organization).map(|f| f.to_json()).collect();
    match page(&list, &q, "/routing_forms") {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}

/// `GET /routing_forms/{uuid}`: a form of the caller's organization, else 404.
pub(super) async fn get_routing_form(State(sim): Sim, headers: HeaderMap, Path(uuid): Path<String>) -> Response {
    let (user, rl) = match gate(&sim, &headers, "routing_form", "routing_forms:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let organization = state.user(&user).map(|u| u.organization_uri.clone()).unwrap_or_default();
    match state.routing_forms.iter().find(|f| f.uuid == uuid && f.organization_uri == organization) {
        Some(form) => with_headers(axum::Json(json!({ "resource": form.to_json() })).into_response(), rl),
        None => error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource."),
    }
}

/// `GET /routing_form_submissions?form=&sort=created_at:asc|desc` (paginated): a form of the
/// caller's organization (403 otherwise).
pub(super) async fn list_form_submissions(State(sim): Sim, headers: HeaderMap, Query(q): Params) -> Response {
    let (user, rl) = match gate(&sim, &headers, "routing_form_submissions", "routing_forms:read").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let state = sim.state();
    let organization = state.user(&user).map(|u| u.organization_uri.clone()).unwrap_or_default();
    let Some(form_uri) = q.get("form") else {
        return error(StatusCode::BAD_REQUEST, "Invalid Argument", "form is required");
    };
    let Some(form) = state.routing_forms.iter().find(|f| &f.uri() == form_uri) else {
        return error(StatusCode::NOT_FOUND, "Resource Not Found", "The server could not find the requested resource.");
    };
    if form.organization_uri != organization {
        return permission_denied();
    }
    let mut submissions: Vec<&crate::model::FormSubmission> =
        state.submissions.iter().filter(|s| s.form_uuid == form.uuid).collect();
    match q.get("sort").map(String::as_str) {
        None | Some("created_at:asc") => submissions.sort_by_key(|s| s.created_at),
        Some("created_at:desc") => submissions.sort_by_key(|s| std::cmp::Reverse(s.created_at)),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid Argument",
                "sort must be created_at:asc or created_at:desc",
            );
        }
    }
    let list: Vec<Value> = submissions.iter().map(|s| s.to_json()).collect();
    match page(&list, &q, "/routing_form_submissions") {
        Ok((collection, pagination)) => {
            with_headers(axum::Json(json!({ "collection": collection, "pagination": pagination })).into_response(), rl)
        }
        Err(r) => r,
    }
}
