//! The session cookie of the web apps. The browser holds a random session id in a cookie
//! (HttpOnly, SameSite=Lax, Path=/); the session itself is stored by
//! [`fleet_accounts::session`], which keeps only its SHA-256 hash. Over HTTPS
//! the cookie is `__Host-fleetd_session` (Secure): browsers accept that name only from a secure
//! origin, for the whole host and no domain, so neither a plain-HTTP page nor a sibling
//! subdomain can plant or overwrite it. Over plain HTTP it is `fleetd_session`.
//!
//! The cookie lives as long as a session can ([`MAX_LIFETIME`]); the session may end sooner.

use axum::http::{header, HeaderMap, HeaderValue};
use fleet_accounts::session::MAX_LIFETIME;

/// Name of the session cookie over plain HTTP.
pub const COOKIE: &str = "fleetd_session";
/// Name of the session cookie over HTTPS.
pub const SECURE_COOKIE: &str = "__Host-fleetd_session";

/// The session id in the request's session cookie (either name; `__Host-` first), if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    session_cookie(headers).map(|(_, value)| value)
}

/// The session cookie's name and value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<(&'static str, String)> {
    [SECURE_COOKIE, COOKIE].into_iter().find_map(|wanted| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == wanted && !value.is_empty())
            .map(|(_, value)| (wanted, value.trim_matches('"').to_owned()))
    })
}

/// The cookie's name for a client that reached fleetd over TLS (`secure`) or not.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// `Set-Cookie` for a new session; `secure` when the client reached fleetd over TLS.
pub fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    cookie(cookie_name(secure), id, MAX_LIFETIME.as_secs())
}

/// `Set-Cookie` that makes the browser forget the session cookie called `name`.
pub fn clear_cookie(name: &'static str) -> HeaderValue {
    cookie(name, "", 0)
}

fn cookie(name: &'static str, value: &str, max_age_s: u64) -> HeaderValue {
    // __Host- cookies must be Secure with Path=/ and no Domain, or browsers drop them
    let secure = if name == SECURE_COOKIE { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}");
    // the session id is base64url, so the header is always valid
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("fleetd_session=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; fleetd_session=abc-_; b=2".parse().expect("value"));
        assert_eq!(cookie_value(&h).as_deref(), Some("abc-_"));
        h.insert(header::COOKIE, "fleetd_session=".parse().expect("value"));
        assert_eq!(cookie_value(&h), None);
    }

    #[test]
    fn either_name_is_read_the_host_prefixed_one_first() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "fleetd_session=old; __Host-fleetd_session=new".parse().expect("v"),
        );
        assert_eq!(session_cookie(&h), Some((SECURE_COOKIE, "new".to_owned())));
        h.insert(
            header::COOKIE,
            "__Host-fleetd_session=; fleetd_session=plain".parse().expect("v"),
        );
        assert_eq!(session_cookie(&h), Some((COOKIE, "plain".to_owned())));
    }

    #[test]
    fn set_cookie_is_http_only_lax_and_host_prefixed_and_secure_only_behind_tls() {
        let plain = set_cookie("xyz", false);
        let plain = plain.to_str().expect("ascii");
        assert!(plain.starts_with("fleetd_session=xyz; Path=/; Max-Age="), "{plain}");
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"), "{plain}");
        assert!(!plain.contains("Secure"));
        let tls = set_cookie("xyz", true);
        let tls = tls.to_str().expect("ascii");
        assert!(tls.starts_with("__Host-fleetd_session=xyz; Path=/;"), "{tls}");
        assert!(tls.ends_with("; Secure") && !tls.contains("Domain"), "{tls}");
        let cleared = clear_cookie(SECURE_COOKIE);
        let cleared = cleared.to_str().expect("ascii");
        assert!(cleared.starts_with("__Host-fleetd_session=;") && cleared.contains("Max-Age=0"));
        assert!(cleared.ends_with("; Secure"), "{cleared}");
    }
}
