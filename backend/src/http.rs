//! HTTP plumbing shared by the REST features: body and query extractors whose rejections
//! are problem+json with the offending field named.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest REST body accepted (the publish payload limit is 16 KiB; bodies wrap it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body: 400 for malformed JSON or a wrong content type, 422 naming the field for
/// missing or mistyped members, 413 when it is too large.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(AppError::BadRequest("expected a JSON body (Content-Type: application/json)".to_owned()));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::TooLarge("request body too large"))?;
        decode(&bytes).map(ApiJson)
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return AppError::BadRequest(format!("malformed JSON: {inner}"));
        }
        let message = inner.to_string();
        let field = if path == "." {
            message.strip_prefix("missing field `").and_then(|r| r.split('`').next()).unwrap_or("body").to_owned()
        } else {
            path
        };
        AppError::Invalid { field: leak_field(field), message: strip_position(&message) }
    })
}

/// A query string, with the same 422 `field` reporting as bodies.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            AppError::Invalid { field: leak_field(if path == "." { "query".to_owned() } else { path }), message }
        })
    }
}

/// Field names come from our own types, so the set is small and fixed; interning them as
/// `&'static str` keeps [`AppError`] cheap without a lifetime. Unknown names map to "body".
fn leak_field(field: String) -> &'static str {
    const KNOWN: &[&str] = &[
        "username", "password", "refresh_token", "name", "admin_only", "target", "payload", "kind", "room",
        "format", "before", "limit", "query", "body", "scopes", "expires_in_days", "url", "events", "rooms",
        "cursor", "prefix", "online",
    ];
    KNOWN.iter().copied().find(|k| *k == field || field.starts_with(&format!("{k}."))).unwrap_or("body")
}

fn strip_position(message: &str) -> String {
    message.rfind(" at line ").map_or_else(|| message.to_owned(), |at| message[..at].to_owned())
}
