//! The HTTP and WebSocket contract as an OpenAPI 3.1 document, generated from the handlers'
//! annotations and the types they serialize (`crate::views`). `GET /openapi.json` serves it,
//! `docs/openapi.json` is its committed copy, the route table of `docs/API.md` and the SAM template
//! test derive from it (`routes()`).

use crate::app::ErrorCode;
use crate::views;
use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{IntoParams, ToSchema};

/// An error answer: every 4xx and 5xx of the API has this body.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong: a stable `code` to act on, and a message for people.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// What to branch on (stable).
    #[schema(schema_with = error_code_schema)]
    pub code: String,
    /// What happened, for people (may change).
    pub message: String,
}

fn error_code_schema() -> Schema {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .description(Some(
            ErrorCode::ALL.iter().map(|code| format!("- `{code}`: {}", code.meaning())).collect::<Vec<_>>().join("\n"),
        ))
        .into()
}

/// `?limit=&cursor=`: the lists are paged by an opaque cursor.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?limit=&cursor=&source=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProspectQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only the prospects of this source (e.g. `calendly`).
    pub source: Option<String>,
}

/// Options of a connect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectInput {
    /// `user` (default): the connecting user's bookings; `organization`: every member's of
    /// their Calendly organization (owners and admins only).
    pub scope: Option<crate::domain::CalendlyScope>,
}

/// Options of a disconnect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectInput {
    /// Also delete every booking, event fingerprint and notification of the organization
    /// (prospects stay).
    #[serde(default)]
    pub purge: bool,
}

/// What Calendly handed the browser, completed under the JWT of the user who started the
/// connect.
#[derive(Deserialize, ToSchema)]
pub struct CallbackInput {
    /// The authorization code Calendly sent back.
    pub code: String,
    /// The `state` of the connect being completed.
    pub state: String,
}

/// The OpenAPI document of every route, with the WebSocket messages as components.
pub fn openapi() -> OpenApi {
    let mut doc = super::all_operations_documented();
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("Velvena — Calendly integration")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "HTTP API of Velvena's Calendly integration. Callers authenticate with a CRM JWT \
             (`Authorization: Bearer`) naming their organization. Every error is \
             `{\"error\": {\"code\", \"message\"}}` (`ErrorBody`).\n\n\
             Real time: browsers connect to the WebSocket API with `?token=<JWT>` and receive \
             `PushEnvelope` messages (`prospect:created`, `prospect:updated`, \
             `prospect:deleted`, `notification`, `calendly:sync`) for their organization only.",
        ))
        .build();
    let mut components = doc.components.take().unwrap_or_default();
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    let extra = ComponentsBuilder::new()
        .schema_from::<ErrorBody>()
        .schema_from::<ErrorDetail>()
        .schema_from::<views::PushEnvelope>()
        .schema_from::<views::PushedEvent>()
        .schema_from::<views::ProspectView>()
        .schema_from::<views::ProspectIdView>()
        .schema_from::<views::NotificationView>()
        .schema_from::<views::SyncJobView>()
        .build();
    components.schemas.extend(extra.schemas);
    doc.components = Some(components);
    // Every answer not listed for an operation (a 413 body, a 405, a throttled store's 503, a
    // 500) still has the error body: `default` says so, and the fuzzer checks it.
    let default = ResponseBuilder::new()
        .description("Any other error")
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build();
    for item in doc.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten() {
            operation.responses.responses.entry("default".into()).or_insert(RefOr::T(default.clone()));
        }
    }
    doc
}

/// The document as committed in `docs/openapi.json`: pretty JSON, ending with a newline.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// Where the generated route table of `docs/API.md` starts and ends.
pub const ROUTE_TABLE_BEGIN: &str =
    "<!-- routes:begin (generated from the OpenAPI document: cargo run -p local-stack --bin contract) -->";
/// See `ROUTE_TABLE_BEGIN`.
pub const ROUTE_TABLE_END: &str = "<!-- routes:end -->";

/// `document` with its route table replaced by the one of the OpenAPI document (`None`: no markers).
pub fn with_route_table(document: &str) -> Option<String> {
    let start = document.find(ROUTE_TABLE_BEGIN)? + ROUTE_TABLE_BEGIN.len();
    let end = start + document[start..].find(ROUTE_TABLE_END)?;
    Some(format!("{}\n{}{}", &document[..start], route_table_markdown(), &document[end..]))
}

/// One HTTP route: which function serves it, and what it does (the operation's summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The Lambda function serving it (the operation's tag).
    pub function: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// The path, with `{parameters}`.
    pub path: String,
    /// What it does.
    pub summary: String,
    /// Whether it needs a bearer token.
    pub authenticated: bool,
}

/// Every route of the document, in its order; the function is the operation's tag.
pub fn routes() -> Vec<Route> {
    let doc = openapi();
    let mut routes = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [("GET", &item.get), ("POST", &item.post), ("PATCH", &item.patch), ("DELETE", &item.delete)];
        for (method, operation) in methods {
            let Some(op) = operation else { continue };
            routes.push(Route {
                function: op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default(),
                method: method.to_string(),
                path: path.clone(),
                summary: op.summary.clone().unwrap_or_default(),
                authenticated: op.security.as_ref().is_some_and(|s| !s.is_empty()),
            });
        }
    }
    routes
}

/// The route table of `docs/API.md`, as Markdown.
pub fn route_table_markdown() -> String {
    let mut table = String::from("| Method | Path | Function | Auth | What it does |\n|---|---|---|---|---|\n");
    for r in routes() {
        let auth = if r.authenticated { "JWT" } else { "—" };
        table.push_str(&format!("| `{}` | `{}` | `{}` | {} | {} |\n", r.method, r.path, r.function, auth, r.summary));
    }
    table
}
