//! The privacy API: erase a person, export what the organization holds about them, lift a
//! suppression, and the audit of erasures. E-mails travel in bodies (and in the export's query,
//! which the access log leaves out), never in a log line.

use super::ApiError;
use super::contract::{ErrorBody, PageQuery};
use super::extract::{Authenticated, page_limit, typed_body};
use crate::app::{ErrorCode, Privacy};
use crate::domain::PersonAddress;
use crate::views::{ErasureView, Page, PersonalDataView, SuppressionLiftedView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Whom to erase.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureInput {
    /// The person's e-mail (normalized as prospects' are: case, Unicode, domain).
    #[schema(max_length = 320)]
    pub email: String,
    /// Also ask Calendly to delete the invitee's data (Enterprise plans, `data_compliance:write`).
    #[serde(default)]
    pub calendly: bool,
}

/// Whose suppression to lift.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionInput {
    /// The person's e-mail.
    #[schema(max_length = 320)]
    pub email: String,
}

/// Whose data to export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The person's e-mail.
    pub email: Option<String>,
}

/// Any address a booking may have been stored under (`PersonAddress`): an erasure or an export
/// finds the person by the same string, valid e-mail or not.
fn person_of(raw: &str) -> Result<PersonAddress, ApiError> {
    PersonAddress::parse(raw).map_err(|e| ApiError::bad_request(ErrorCode::InvalidEmail, e.to_string()))
}

/// Erases a person from the organization: their prospect (with its e-mail claim), every booking
/// they made and every notification about them; pushes `prospect:deleted`. From then on no sync
/// or delivery records anything about them (the suppression list holds only a keyed hash of the
/// e-mail). Idempotent: a second call answers zeros.
#[utoipa::path(post, path = "/privacy/erasures", tag = "api", summary = "Erase a person (suppressed from then on)",
    security(("bearer" = [])), request_body = ErasureInput,
    responses(
        (status = 200, description = "Erased (counts of what was removed)", body = ErasureView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_field`, `unknown_field` or `invalid_email`"),
        (status = 503, body = ErrorBody, description = "`store_busy`"),
    ))]
pub(super) async fn erase(
    State(privacy): State<Privacy>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<ErasureView>, ApiError> {
    let input = typed_body::<ErasureInput>(&body)?;
    let person = person_of(&input.email)?;
    Ok(Json((&privacy.erase(&caller, &person, input.calendly).await?).into()))
}

/// The erasures made in the organization, newest first: when, by whom, the keyed hash and the
/// counts; no personal data.
#[utoipa::path(get, path = "/privacy/erasures", tag = "api", summary = "Audit of erasures, newest first (paged)",
    security(("bearer" = [])), params(PageQuery),
    responses(
        (status = 200, description = "Success", body = Page<ErasureView>),
        (status = 400, body = ErrorBody, description = "`invalid_limit` or `invalid_cursor`"),
    ))]
pub(super) async fn list_erasures(
    State(privacy): State<Privacy>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ErasureView>>, ApiError> {
    let limit = page_limit(page.limit.as_deref())?;
    let result = privacy.erasures(&caller.organization_id, limit, page.cursor.as_deref()).await?;
    Ok(Json(Page::of(&result)))
}

/// Lifts a person's suppression (they came back and consented): their next booking is
/// recorded again. Idempotent.
#[utoipa::path(delete, path = "/privacy/suppressions", tag = "api", summary = "Lift a person's suppression",
    security(("bearer" = [])), request_body = SuppressionInput,
    responses(
        (status = 200, description = "Success", body = SuppressionLiftedView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_field`, `unknown_field` or `invalid_email`"),
    ))]
pub(super) async fn lift_suppression(
    State(privacy): State<Privacy>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<SuppressionLiftedView>, ApiError> {
    let person = person_of(&typed_body::<SuppressionInput>(&body)?.email)?;
    Ok(Json(SuppressionLiftedView { lifted: privacy.lift_suppression(&caller.organization_id, &person).await? }))
}

/// Everything the organization holds about a person, as one JSON document (access and
/// portability requests): their prospect with its notes, their bookings with answers and
/// tracking, the notifications about them. Nothing stored gives empty lists.
#[utoipa::path(get, path = "/privacy/export", tag = "api", summary = "Export what is held about a person",
    security(("bearer" = [])), params(ExportQuery),
    responses(
        (status = 200, description = "Success", body = PersonalDataView),
        (status = 400, body = ErrorBody, description = "`invalid_email`"),
    ))]
pub(super) async fn export(
    State(privacy): State<Privacy>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ExportQuery>,
) -> Result<Json<PersonalDataView>, ApiError> {
    let person = person_of(query.email.as_deref().unwrap_or_default())?;
    let data = privacy.export(&caller.organization_id, &person).await?;
    Ok(Json(PersonalDataView::new(&person, &data)))
}
