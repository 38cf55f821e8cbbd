//! The API's one error type. Every failure becomes an `application/problem+json` body (RFC 9457)
//! with a stable `type` URI, so clients branch on `type`, never on the human `detail`.
//! Internal failures are logged here, once, with their cause, and answered with a generic 500;
//! the log line is in the request's span (method, route, request id) and the body carries the
//! request id, so a report can be matched with the log.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://fleetd.dev/problems/";

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error body (RFC 9457 problem details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://fleetd.dev/problems/validation",
    "title": "Validation failed",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"field": "plate", "message": "at most 20 characters"}],
    "request_id": "5f0c2a9e8d7b4c3a1e2f3a4b5c6d7e8f"
}))]
pub struct Problem {
    /// Stable URI naming the kind of problem: `https://fleetd.dev/problems/<kind>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the kind of problem; the same for every problem of one `type`.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request, for people.
    pub detail: String,
    /// Per-field messages (validation problems only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request's id, as in its `X-Request-Id` response header and in fleetd's log lines
    /// about it: quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field as named in the request body or query string (`plate`, `limit`).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, a path that is not an id).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials fleetd does not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing with this id or path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 408: the request body did not arrive in full within the server's body timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// 409: the request conflicts with the current state (a username taken, the last admin).
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than the server accepts.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: readable, but some fields are invalid.
    #[error("{} invalid", plural(.0.len(), "field is", "fields are"))]
    Validation(Vec<FieldError>),
    /// 429: too many failed logins; try again after the given time.
    #[error("too many failed logins; try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// 429: too many of a bounded resource (exports, live streams) are open; retry later.
    #[error("{detail}")]
    TooBusy { detail: String, retry_after: Duration },
    /// 503: the database is unreachable or overloaded; the client may retry.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] sqlx::Error),
    /// 503: fleetd is handling as many requests as it allows; the client may retry.
    #[error("fleetd is handling as many requests as it allows; try again shortly")]
    Overloaded,
    /// 500: a bug or an unexpected failure. Logged with its cause; the client sees a generic text.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Every problem kind: (slug of its `type` URI, status, title). Documented in the README.
pub const PROBLEM_KINDS: &[(&str, u16, &str)] = &[
    ("bad-request", 400, "Bad request"),
    ("unauthenticated", 401, "Authentication required"),
    ("forbidden", 403, "Forbidden"),
    ("not-found", 404, "Not found"),
    ("method-not-allowed", 405, "Method not allowed"),
    ("request-timeout", 408, "Request timeout"),
    ("conflict", 409, "Conflict"),
    ("payload-too-large", 413, "Payload too large"),
    ("unsupported-media-type", 415, "Unsupported media type"),
    ("validation", 422, "Validation failed"),
    ("rate-limited", 429, "Too many requests"),
    ("internal", 500, "Internal server error"),
    ("unavailable", 503, "Service unavailable"),
];

impl ApiError {
    /// Wraps an unexpected failure (logged when the response is built).
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(e.into())
    }

    /// A validation failure of one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// The slug of this error's `type` URI.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::RequestTimeout => "request-timeout",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Validation(_) => "validation",
            ApiError::RateLimited { .. } | ApiError::TooBusy { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
            ApiError::Unavailable(_) | ApiError::Overloaded => "unavailable",
        }
    }

    /// The body this error is answered with.
    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        let (status, title) = PROBLEM_KINDS
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, s, t)| (*s, *t))
            .unwrap_or((500, "Internal server error"));
        let detail = match self {
            ApiError::Internal(_) => {
                "fleetd failed to handle the request; the error is in its log".to_owned()
            }
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::Validation(e) => e.clone(),
            _ => Vec::new(),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{kind}"),
            title: title.to_owned(),
            status,
            detail,
            errors,
            request_id: crate::trace::RequestId::current(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => ApiError::Unavailable(e),
            // 57014: statement timeout; 57P01..57P03: the server is shutting down or starting
            sqlx::Error::Database(ref d)
                if matches!(d.code().as_deref(), Some("57014" | "57P01" | "57P02" | "57P03")) =>
            {
                ApiError::Unavailable(e)
            }
            // 22021: a NUL character (or bytes PostgreSQL cannot store) in a client's text
            sqlx::Error::Database(ref d) if d.code().as_deref() == Some("22021") => {
                ApiError::BadRequest(
                    "text in the request contains a character that cannot be stored (NUL, U+0000)"
                        .to_owned(),
                )
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

/// The full cause chain of an error, for the log.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = %chain(e.as_ref()), "request failed"),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable for a request")
            }
            _ => {}
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            ApiError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"fleetd\""),
                );
            }
            ApiError::RateLimited { retry_after } | ApiError::TooBusy { retry_after, .. } => {
                // round up: retrying a moment early would only fail again
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_is_listed_with_its_status() {
        let samples = [
            ApiError::BadRequest(String::new()),
            ApiError::Unauthenticated(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed(String::new()),
            ApiError::RequestTimeout,
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::Validation(Vec::new()),
            ApiError::RateLimited { retry_after: Duration::from_secs(1) },
            ApiError::Unavailable(sqlx::Error::PoolTimedOut),
            ApiError::internal("boom"),
        ];
        assert_eq!(samples.len(), PROBLEM_KINDS.len());
        for e in samples {
            let p = e.problem();
            assert!(PROBLEM_KINDS.iter().any(|(k, s, _)| p.type_.ends_with(k) && *s == p.status));
        }
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let p = ApiError::internal("password authentication failed for user fleetd").problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("password"), "{}", p.detail);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let r = ApiError::RateLimited { retry_after: Duration::from_millis(1500) }.into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
