//! `/auth/calendly/callback`: the browser's redirect from Calendly (which connects nothing) and
//! the completion of the connect by the user who started it.

use super::ApiError;
use super::contract::{CallbackInput, ErrorBody};
use super::extract::{Authenticated, json_body};
use crate::app::{Connecting, FrontendUrl};
use crate::views::ConnectedView;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// Completes a connect with what Calendly handed the browser, as the user who started it:
/// exchanges the code, stores the sealed tokens, subscribes to webhooks and queues the
/// initial sync (a job; the answer does not wait for it).
#[utoipa::path(post, path = "/auth/calendly/callback", tag = "oauth-callback",
    summary = "Complete the connect (code + state, same user)", security(("bearer" = [])),
    request_body = CallbackInput,
    responses(
        (status = 200, description = "Success", body = ConnectedView),
        (status = 400, body = ErrorBody, description = "`invalid_body`, `invalid_state` or `calendly_rejected`"),
        (status = 409, body = ErrorBody, description = "`calendly_account_in_use` or `calendly_organization_in_use`"),
        (status = 502, body = ErrorBody, description = "`calendly_unavailable`"),
    ))]
pub(super) async fn callback_json(
    State(connecting): State<Connecting>,
    Authenticated(caller): Authenticated,
    body: Bytes,
) -> Result<Json<ConnectedView>, ApiError> {
    let body: CallbackInput = json_body(&body)?;
    let outcome = connecting.complete_connect(&body.code, &body.state, &caller).await?;
    Ok(Json((&outcome).into()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CallbackQuery {
    /// Calendly's authorization code.
    code: Option<String>,
    /// The state of `POST /calendly/connect`.
    state: Option<String>,
    /// Set when the user refused (an RFC 6749 §4.1.2.1 code); only known codes are shown, and
    /// `error_description` is never read (free text anyone can put in a link).
    error: Option<String>,
}

/// Why Calendly sent the browser back without a code (RFC 6749 §4.1.2.1), as this product tells
/// it: any code outside the RFC's list is `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OAuthRefusal {
    AccessDenied,
    InvalidScope,
    Unavailable,
    Misconfigured,
    Other,
}

impl OAuthRefusal {
    fn of(error: &str) -> Self {
        match error {
            "access_denied" => Self::AccessDenied,
            "invalid_scope" => Self::InvalidScope,
            "server_error" | "temporarily_unavailable" => Self::Unavailable,
            "invalid_request" | "unauthorized_client" | "unsupported_response_type" => Self::Misconfigured,
            _ => Self::Other,
        }
    }

    /// The code handed to the frontend.
    fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InvalidScope => "invalid_scope",
            Self::Unavailable => "calendly_unavailable",
            Self::Misconfigured => "misconfigured",
            Self::Other => "other",
        }
    }

    /// The page's sentence.
    fn explanation(self) -> &'static str {
        match self {
            Self::AccessDenied => {
                "L'accès à Calendly a été refusé. Vous pouvez relancer la connexion depuis les réglages."
            }
            Self::InvalidScope => {
                "Calendly n'a pas accordé les autorisations demandées. Relancez la connexion et acceptez-les."
            }
            Self::Unavailable => "Calendly est momentanément indisponible. Réessayez dans quelques minutes.",
            Self::Misconfigured => "La demande d'accès a été refusée par Calendly. Contactez le support de Velvena.",
            Self::Other => "Calendly n'a pas donné l'accès. Relancez la connexion depuis les réglages.",
        }
    }
}

/// The browser's redirect from Calendly. It connects nothing by itself: a code and a state are
/// no proof of who is at the browser (RFC 6749 §10.12; a connect link sent to someone else
/// would otherwise connect *their* account to the sender's organization). They go to the
/// frontend, which completes with `POST /auth/calendly/callback` under the JWT of the user
/// who started the connect; without a frontend, a page says how.
#[utoipa::path(get, path = "/auth/calendly/callback", tag = "oauth-callback",
    summary = "Calendly's redirect: hands code + state to the frontend, connects nothing",
    params(CallbackQuery),
    responses(
        (status = 303, description = "To `FRONTEND_URL/settings/integrations` with `calendly_code` and `calendly_state` (or `calendly=denied`)",
            headers(("location" = String))),
        (status = 200, description = "Without a frontend: a page saying how to complete", content_type = "text/html", body = String),
        (status = 400, description = "Refused by the user, or code/state missing", content_type = "text/html", body = String),
    ))]
pub(super) async fn callback_redirect(
    State(FrontendUrl(frontend)): State<FrontendUrl>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let frontend = frontend.as_deref();
    match (&query.code, &query.state, &query.error) {
        (_, _, Some(error)) => {
            // Only fixed text: the query is anyone's to write (a link with a made-up
            // `error_description` would otherwise put its words on our page).
            let refusal = OAuthRefusal::of(error);
            match frontend {
                Some(f) => redirect_to(f, &[("calendly", "denied"), ("calendly_error", refusal.code())]),
                None => page(
                    axum::http::StatusCode::BAD_REQUEST,
                    "La connexion à Calendly a échoué",
                    &format!("<p>{}</p>", refusal.explanation()),
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
