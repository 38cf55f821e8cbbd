//! Request extractors whose failures are API problems: a body that is not JSON is 415, JSON
//! that does not parse is 400, and a value of the wrong type or an unknown field is a 422
//! naming the field (the body's or the query string's). axum's own extractors answer in plain
//! text, so the routes use these.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::FieldError;
use crate::ApiError;

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".to_owned(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(r.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises `bytes`, naming the offending field on a data error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = without_position(&inner);
                ApiError::Validation(vec![FieldError::new(field_of(&path, &message), message)])
            }
            _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The field a deserialisation error is about: its path (`plate`, `items[2].name`), or for
/// errors about the whole object the field its message names ("unknown field `nmae`", "missing
/// field `name`"), else `body`.
pub(crate) fn field_of(path: &str, message: &str) -> String {
    if path != "." && !path.is_empty() {
        return path.to_owned();
    }
    backticked(message)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or_else(|| "body".to_owned())
}

/// serde_json's message without its " at line 1 column 9" suffix.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Query-string parameters.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            ApiError::Validation(vec![FieldError::new(field_of(&path, &message), message)])
        })
    }
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// A path parameter, e.g. the id in `/devices/{id}`.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| ApiError::BadRequest(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        n: Option<i32>,
    }

    fn status(r: Result<Body, ApiError>) -> (u16, Vec<FieldError>) {
        let p = r.expect_err("should fail").problem();
        (p.status, p.errors)
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_422_naming_the_field() {
        let (s, errors) = status(parse_json(br#"{"name": "a", "n": "x"}"#));
        assert_eq!(s, 422);
        assert_eq!(errors[0].field, "n");
        assert!(errors[0].message.starts_with("invalid type: string"), "{errors:?}");
        assert!(!errors[0].message.contains("line"), "{errors:?}");
        let (s, errors) = status(parse_json(br#"{"name": "a", "nmae": 1}"#));
        assert_eq!((s, errors[0].field.as_str()), (422, "nmae"));
        assert!(errors[0].message.contains("unknown field `nmae`"), "{errors:?}");
    }

    #[test]
    fn broken_json_is_400() {
        assert_eq!(status(parse_json(br#"{"name": "#)).0, 400);
        assert_eq!(status(parse_json(br#"{"name": "a"} x"#)).0, 400);
        assert!(parse_json::<Body>(br#" {"name": "a"} "#).is_ok());
    }

    #[test]
    fn json_media_types_are_recognised() {
        let mut h = HeaderMap::new();
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().expect("value"));
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
