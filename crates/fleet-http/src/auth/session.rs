//! Login sessions of the web apps, stored in `fleet.sessions` so every fleetd process behind a
//! load balancer knows them and they survive restarts. The browser holds a random session id in
//! a cookie (HttpOnly, SameSite=Lax, Path=/); the table holds only its SHA-256 hash. Over HTTPS
//! the cookie is `__Host-fleetd_session` (Secure): browsers accept that name only from a secure
//! origin, for the whole host and no domain, so neither a plain-HTTP page nor a sibling
//! subdomain can plant or overwrite it. Over plain HTTP it is `fleetd_session`.
//!
//! A session ends at logout, after [`IDLE_TIMEOUT`] without a request, after [`MAX_LIFETIME`]
//! whatever the activity, and when its user is deactivated, deleted or given a new password.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{secret, Credential, Principal, Role};
use crate::ApiError;

/// Name of the session cookie over plain HTTP.
pub const COOKIE: &str = "fleetd_session";
/// Name of the session cookie over HTTPS.
pub const SECURE_COOKIE: &str = "__Host-fleetd_session";
/// A session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// No session lasts longer than this after login.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// `last_seen_at` (and with it the idle expiry) is written at most this often per session.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A session just created at login.
#[derive(Debug)]
pub struct NewSession {
    /// The session id for the cookie; never stored.
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session for `user_id`, deleting expired sessions of every user on the way (logins
/// are rare enough to carry that housekeeping).
pub async fn create(
    pool: &PgPool,
    user_id: i32,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
) -> Result<NewSession, ApiError> {
    sqlx::query("delete from fleet.sessions where expires_at <= now()").execute(pool).await?;
    let id = secret::random();
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into fleet.sessions (session_hash, user_id, expires_at, user_agent, ip)
         values ($1, $2, now() + make_interval(secs => $3), $4, $5::inet)
         returning expires_at",
    )
    .bind(secret::hash(&id))
    .bind(user_id)
    .bind(IDLE_TIMEOUT.as_secs_f64())
    .bind(user_agent)
    .bind(ip.map(|i| i.to_string()))
    .fetch_one(pool)
    .await?;
    Ok(NewSession { id, expires_at })
}

/// The user of a live session, sliding its idle expiry forward (at most once a minute).
pub async fn authenticate(pool: &PgPool, id: &str) -> Result<Option<Principal>, ApiError> {
    let hash = secret::hash(id);
    let row: Option<(i32, String, String)> = sqlx::query_as(
        "with touched as (
             update fleet.sessions
                set last_seen_at = now(),
                    expires_at = least(now() + make_interval(secs => $2), created_at + make_interval(secs => $3))
              where session_hash = $1 and expires_at > now()
                and last_seen_at < now() - make_interval(secs => $4)
             returning session_hash
         )
         select u.user_id, u.username, u.role
         from fleet.sessions s join fleet.users u using (user_id)
         where s.session_hash = $1 and s.expires_at > now() and u.active",
    )
    .bind(&hash)
    .bind(IDLE_TIMEOUT.as_secs_f64())
    .bind(MAX_LIFETIME.as_secs_f64())
    .bind(TOUCH_EVERY.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(user_id, username, role)| {
        Some(Principal {
            user_id,
            username,
            role: Role::parse(&role)?,
            credential: Credential::Session { session_hash: hash },
        })
    }))
}

/// When the session with this hash expires, if it is live.
pub async fn expires_at(
    pool: &PgPool,
    session_hash: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    Ok(sqlx::query_scalar(
        "select expires_at from fleet.sessions where session_hash = $1 and expires_at > now()",
    )
    .bind(session_hash)
    .fetch_optional(pool)
    .await?)
}

/// Ends the session with this hash (logout). Ending an ended session is not an error.
pub async fn end(pool: &PgPool, session_hash: &str) -> Result<(), ApiError> {
    sqlx::query("delete from fleet.sessions where session_hash = $1")
        .bind(session_hash)
        .execute(pool)
        .await?;
    Ok(())
}

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
