//! The people who sign in (`fleet.users`): creation with validation, changes that keep at
//! least one active admin, login checks, and the demo admin. Used by the `/api/v1/users` routes
//! and by the `fleetd user add` command alike. Password hashes never leave this module.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{is_unique_violation, FieldError};
use crate::{password, AccountError, Role};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub user_id: i32,
    /// Login name: 1-64 of letters, digits and `_ . @ -`; unique ignoring case.
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Inactive users cannot log in, and their sessions and tokens stop working.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// Checks a username against the rule the table enforces.
pub fn check_username(username: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.@-".contains(c);
    match username.chars().count() {
        0 => Err("must not be empty".to_owned()),
        65.. => Err("at most 64 characters".to_owned()),
        _ if !username.chars().all(ok_char) => {
            Err("only letters, digits and _ . @ - are allowed".to_owned())
        }
        _ => Ok(()),
    }
}

/// Checks a display name: at most 100 characters, no control or invisible formatting
/// characters.
pub fn check_display_name(name: &str) -> Result<(), String> {
    fleet_core::text::check_name(name, 100).map_err(|e| e.to_string())
}

/// The field errors of a user to create (empty when it is valid).
pub fn check_new(username: &str, display_name: &str, password: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Err(m) = check_username(username) {
        errors.push(FieldError::new("username", m));
    }
    if let Err(m) = check_display_name(display_name) {
        errors.push(FieldError::new("display_name", m));
    }
    if let Err(m) = password::check_policy(password) {
        errors.push(FieldError::new("password", m));
    }
    errors
}

/// Creates a user; `Invalid` for an invalid field, `Conflict` when the username is taken
/// (ignoring case).
pub async fn create(pool: &PgPool, new: NewUser) -> Result<User, AccountError> {
    let errors = check_new(&new.username, &new.display_name, &new.password);
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let hash = password::hash_async(new.password).await?;
    sqlx::query_as!(
        User,
        r#"insert into fleet.users (username, display_name, password_hash, role)
           values ($1, $2, $3, $4)
           returning user_id, username, display_name, role as "role: Role", active,
                     created_at, updated_at, last_login_at"#,
        new.username,
        new.display_name.trim(),
        hash,
        new.role.as_str(),
    )
    .fetch_one(pool)
    .await
    .map_err(|e| match is_unique_violation(&e) {
        true => AccountError::Conflict(format!("the username {:?} is taken", new.username)),
        false => e.into(),
    })
}

/// Every user, by id.
pub async fn list(pool: &PgPool) -> Result<Vec<User>, AccountError> {
    Ok(sqlx::query_as!(
        User,
        r#"select user_id, username, display_name, role as "role: Role", active,
                  created_at, updated_at, last_login_at
           from fleet.users order by user_id"#
    )
    .fetch_all(pool)
    .await?)
}

/// One user, or `NotFound`.
pub async fn get(pool: &PgPool, user_id: i32) -> Result<User, AccountError> {
    sqlx::query_as!(
        User,
        r#"select user_id, username, display_name, role as "role: Role", active,
                  created_at, updated_at, last_login_at
           from fleet.users where user_id = $1"#,
        user_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found(user_id))
}

fn not_found(user_id: i32) -> AccountError {
    AccountError::NotFound(format!("there is no user {user_id}"))
}

/// The id of the user with this username (ignoring case), if any.
pub async fn id_of(pool: &PgPool, username: &str) -> Result<Option<i32>, AccountError> {
    Ok(sqlx::query_scalar!(
        "select user_id from fleet.users where lower(username) = lower($1)",
        username
    )
    .fetch_optional(pool)
    .await?)
}

/// The id of the active user `username` (ignoring case) when `password` is theirs. An unknown
/// username costs as long as a wrong password, so the time taken does not tell which it was.
pub async fn check_password(
    pool: &PgPool,
    username: &str,
    password: String,
) -> Result<Option<i32>, AccountError> {
    let found = sqlx::query!(
        "select user_id, password_hash from fleet.users
         where lower(username) = lower($1) and active",
        username
    )
    .fetch_optional(pool)
    .await?;
    let (user_id, hash) = found.map(|r| (r.user_id, r.password_hash)).unzip();
    let ok = password::verify_async(password, hash).await?;
    Ok(user_id.filter(|_| ok))
}

