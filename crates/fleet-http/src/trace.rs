//! Request tracing: every request the server answers runs inside a `request` span carrying its
//! method, matched route, request id, status and latency, so whatever a handler logs (an
//! internal error above all) says which request it belongs to. The request id is the client's
//! `X-Request-Id` when that is a sane token, a fresh one otherwise; it is echoed in the
//! response's `X-Request-Id` and in every problem body. docs/LOGGING.md lists the fields.

use std::future::Future;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use tracing::field::Empty;
use tracing::Span;

/// The header a request id arrives and leaves in.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-sent request id kept; longer ones are replaced (the id is logged with every
/// line of the request, so a client must not make those lines arbitrarily long).
pub const MAX_REQUEST_ID_LEN: usize = 64;

tokio::task_local! {
    /// The id of the request whose future is being polled: problem bodies read it, wherever in
    /// the handler they are built.
    static CURRENT: RequestId;
}

/// One request's id: ASCII letters, digits and `. _ : @ -`, at most [`MAX_REQUEST_ID_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's `X-Request-Id` if it is a sane token, otherwise a new id.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane(v))
            .map_or_else(Self::generate, |v| Self(v.to_owned()))
    }

    /// 16 random bytes in hex: unique enough to find one request in any log.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being handled on this task, if any.
    pub fn current() -> Option<String> {
        CURRENT.try_with(|id| id.0.clone()).ok()
    }

    /// Runs `fut` as the request with this id (see [`RequestId::current`]).
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.0).ok()
    }
}

/// Whether a client's id may be used as it is: 1 to [`MAX_REQUEST_ID_LEN`] bytes of ASCII
/// letters, digits and `. _ : @ -` (no spaces, quotes, braces, `=` or control characters, which
/// could forge log lines, muddle a text log's fields or break headers).
fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b))
}

/// The span a request runs in; `route` is recorded once routing has matched, `status` and
/// `latency_ms` when the response head is ready. It is an error-level span so that it is
/// enabled whenever anything is logged at all: with `FLEETD_LOG=warn` a warning or an error
/// still names its request (a span below the filter's level would be dropped with its fields).
pub fn request_span(method: &axum::http::Method, id: &RequestId) -> Span {
    // text fields as `Display`, so a text log shows them unquoted
    tracing::error_span!(
        "request",
        method = %crate::metrics::method_label(method),
        route = Empty,
        request_id = %id.as_str(),
        status = Empty,
        latency_ms = Empty,
    )
}

/// Records the response on the request's span and logs the request's one access line (at
/// debug, target `fleet_http::access`), then echoes the request id in the response.
pub fn finish<B>(
    span: &Span,
    id: &RequestId,
    started: Instant,
    response: &mut axum::http::Response<B>,
) {
    let status = response.status().as_u16();
    // whole microseconds: more digits would only be noise in every line
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    tracing::debug!(target: "fleet_http::access", parent: span, status, latency_ms, "request finished");
    if let Some(v) = id.header_value() {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
}

/// Route layer: records the matched route template (`/api/v1/devices/{id}`, never the raw
/// path, which may carry ids and tokens) on the request's span.
pub async fn record_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        Span::current().record("route", tracing::field::display(path.as_str()));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_str(id).expect("header value"));
        h
    }

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(RequestId::from_headers(&with("req-42:abc")).as_str(), "req-42:abc");
        for odd in [
            "with space",
            "",
            "a=b",
            "{\"x\"}",
            "back\\slash",
            &"x".repeat(MAX_REQUEST_ID_LEN + 1),
            "tab\there",
        ] {
            let id = RequestId::from_headers(&with(odd));
            assert_ne!(id.as_str(), odd);
            assert_eq!(id.as_str().len(), 32, "a generated id");
        }
        let fresh = RequestId::from_headers(&HeaderMap::new());
        assert!(fresh.as_str().bytes().all(|b| b.is_ascii_hexdigit()), "{fresh:?}");
        assert_ne!(fresh, RequestId::generate());
    }

    #[tokio::test]
    async fn the_current_id_is_known_inside_the_scope_only() {
        assert_eq!(RequestId::current(), None);
        let id = RequestId::generate();
        let seen = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(seen.as_deref(), Some(id.as_str()));
    }
}
