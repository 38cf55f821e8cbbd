//! Cross-site request refusal for the API's unsafe methods (POST, PUT, PATCH, DELETE).
//!
//! A browser attaches the session cookie to a form another site posts to fleetd (SameSite=Lax
//! stops that only across sites, not from a sibling subdomain, and not for login, which needs
//! no cookie). Browsers say where such a request comes from in `Sec-Fetch-Site` and `Origin`,
//! headers a page cannot forge. So a request without a bearer token (which a browser never adds
//! on its own) is refused with 403 when `Sec-Fetch-Site` says `cross-site` or `same-site`, or,
//! from a browser too old to send it, when its `Origin` names another host than the one the
//! request was sent to; a configured CORS origin is always let through. A request with neither
//! header (curl, integrations) is no browser's, and passes.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use fleet_core::text::excerpt;

use crate::{ApiError, AppState};

/// Middleware: refuses cross-site unsafe requests (see the module docs).
pub async fn refuse_cross_site(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(reason) = check(req.method(), req.headers(), &state.cors_origins) {
        metrics::counter!("fleetd_http_cross_site_refused_total").increment(1);
        return ApiError::Forbidden(format!(
            "{reason}; fleetd accepts changes only from its own pages and the configured CORS \
             origins (or with a bearer token)"
        ))
        .into_response();
    }
    next.run(req).await
}

/// `Err` with the reason when the request must be refused.
pub fn check(method: &Method, headers: &HeaderMap, allowed: &[HeaderValue]) -> Result<(), String> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    if safe || has_bearer_token(headers) {
        return Ok(());
    }
    let origin = headers.get(header::ORIGIN);
    if origin
        .is_some_and(|o| allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(o.as_bytes())))
    {
        return Ok(());
    }
    // the browser's own verdict, where it gives one (every current browser does)
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin" | "none") => return Ok(()),
        Some(site) => return Err(format!("the browser marked this request {}", excerpt(site))),
        None => {}
    }
    // older browsers: compare Origin with the host the request was sent to
    match origin {
        None => Ok(()),
        Some(origin) if is_own_origin(origin, headers) => Ok(()),
        Some(origin) => Err(format!(
            "the request comes from another origin ({})",
            excerpt(origin.to_str().unwrap_or("not text"))
        )),
    }
}

/// A bearer token is something a page can only send through fetch with CORS, never through a
/// form; other `Authorization` schemes can be attached by the browser on its own (Basic
/// credentials cached for a proxy in front of fleetd), so they do not exempt a request.
fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().any(|v| {
        v.as_bytes().get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
    })
}

/// True when `origin` (`scheme://host[:port]`) names the host this request was sent to: its
/// `Host`, or behind a proxy that rewrites it, its `X-Forwarded-Host`. The scheme is not
/// compared (TLS ends at a proxy, which may not say so); trusting these headers from anyone is
/// safe here, since a page cannot set them on a request to another site.
fn is_own_origin(origin: &HeaderValue, headers: &HeaderMap) -> bool {
    let Some((scheme, host)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return false;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return false,
    };
    [headers.get(header::HOST), headers.get("x-forwarded-host")]
        .into_iter()
        .flatten()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(',').next())
        .map(|h| h.trim())
        .any(|h| h.strip_suffix(default_port).unwrap_or(h).eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    fn allowed() -> Vec<HeaderValue> {
        vec![HeaderValue::from_static("https://ops.example.com")]
    }

    #[test]
    fn cross_site_posts_are_refused_same_origin_and_headerless_ones_pass() {
        let post = Method::POST;
        let host = ("host", "fleet.example.com");
        let proto = ("x-forwarded-proto", "https");
        let ok = |h: &[(&'static str, &str)]| check(&post, &headers(h), &allowed()).is_ok();
        assert!(ok(&[host]), "curl: neither header");
        assert!(ok(&[
            host,
            proto,
            ("origin", "https://fleet.example.com"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(ok(&[
            ("host", "fleet.example.com:443"),
            proto,
            ("origin", "https://fleet.example.com")
        ]));
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "fleet.example.com"),
            proto,
            ("origin", "https://fleet.example.com")
        ]));
        assert!(
            ok(&[host, ("origin", "https://ops.example.com"), ("sec-fetch-site", "cross-site")]),
            "a CORS origin"
        );
        assert!(!ok(&[host, proto, ("origin", "https://evil.example")]));
        assert!(!ok(&[host, proto, ("origin", "null")]));
        assert!(ok(&[host, ("origin", "https://fleet.example.com")]), "TLS ended at a proxy");
        assert!(!ok(&[host, ("origin", "https://fleet.example.com.evil.example")]));
        assert!(!ok(&[host, ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[host, ("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[host, ("sec-fetch-site", "same-site")]), "a sibling subdomain");
        assert!(ok(&[host, ("sec-fetch-site", "none")]), "typed by the user");
        // the browser's verdict rules where it is given
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://fleet.example.com"),
            ("sec-fetch-site", "same-origin")
        ]));
    }

    #[test]
    fn safe_methods_and_bearer_requests_are_not_checked() {
        let evil = headers(&[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]);
        assert!(check(&Method::GET, &evil, &[]).is_ok());
        let mut with_token = evil.clone();
        with_token.insert(header::AUTHORIZATION, "Bearer fltd_x".parse().expect("value"));
        assert!(check(&Method::DELETE, &with_token, &[]).is_ok());
        assert!(check(&Method::PATCH, &evil, &[]).is_err());
        // Basic credentials a browser cached for a proxy ride along with any form post
        let mut with_basic = evil.clone();
        with_basic.insert(header::AUTHORIZATION, "Basic YWRtaW46cHc=".parse().expect("value"));
        assert!(check(&Method::POST, &with_basic, &[]).is_err());
        let mut short = evil;
        short.insert(header::AUTHORIZATION, "Bear".parse().expect("value"));
        assert!(check(&Method::POST, &short, &[]).is_err());
    }
}