/// Notes a successful login.
pub async fn record_login(pool: &PgPool, user_id: i32) -> Result<(), AccountError> {
    sqlx::query!("update fleet.users set last_login_at = now() where user_id = $1", user_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Applies `changes`. Deactivating a user or setting a password ends the user's sessions.
/// Refused with `Conflict` when it would leave no active admin.
pub async fn update(
    pool: &PgPool,
    user_id: i32,
    changes: UserChanges,
) -> Result<User, AccountError> {
    let mut errors = Vec::new();
    if let Some(Err(m)) = changes.display_name.as_deref().map(check_display_name) {
        errors.push(FieldError::new("display_name", m));
    }
    if let Some(Err(m)) = changes.password.as_deref().map(password::check_policy) {
        errors.push(FieldError::new("password", m));
    }
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let hash = match changes.password {
        Some(p) => Some(password::hash_async(p).await?),
        None => None,
    };
    let mut tx = pool.begin().await?;
    lock_admins(&mut tx).await?;
    let user = sqlx::query_as!(
        User,
        r#"update fleet.users set
               display_name = coalesce($2, display_name),
               role = coalesce($3, role),
               active = coalesce($4, active),
               password_hash = coalesce($5, password_hash)
           where user_id = $1
           returning user_id, username, display_name, role as "role: Role", active,
                     created_at, updated_at, last_login_at"#,
        user_id,
        changes.display_name.as_deref().map(str::trim),
        changes.role.map(Role::as_str),
        changes.active,
        hash.as_deref(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| not_found(user_id))?;
    ensure_an_admin_remains(&mut tx).await?;
    if hash.is_some() || changes.active == Some(false) {
        sqlx::query!("delete from fleet.sessions where user_id = $1", user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Deletes a user with their sessions and tokens; what they acknowledged or configured keeps
/// its history without their name. Refused with `Conflict` for the last active admin.
pub async fn delete(pool: &PgPool, user_id: i32) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    lock_admins(&mut tx).await?;
    let n = sqlx::query!("delete from fleet.users where user_id = $1", user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(not_found(user_id));
    }
    ensure_an_admin_remains(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Serialises changes that could remove the last admin (two admins demoting each other).
async fn lock_admins(tx: &mut sqlx::PgConnection) -> Result<(), AccountError> {
    sqlx::query!("select user_id from fleet.users where role = 'admin' and active for update")
        .fetch_all(tx)
        .await?;
    Ok(())
}

async fn ensure_an_admin_remains(tx: &mut sqlx::PgConnection) -> Result<(), AccountError> {
    let admins = sqlx::query_scalar!(
        r#"select count(*) as "n!" from fleet.users where role = 'admin' and active"#
    )
    .fetch_one(tx)
    .await?;
    if admins == 0 {
        return Err(AccountError::Conflict(
            "fleetd must keep at least one active admin; make another user admin first".to_owned(),
        ));
    }
    Ok(())
}

/// Creates `username` as an active admin with `password`, or makes the existing user one and
/// resets their password (ending their sessions). Used by `fleetd demo`.
pub async fn ensure_admin(
    pool: &PgPool,
    username: &str,
    password: &str,
) -> Result<User, AccountError> {
    if let Some(id) = id_of(pool, username).await? {
        let changes = UserChanges {
            role: Some(Role::Admin),
            active: Some(true),
            password: Some(password.to_owned()),
            display_name: None,
        };
        return update(pool, id, changes).await;
    }
    let new = NewUser {
        username: username.to_owned(),
        display_name: String::new(),
        role: Role::Admin,
        password: password.to_owned(),
    };
    create(pool, new).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_table_rule() {
        for ok in ["alice", "a.b-c_d@example.com", "X", &"a".repeat(64)] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "with space", "ümlaut", &"a".repeat(65), "semi;colon"] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }
}
