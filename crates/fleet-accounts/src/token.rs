//! Bearer API tokens for integrations: `fltd_` and 43 random base64url characters. Only the
//! SHA-256 hash and the first characters (to tell tokens apart) are stored in
//! `fleet.api_tokens`; the token itself is shown once, when it is created. A token acts as its
//! user, with the user's current role; it stops working when revoked, expired, or when the
//! user is deactivated or deleted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::{secret, AccountError, Credential, Principal, Role};

/// What every token starts with, so leaked tokens are easy to recognise and scan for.
pub const PREFIX: &str = "fltd_";
/// Characters of a token stored and shown as its `token_prefix`.
pub const SHOWN_CHARS: usize = 12;
/// `last_used_at` is written at most this often per token, seconds.
pub const TOUCH_EVERY_S: f64 = 60.0;

/// A token as listed (never the token itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub token_id: i32,
    pub user_id: i32,
    /// The user the token acts as.
    pub username: String,
    /// What the token is for, as given when it was created.
    pub name: String,
    /// The token's first characters, e.g. `fltd_Ab3dE6g`.
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    /// Last request made with the token (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time the token itself is available.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: String,
    pub info: TokenInfo,
}

/// Checks a token name: 1-100 characters, no control or invisible formatting characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    fleet_core::text::check_name(name, 100).map_err(|e| e.to_string())
}

/// Creates a token for `user_id`. Fails with `NotFound` when there is no such user.
pub async fn create(
    pool: &PgPool,
    user_id: i32,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<NewToken, AccountError> {
    let token = format!("{PREFIX}{}", secret::random());
    let shown: String = token.chars().take(SHOWN_CHARS).collect();
    // the insert's own row, named like the listed ones (a CTE's columns read as nullable)
    let info = sqlx::query_as!(
        TokenInfo,
        r#"with t as (
               insert into fleet.api_tokens (user_id, name, token_prefix, token_hash, expires_at)
               select user_id, $2, $3, $4, $5 from fleet.users where user_id = $1
               returning *
           )
           select t.token_id as "token_id!", t.user_id as "user_id!", u.username,
                  t.name as "name!", t.token_prefix as "token_prefix!",
                  t.created_at as "created_at!", t.last_used_at, t.expires_at, t.revoked_at
           from t join fleet.users u using (user_id)"#,
        user_id,
        name,
        shown,
        secret::hash(&token),
        expires_at,
    )
    .fetch_optional(pool)
    .await?;
    let info = info.ok_or_else(|| AccountError::NotFound(format!("there is no user {user_id}")))?;
    Ok(NewToken { token, info })
}

/// Every token, newest first, revoked ones included.
pub async fn list(pool: &PgPool) -> Result<Vec<TokenInfo>, AccountError> {
    Ok(sqlx::query_as!(
        TokenInfo,
        "select t.token_id, t.user_id, u.username, t.name, t.token_prefix,
                t.created_at, t.last_used_at, t.expires_at, t.revoked_at
         from fleet.api_tokens t join fleet.users u using (user_id)
         order by t.token_id desc"
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes a token; revoking a revoked token keeps its first revocation time. `false` when
/// there is no such token.
pub async fn revoke(pool: &PgPool, token_id: i32) -> Result<bool, AccountError> {
    let n = sqlx::query!(
        "update fleet.api_tokens set revoked_at = coalesce(revoked_at, now()) where token_id = $1",
        token_id
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// The user of a usable token, noting its use (at most once a minute).
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Principal>, AccountError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"with touched as (
               update fleet.api_tokens set last_used_at = now()
                where token_hash = $1 and revoked_at is null
                  and (expires_at is null or expires_at > now())
                  and (last_used_at is null or last_used_at < now() - make_interval(secs => $2))
               returning token_id
           )
           select t.token_id, u.user_id, u.username, u.role as "role: Role"
           from fleet.api_tokens t join fleet.users u using (user_id)
           where t.token_hash = $1 and t.revoked_at is null
             and (t.expires_at is null or t.expires_at > now()) and u.active"#,
        secret::hash(token),
        TOUCH_EVERY_S,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Principal {
        user_id: r.user_id,
        username: r.username,
        role: r.role,
        credential: Credential::Token { token_id: r.token_id },
    }))
}
