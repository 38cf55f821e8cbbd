//! Facts about the client that auth needs: its address (login rate limits, the sessions table)
//! and whether it reached fleetd over TLS (the `Secure` cookie attribute).
//!
//! fleetd serves plain HTTP; TLS ends at a reverse proxy. The proxy's `X-Forwarded-For` is
//! believed only when the TCP peer is a loopback address (a proxy on the same machine), and
//! then its last entry, the one that proxy appended; anyone else could write the header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// The client's address: the TCP peer, or for a loopback peer the address its
/// `X-Forwarded-For` names last. `None` when the server was not given peer addresses (tests
/// calling the router directly).
pub fn address(parts: &Parts) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    if peer.is_loopback() {
        if let Some(forwarded) = forwarded_for(&parts.headers) {
            return Some(forwarded);
        }
    }
    Some(peer)
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

/// True when the request came over TLS, as a reverse proxy says with `X-Forwarded-Proto: https`.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The `User-Agent`, cut to 256 characters (kept with the session for people reviewing them).
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(ua.chars().take(256).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(peer: &str, xff: Option<&str>) -> Parts {
        let mut req = Request::builder();
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        let (mut parts, _) = req.body(()).expect("request").into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().expect("addr")));
        parts
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_loopback_peer() {
        let p = parts("127.0.0.1:5000", Some("198.51.100.7, 203.0.113.9"));
        assert_eq!(address(&p), Some("203.0.113.9".parse().expect("ip")));
        let p = parts("192.0.2.1:5000", Some("203.0.113.9"));
        assert_eq!(address(&p), Some("192.0.2.1".parse().expect("ip")));
        let p = parts("127.0.0.1:5000", Some("garbage"));
        assert_eq!(address(&p), Some("127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn https_is_what_the_proxy_says() {
        let mut h = HeaderMap::new();
        assert!(!is_https(&h));
        h.insert("x-forwarded-proto", "HTTPS".parse().expect("value"));
        assert!(is_https(&h));
        h.insert("x-forwarded-proto", "http".parse().expect("value"));
        assert!(!is_https(&h));
    }
}
