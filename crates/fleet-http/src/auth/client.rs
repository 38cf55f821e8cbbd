//! Facts about the client that auth needs: its address (login limits, the sessions table) and
//! whether it reached fleetd over TLS (the `Secure` cookie and its `__Host-` name).
//!
//! fleetd serves plain HTTP; TLS ends at a reverse proxy. `X-Forwarded-For` is believed only
//! when the TCP peer is one of the configured trusted proxies (`FLEETD_TRUSTED_PROXIES`), and
//! then the client is the right-most address of the chain that is not itself a trusted proxy:
//! each proxy appends the address it saw, and anything left of the first untrusted hop was
//! written by the client.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use ipnet::IpNet;

/// The client's address: the TCP peer, or behind trusted proxies the address they name.
/// `None` when the server was not given peer addresses (tests calling the router directly).
pub fn address(parts: &Parts, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    if looks_like_an_untrusted_proxy(peer, &parts.headers, trusted) {
        warn_untrusted_proxy_once(peer);
    }
    Some(client_address(peer, &parts.headers, trusted))
}

/// A peer on this machine or a private network that sends `X-Forwarded-For` without being in
/// `FLEETD_TRUSTED_PROXIES` is most likely the operator's own reverse proxy, left out of the
/// setting (as after an upgrade from a version that trusted loopback): then every client
/// shares the proxy's address, and one client's failed logins delay everyone.
fn looks_like_an_untrusted_proxy(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> bool {
    let peer = peer.to_canonical();
    let local = match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    local
        && headers.contains_key("x-forwarded-for")
        && !trusted.iter().any(|net| net.contains(&peer))
}

/// Says so once per process: the log must not grow with requests.
fn warn_untrusted_proxy_once(peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            client.addr = %peer,
            "a local peer sends X-Forwarded-For but is not in FLEETD_TRUSTED_PROXIES: its header \
             is ignored and every client behind it shares its address for login limits; list \
             the reverse proxy there (docs/SECURITY.md)"
        );
    }
}

// one rule for every per-client count (failed logins, bodies being received)
pub use fleet_accounts::throttle::counted_network;

/// The client behind `peer`: walks `X-Forwarded-For` from the right past trusted proxies.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    let mut client = peer;
    if !is_trusted(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        // a hop that is not an address ends what can be believed: the last proxy wrote it
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`198.51.100.7:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// True when the request came over TLS, as a reverse proxy says with `X-Forwarded-Proto: https`.
/// Believed from anyone: a client claiming TLS only gets itself a `Secure` cookie.
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

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let h = xff(&["198.51.100.7"]);
        assert_eq!(client_address(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"), "loopback too");
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("192.0.2.1"), &h, &trusted), ip("192.0.2.1"));
        assert_eq!(client_address(ip("10.1.2.3"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        // the client forged the left part; the proxies appended the rest
        let h = xff(&["1.2.3.4, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        let h = xff(&["203.0.113.9:5123, [2001:db8::7]:80"]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // only proxies: the left-most of them
        let h = xff(&["10.9.9.9, 10.0.0.5"]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.9.9.9"));
        // garbage ends the walk at the proxy that passed it on
        let h = xff(&["203.0.113.9, garbage, 10.0.0.5"]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.5"));
        assert_eq!(client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
        // an IPv4 peer seen as an IPv4-mapped IPv6 address is still trusted
        let h = xff(&["198.51.100.7"]);
        assert_eq!(client_address(ip("::ffff:10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn a_local_peer_sending_forwarded_for_unlisted_looks_like_a_forgotten_proxy() {
        let h = |xff: bool| {
            let mut h = HeaderMap::new();
            if xff {
                h.insert("x-forwarded-for", "198.51.100.7".parse().expect("value"));
            }
            h
        };
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let listed: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        assert!(looks_like_an_untrusted_proxy(ip("127.0.0.1"), &h(true), &[]));
        assert!(looks_like_an_untrusted_proxy(ip("172.18.0.1"), &h(true), &[]));
        assert!(looks_like_an_untrusted_proxy(ip("::ffff:10.0.0.2"), &h(true), &[]));
        assert!(!looks_like_an_untrusted_proxy(ip("127.0.0.1"), &h(true), &listed), "listed");
        assert!(!looks_like_an_untrusted_proxy(ip("127.0.0.1"), &h(false), &[]), "no header");
        assert!(!looks_like_an_untrusted_proxy(ip("203.0.113.9"), &h(true), &[]), "public");
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
