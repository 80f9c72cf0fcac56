//! The prospects API. Bodies are `ProspectInput`s: a wrong type or an unknown field is a 400
//! that names it.

use super::ApiError;
use super::bodies::ProspectInput;
use super::contract::{ErrorBody, ProspectQuery};
use super::extract::{Authenticated, page_limit, typed_body};
use crate::app::ProspectDraft;
use crate::app::Prospects;
use crate::domain::ProspectId;
use crate::store::ProspectPatch;
use crate::views::{Page, ProspectView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

/// The organization's prospects, one page at a time, optionally of one source.
#[utoipa::path(get, path = "/prospects", tag = "api", operation_id = "list_prospects", summary = "Prospects (paged; `?source=calendly`)",
    security(("bearer" = [])), params(ProspectQuery),
    responses(
        (status = 200, description = "Success", body = Page<ProspectView>),
        (status = 400, body = ErrorBody, description = "`invalid_limit`, `invalid_cursor` or `invalid_source`"),
    ))]
pub(super) async fn list(
    State(prospects): State<Prospects>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ProspectQuery>,
) -> Result<Json<Page<ProspectView>>, ApiError> {
    let limit = page_limit(query.limit.as_deref())?;
    let result =
        prospects.list(&caller.organization_id, query.source.as_deref(), limit, query.cursor.as_deref()).await?;
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
    State(prospects): State<Prospects>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<ProspectView>), ApiError> {
    let draft: ProspectDraft = typed_body::<ProspectInput>(&body)?.try_into()?;
    let created = prospects.create(&caller.organization_id, draft).await?;
    Ok((StatusCode::CREATED, Json((&created).into())))
}

/// One prospect of the organization.
#[utoipa::path(get, path = "/prospects/{id}", tag = "api", operation_id = "get_prospect", summary = "One prospect",
    security(("bearer" = [])), params(("id" = String, Path, description = "The prospect's id")),
    responses((status = 200, description = "Success", body = ProspectView), (status = 404, body = ErrorBody, description = "`not_found`")))]
pub(super) async fn get(
    State(prospects): State<Prospects>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ProspectView>, ApiError> {
    let prospect = prospects.get(&caller.organization_id, &ProspectId::new(id)).await?;
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
    State(prospects): State<Prospects>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ProspectView>, ApiError> {
    let patch: ProspectPatch = typed_body::<ProspectInput>(&body)?.try_into()?;
    let updated = prospects.update(&caller.organization_id, &ProspectId::new(id), &patch).await?;
    Ok(Json((&updated).into()))
}

/// Deletes a prospect (pushed as `prospect:deleted`).
#[utoipa::path(delete, path = "/prospects/{id}", tag = "api", operation_id = "delete_prospect", summary = "Delete a prospect (pushes `prospect:deleted`)",
    security(("bearer" = [])), params(("id" = String, Path, description = "The prospect's id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody, description = "`not_found`")))]
pub(super) async fn delete(
    State(prospects): State<Prospects>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    prospects.delete(&caller.organization_id, &ProspectId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
