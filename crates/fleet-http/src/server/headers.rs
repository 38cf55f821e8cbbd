//! Security headers on every response the server sends: API, health, pushes, metrics, pages,
//! errors, 404s and the server's own refusals. A header a route set itself (the pages' CSP and
//! Referrer-Policy) is kept; the server only fills in what is missing.

use axum::http::header::{self, HeaderMap, HeaderName};
use axum::http::HeaderValue;

/// The policy of a response that is not a page: it loads nothing and may not be framed.
const NON_PAGE_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Two years, the usual preload value.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Adds the headers to `response`; `tls` when the request reached the proxy in front of
/// fleetd over HTTPS (`X-Forwarded-Proto: https`), the only case HSTS means anything.
pub(crate) fn apply(response: &mut HeaderMap, tls: bool) {
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // the pages set their own (same-origin); nothing else needs to send a referrer
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        response.entry(name).or_insert(HeaderValue::from_static(value));
    }
    match response.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) {
        None => {
            response
                .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(NON_PAGE_CSP));
        }
        // a page's own policy, made to refuse framing as well if it does not say otherwise
        Some(csp) if !csp.contains("frame-ancestors") => {
            if let Ok(v) = HeaderValue::from_str(&format!("{csp}; frame-ancestors 'none'")) {
                response.insert(header::CONTENT_SECURITY_POLICY, v);
            }
        }
        Some(_) => {}
    }
    if tls {
        response.entry(header::STRICT_TRANSPORT_SECURITY).or_insert(HeaderValue::from_static(HSTS));
    }
}

/// Whether the request leaves its connection open after the response: HTTP/1.1 unless it says
/// `Connection: close`, HTTP/1.0 only when it says `Connection: keep-alive`.
pub(crate) fn keeps_alive<B>(request: &axum::http::Request<B>) -> bool {
    match request.version() {
        axum::http::Version::HTTP_11 => !has_token(request.headers(), "close"),
        axum::http::Version::HTTP_10 => has_token(request.headers(), "keep-alive"),
        _ => false,
    }
}

/// Whether a response says it closes its connection.
pub(crate) fn closes(response: &HeaderMap) -> bool {
    has_token(response, "close")
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pages_policy_is_kept_and_made_to_refuse_framing() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        apply(&mut h, false);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; frame-ancestors 'none'"
        );
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none());
    }

    #[test]
    fn hsts_only_behind_https() {
        let mut h = HeaderMap::new();
        apply(&mut h, true);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], NON_PAGE_CSP);
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_some());
    }
}
