//! Request parsing at the edge: the caller from the JWT, JSON bodies, and pagination.

use super::error::ApiError;
use crate::app::ErrorCode;
use crate::auth::{Caller, JwtVerifier};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The verified caller of a route that requires a JWT.
pub struct Authenticated(pub Caller);

impl<S> FromRequestParts<S> for Authenticated
where
    JwtVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        Ok(Self(JwtVerifier::from_ref(state).verify_header(header)?))
    }
}

/// Parses a JSON body; anything malformed or mistyped is a 400 that says what is wrong.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(ErrorCode::InvalidBody, "a JSON body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, format!("invalid JSON body: {e}")))
}

/// Parses a JSON body into its documented type, saying what is wrong in the API's codes: a
/// field the type does not take is `unknown_field`, a field of the wrong type `invalid_field`
/// (both name the field), anything else (not JSON, not an object) `invalid_body`.
pub fn typed_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(ErrorCode::InvalidBody, "a JSON body is required"));
    }
    // Every body is an object: anything else is no field's fault.
    let object = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => return Err(ApiError::bad_request(ErrorCode::InvalidBody, "the body must be a JSON object")),
        Err(e) => return Err(ApiError::bad_request(ErrorCode::InvalidBody, format!("invalid JSON body: {e}"))),
    };
    serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let cause = e.into_inner();
        let message = cause.to_string();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or_default();
            ApiError::bad_request(ErrorCode::UnknownField, format!("unknown field '{field}'"))
        } else if cause.is_data() && path != "." {
            ApiError::bad_request(ErrorCode::InvalidField, format!("{path}: {message}"))
        } else {
            ApiError::bad_request(ErrorCode::InvalidBody, format!("invalid JSON body: {message}"))
        }
    })
}

/// The page size of `?limit=` (1..=100, default 50).
pub fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(50),
        Some(raw) => {
            raw.parse::<usize>().ok().filter(|l| (1..=100).contains(l)).ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidLimit, "limit must be a number between 1 and 100")
            })
        }
    }
}
