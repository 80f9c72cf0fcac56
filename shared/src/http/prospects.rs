//! The prospects API. Bodies are checked field by field: a wrong type or an unknown field is
//! a 400 that names it.

use super::ApiError;
use super::contract::{ErrorBody, ProspectInput, ProspectQuery};
use super::extract::{Authenticated, json_body, page_limit};
use crate::app::ProspectDraft;
use crate::app::Services;
use crate::domain::{Email, ProspectId};
use crate::store::ProspectPatch;
use crate::views::{Page, ProspectView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// Fields the server owns: accepted in a body (clients echo them back) and ignored.
const READ_ONLY: [&str; 3] = ["id", "created_at", "updated_at"];
const MAX_FIELD_LEN: usize = 10_000;

fn optional_string(body: &Map<String, Value>, field: &str) -> Result<Option<Option<String>>, ApiError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.len() <= MAX_FIELD_LEN => {
            let trimmed = s.trim();
            Ok(Some((!trimmed.is_empty()).then(|| trimmed.to_string())))
        }
        Some(Value::String(_)) => Err(ApiError::bad_request("invalid_field", format!("{field} is too long"))),
        Some(_) => Err(ApiError::bad_request("invalid_field", format!("{field} must be a string or null"))),
    }
}

fn parse_email(value: Option<Option<String>>) -> Result<Option<Option<Email>>, ApiError> {
    value
        .map(|v| {
            v.map(|e| Email::parse(&e).map_err(|err| ApiError::bad_request("invalid_email", err.to_string())))
                .transpose()
        })
        .transpose()
}

fn reject_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request("unknown_field", format!("unknown field '{k}'"))),
        None => Ok(()),
    }
}

fn checked_source(source: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(s) = &source {
        crate::domain::check_source(s).map_err(|m| ApiError::bad_request("invalid_source", m))?;
    }
    Ok(source)
}

fn notes_entries(notes: Option<String>) -> Vec<String> {
    notes.into_iter().collect()
}

/// The organization's prospects, one page at a time, optionally of one source.
#[utoipa::path(get, path = "/prospects", tag = "api", operation_id = "list_prospects", summary = "Prospects (paged; `?source=calendly`)",
    security(("bearer" = [])), params(ProspectQuery),
    responses(
        (status = 200, description = "Success", body = Page<ProspectView>),
        (status = 400, body = ErrorBody, description = "`invalid_limit`, `invalid_cursor` or `invalid_source`"),
    ))]
pub(super) async fn list(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ProspectQuery>,
) -> Result<Json<Page<ProspectView>>, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    let result = services
        .list_prospects(&caller.organization_id, query.source.as_deref(), limit, query.cursor.as_deref())
        .await?;
    Ok(Json(Page::of(&result)))
}

/// Creates a prospect by hand (pushed as `prospect:created`).
#[utoipa::path(post, path = "/prospects", tag = "api", operation_id = "create_prospect", summary = "Create a prospect (pushes `prospect:created`)",
    security(("bearer" = [])), request_body = ProspectInput,
    responses(
        (status = 201, description = "Created", body = ProspectView),
        (status = 400, body = ErrorBody,
            description = "`invalid_body` (needs an e-mail or a name), `invalid_field`, `unknown_field`, `invalid_email` or `invalid_source`"),
        (status = 409, body = ErrorBody, description = "`email_taken`"),
    ))]
pub(super) async fn create(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<ProspectView>), ApiError> {
    let body: Map<String, Value> = json_body(&body)?;
    reject_unknown(&body, &["firstname", "lastname", "email", "phone", "status", "source", "notes"])?;
    let draft = ProspectDraft {
        firstname: optional_string(&body, "firstname")?.flatten(),
        lastname: optional_string(&body, "lastname")?.flatten(),
        email: parse_email(optional_string(&body, "email")?)?.flatten(),
        phone: optional_string(&body, "phone")?.flatten(),
        status: optional_string(&body, "status")?.flatten(),
        source: checked_source(optional_string(&body, "source")?.flatten())?,
        notes: optional_string(&body, "notes")?.flatten(),
    };
    let created = services.create_prospect(&caller.organization_id, draft).await?;
    Ok((StatusCode::CREATED, Json((&created).into())))
}

/// One prospect of the organization.
#[utoipa::path(get, path = "/prospects/{id}", tag = "api", operation_id = "get_prospect", summary = "One prospect",
    security(("bearer" = [])), params(("id" = String, Path, description = "The prospect's id")),
    responses((status = 200, description = "Success", body = ProspectView), (status = 404, body = ErrorBody, description = "`not_found`")))]
pub(super) async fn get(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ProspectView>, ApiError> {
    let prospect = services.prospect(&caller.organization_id, &ProspectId::new(id)).await?;
    Ok(Json((&prospect).into()))
}

/// Changes a prospect's fields (pushed as `prospect:updated`).
#[utoipa::path(patch, path = "/prospects/{id}", tag = "api", operation_id = "update_prospect", summary = "Update a prospect (pushes `prospect:updated`)",
    security(("bearer" = [])), params(("id" = String, Path, description = "The prospect's id")),
    request_body = ProspectInput,
    responses(
        (status = 200, description = "Success", body = ProspectView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_field`, `unknown_field` or `invalid_email`"),
        (status = 404, body = ErrorBody, description = "`not_found`"),
        (status = 409, body = ErrorBody, description = "`email_taken`"),
    ))]
pub(super) async fn update(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ProspectView>, ApiError> {
    let body: Map<String, Value> = json_body(&body)?;
    reject_unknown(&body, &["firstname", "lastname", "email", "phone", "status", "notes", "source"])?;
    // `source` says where a prospect came from and does not change; a client may send it back
    // (it is then ignored), but only a value create would take.
    checked_source(optional_string(&body, "source")?.flatten())?;
    let status = match optional_string(&body, "status")? {
        Some(None) => {
            return Err(ApiError::bad_request("invalid_field", "status cannot be empty"));
        }
        other => other.flatten(),
    };
    let patch = ProspectPatch {
        firstname: optional_string(&body, "firstname")?,
        lastname: optional_string(&body, "lastname")?,
        email: parse_email(optional_string(&body, "email")?)?,
        phone: optional_string(&body, "phone")?,
        status,
        notes: optional_string(&body, "notes")?.map(notes_entries),
    };
    let updated = services.update_prospect(&caller.organization_id, &ProspectId::new(id), &patch).await?;
    Ok(Json((&updated).into()))
}

/// Deletes a prospect (pushed as `prospect:deleted`).
#[utoipa::path(delete, path = "/prospects/{id}", tag = "api", operation_id = "delete_prospect", summary = "Delete a prospect (pushes `prospect:deleted`)",
    security(("bearer" = [])), params(("id" = String, Path, description = "The prospect's id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody, description = "`not_found`")))]
pub(super) async fn delete(
    State(services): State<Services>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    services.delete_prospect(&caller.organization_id, &ProspectId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
