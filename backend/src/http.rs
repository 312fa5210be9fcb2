//! HTTP plumbing shared by the REST features: body and query extractors whose rejections
//! are problem+json with the offending field named.

use std::borrow::Cow;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest REST body accepted (the publish payload limit is 16 KiB; bodies wrap it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body: 400 for malformed JSON (trailing characters included) or a wrong content
/// type, 422 naming the field for missing or mistyped members (by its path: `scopes[0]`),
/// 422 with field `body` for a body that is not a JSON object, 413 when it is too large.
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

/// A body that may be left out: no body at all (nor a content type) is `None`; anything
/// else is read as [`ApiJson`] reads it.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(req, state).await.map(Some);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| AppError::TooLarge("request body too large"))?;
        if bytes.trim_ascii().is_empty() {
            return Ok(None);
        }
        Err(AppError::BadRequest("expected a JSON body (Content-Type: application/json)".to_owned()))
    }
}

/// A body that may be left out or be `null`, as the OpenAPI schema of an optional body
/// (`request_body = Option<T>`, nullable) allows: either is `T::default()`; anything else is
/// read as [`ApiJson`] reads it.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = <ApiJson<Option<T>> as axum::extract::OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(OptionalJson(body.and_then(|ApiJson(b)| b).unwrap_or_default()))
    }
}

/// Every body is an object (or `null` where the body is optional): serde would also read a struct from an array, by position
/// (`["eve","password123"]` as credentials), which no client means and no schema documents.
///
/// Whether the JSON is malformed (400) is decided apart from the type, by reading the body
/// as any value: serde_json reports some mismatches of well-formed JSON as syntax errors (a
/// number where an enum's name belongs is "expected value"), and those are a field's fault.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let typed = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| (err.path().to_string(), err.into_inner()))
        .and_then(|value| de.end().map(|()| value).map_err(|err| (".".to_owned(), err)));
    let is_object = bytes.trim_ascii_start().starts_with(b"{");
    // `null` reads only as an optional body (`ApiJson<Option<T>>`, documented as nullable).
    let is_null = bytes.trim_ascii() == b"null";
    let fault = match typed {
        Ok(value) if is_object || is_null => return Ok(value),
        Ok(_) => None,
        Err(fault) => Some(fault),
    };
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(AppError::BadRequest(format!("malformed JSON: {}", confab_shared::json_error::describe_at(&err))));
    }
    let Some((path, err)) = fault.filter(|_| is_object) else {
        return Err(AppError::invalid("body", "must be a JSON object"));
    };
    let message = match confab_shared::json_error::describe(&err) {
        // serde_json's word for a value no variant of an enum accepts (see above).
        message if message == "expected value" => "not one of the allowed values".to_owned(),
        message => message,
    };
    let field = if path == "." {
        match message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            Some(missing) => Cow::Owned(missing.to_owned()),
            None => Cow::Borrowed("body"),
        }
    } else {
        field_path(path)
    };
    Err(AppError::Invalid { field, message })
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
            AppError::Invalid { field: if path == "." { Cow::Borrowed("query") } else { field_path(path) }, message }
        })
    }
}

/// Longest field path a 422 repeats: paths come from the client's own nesting, so a body of
/// deeply nested unknown members must not come back as a kilobyte of `field`.
const MAX_FIELD_PATH: usize = 128;

/// The path serde found the fault at (`scopes[0]`, `target.room`), as the 422's `field`.
fn field_path(path: String) -> Cow<'static, str> {
    if path.len() <= MAX_FIELD_PATH {
        return Cow::Owned(path);
    }
    let mut end = MAX_FIELD_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &path[..end]))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<u8>,
        #[serde(default)]
        more: BTreeMap<String, Vec<u8>>,
    }

    fn field_of(json: &str) -> (String, String) {
        match decode::<Body>(json.as_bytes()) {
            Err(AppError::Invalid { field, message }) => (field.into_owned(), message),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_body_must_be_an_object_even_when_its_members_fit_by_position() {
        assert_eq!(field_of(r#"["eve", [1], {}]"#), ("body".into(), "must be a JSON object".into()));
        assert_eq!(field_of(r#" "eve""#).0, "body");
        assert_eq!(field_of("7").0, "body");
        assert!(decode::<Body>(br#"{"name":"eve","tags":[1]}"#).is_ok());
        for malformed in [&br#"["eve", "#[..], br#"{"name": "#, b"[1,", br#"{"name":"eve","tags":[]} trailing"#] {
            assert!(matches!(decode::<Body>(malformed), Err(AppError::BadRequest(_))), "{}", String::from_utf8_lossy(malformed));
        }
    }

    #[test]
    fn the_field_is_the_path_to_the_fault() {
        assert_eq!(field_of(r#"{"name":"eve","tags":[1,"x"]}"#).0, "tags[1]");
        assert_eq!(field_of(r#"{"name":"eve","tags":[],"more":{"a":[300]}}"#).0, "more.a[0]");
        assert_eq!(field_of(r#"{"tags":[]}"#).0, "name");
        let (field, message) = field_of(r#"{"name":5,"tags":[]}"#);
        assert_eq!((field.as_str(), message.as_str()), ("name", "invalid type: integer `5`, expected a string"));
        // Well-formed JSON that serde calls a syntax error is the field's fault too.
        let (field, message) = field_of(r#"{"name":"\ud800","tags":[]}"#);
        assert_eq!((field.as_str(), message.as_str()), ("name", confab_shared::json_error::LONE_SURROGATE));
    }

    #[test]
    fn a_number_for_an_enum_is_a_422_naming_it() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Read,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Kinds {
            kinds: Vec<Kind>,
        }
        assert!(decode::<Kinds>(br#"{"kinds":["read"]}"#).is_ok());
        for (json, field) in [(r#"{"kinds":["read",7]}"#, "kinds[1]"), (r#"{"kinds":["nope"]}"#, "kinds[0]")] {
            match decode::<Kinds>(json.as_bytes()) {
                Err(AppError::Invalid { field: got, .. }) => assert_eq!(got, field, "{json}"),
                other => panic!("expected a 422 for {json}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_long_path_is_cut_on_a_character_boundary() {
        let key = "é".repeat(200);
        let (field, _) = field_of(&format!(r#"{{"name":"eve","tags":[],"more":{{"{key}":[300]}}}}"#));
        assert!(field.ends_with('…') && field.len() <= MAX_FIELD_PATH + '…'.len_utf8(), "{field}");
    }
}
