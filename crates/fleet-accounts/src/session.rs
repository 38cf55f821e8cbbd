//! Login sessions of the web apps, stored in `fleet.sessions` so every fleetd process behind a
//! load balancer knows them and they survive restarts. The browser holds a random session id
//! (in a cookie the HTTP server sets); the table holds only its SHA-256 hash.
//!
//! A session ends at logout, after [`IDLE_TIMEOUT`] without a request, after [`MAX_LIFETIME`]
//! whatever the activity, and when its user is deactivated, deleted or given a new password.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::{secret, AccountError, Credential, Principal, Role};

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
) -> Result<NewSession, AccountError> {
    sqlx::query!("delete from fleet.sessions where expires_at <= now()").execute(pool).await?;
    let id = secret::random();
    let expires_at = sqlx::query_scalar!(
        "insert into fleet.sessions (session_hash, user_id, expires_at, user_agent, ip)
         values ($1, $2, now() + make_interval(secs => $3), $4, $5::text::inet)
         returning expires_at",
        secret::hash(&id),
        user_id,
        IDLE_TIMEOUT.as_secs_f64(),
        user_agent,
        ip.map(|i| i.to_string()),
    )
    .fetch_one(pool)
    .await?;
    Ok(NewSession { id, expires_at })
}

/// The user of a live session, sliding its idle expiry forward (at most once a minute).
pub async fn authenticate(pool: &PgPool, id: &str) -> Result<Option<Principal>, AccountError> {
    let hash = secret::hash(id);
    let row = sqlx::query!(
        r#"with touched as (
               update fleet.sessions
                  set last_seen_at = now(),
                      expires_at = least(now() + make_interval(secs => $2), created_at + make_interval(secs => $3))
                where session_hash = $1 and expires_at > now()
                  and last_seen_at < now() - make_interval(secs => $4)
               returning session_hash
           )
           select u.user_id, u.username, u.role as "role: Role"
           from fleet.sessions s join fleet.users u using (user_id)
           where s.session_hash = $1 and s.expires_at > now() and u.active"#,
        hash,
        IDLE_TIMEOUT.as_secs_f64(),
        MAX_LIFETIME.as_secs_f64(),
        TOUCH_EVERY.as_secs_f64(),
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Principal {
        user_id: r.user_id,
        username: r.username,
        role: r.role,
        credential: Credential::Session { session_hash: hash },
    }))
}

/// When the session with this hash expires, if it is live.
pub async fn expires_at(
    pool: &PgPool,
    session_hash: &str,
) -> Result<Option<DateTime<Utc>>, AccountError> {
    Ok(sqlx::query_scalar!(
        "select expires_at from fleet.sessions where session_hash = $1 and expires_at > now()",
        session_hash
    )
    .fetch_optional(pool)
    .await?)
}

/// Ends the session with this hash (logout). Ending an ended session is not an error.
pub async fn end(pool: &PgPool, session_hash: &str) -> Result<(), AccountError> {
    sqlx::query!("delete from fleet.sessions where session_hash = $1", session_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends the session whose id (the cookie's value) is `id`, if there is one.
pub async fn end_id(pool: &PgPool, id: &str) -> Result<(), AccountError> {
    end(pool, &secret::hash(id)).await
}
