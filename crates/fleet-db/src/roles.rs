//! The read-only analyst role `fleet_ro` and database-level privileges (its limits are in
//! [`crate::analyst_limits`]).
//!
//! The role itself is created by a migration without login. At every start fleetd enables its
//! login with the configured password, or disables login when none is configured, so there is
//! never a default password. The password is sent as a SCRAM-SHA-256 verifier computed here, so
//! the plain text never reaches the server (or its statement log).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use fleet_config::Secret;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::pool::quote_ident;
use crate::{Context, DbError};

pub use crate::analyst_limits::apply_analyst_limits;

/// The analyst role's name.
pub const ANALYST_ROLE: &str = "fleet_ro";

/// What [`apply_analyst_login`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalystLogin {
    Enabled,
    Disabled,
    /// fleetd's own role may not alter roles (no CREATEROLE); left as it was.
    NotPermitted,
}

/// Enables `fleet_ro` login with `password`, or disables login when `None`.
pub async fn apply_analyst_login(
    pool: &PgPool,
    password: Option<&Secret<String>>,
) -> Result<AnalystLogin, DbError> {
    if !may_alter_roles(pool).await? {
        tracing::warn!(
            role = ANALYST_ROLE,
            "fleetd's database role lacks CREATEROLE; analyst login left unchanged"
        );
        return Ok(AnalystLogin::NotPermitted);
    }
    let (sql, outcome) = match password {
        Some(pw) => {
            let verifier = scram_sha256_verifier(pw.expose(), 4096);
            (
                format!("alter role {ANALYST_ROLE} with login password '{verifier}'"),
                AnalystLogin::Enabled,
            )
        }
        None => (
            format!("alter role {ANALYST_ROLE} with nologin password null"),
            AnalystLogin::Disabled,
        ),
    };
    retry_catalog_race(|| sqlx::query(&sql).execute(pool))
        .await
        .context("setting the analyst role's login")?;
    tracing::info!(role = ANALYST_ROLE, login = ?outcome, "analyst role configured");
    Ok(outcome)
}

/// Whether fleetd's role may alter other roles (superuser or CREATEROLE).
pub(crate) async fn may_alter_roles(pool: &PgPool) -> Result<bool, DbError> {
    sqlx::query_scalar(
        "select rolsuper or rolcreaterole from pg_roles where rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("checking fleetd's role attributes")
}

/// Runs a catalog update (ALTER ROLE, GRANT on a database) again when PostgreSQL reports that
/// another session updated the same catalog row at the same moment ("tuple concurrently
/// updated", as when several fleetd processes start together). The role is cluster-wide, so
/// an advisory lock, which is per database, cannot serialise this.
pub(crate) async fn retry_catalog_race<F, Fut, T>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(e))
                if tries < 5 && e.message().contains("concurrently updated") =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries)).await;
            }
            other => return other,
        }
    }
}

/// Takes temporary-table creation away from PUBLIC on the current database (the analyst role
/// must not create anything). Database privileges are not copied from a template, so this runs
/// at every start rather than in a migration.
pub async fn harden_database(pool: &PgPool) -> Result<(), DbError> {
    let (db, me, owner_or_super): (String, String, bool) = sqlx::query_as(
        "select current_database()::text, current_user::text,
                pg_has_role(current_user, d.datdba, 'USAGE')
                  or (select rolsuper from pg_roles where rolname = current_user)
         from pg_database d where d.datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .context("checking database ownership")?;
    if !owner_or_super {
        tracing::warn!(database = %db, "fleetd does not own the database; PUBLIC may still create temporary tables");
        return Ok(());
    }
    let public_has_temp: bool = sqlx::query_scalar(
        "select exists (select from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                        where d.datname = current_database() and a.grantee = 0 and a.privilege_type = 'TEMPORARY')",
    )
    .fetch_one(pool)
    .await
    .context("reading database privileges")?;
    if !public_has_temp {
        return Ok(());
    }
    let db = quote_ident(&db);
    let revoke = format!("revoke temporary on database {db} from public");
    let grant = format!("grant temporary on database {db} to {}", quote_ident(&me));
    retry_catalog_race(|| sqlx::query(&grant).execute(pool))
        .await
        .context("granting temporary tables to fleetd")?;
    retry_catalog_race(|| sqlx::query(&revoke).execute(pool))
        .await
        .context("revoking temporary tables from PUBLIC")?;
    Ok(())
}

/// A SCRAM-SHA-256 password verifier in PostgreSQL's stored format (RFC 5803 / RFC 7677).
pub fn scram_sha256_verifier(password: &str, iterations: u32) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    scram_with_salt(password, &salt, iterations)
}

/// Whether `password` is the one behind a stored SCRAM-SHA-256 verifier (what
/// `pg_authid.rolpassword` holds); false for anything that is not such a verifier.
pub fn scram_matches(verifier: &str, password: &str) -> bool {
    let parse = || {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, _) = rest.split_once('$')?;
        let (iter, salt) = iter_salt.split_once(':')?;
        let iterations: u32 = iter.parse().ok().filter(|n| *n > 0 && *n <= 1_000_000)?;
        let salt = B64.decode(salt).ok()?;
        Some((iterations, salt))
    };
    match parse() {
        Some((iterations, salt)) => scram_with_salt(password, &salt, iterations) == verifier,
        None => false,
    }
}

fn scram_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_an_independent_computation() {
        // the RFC 7677 example's password and salt; expected value computed separately with
        // Python's hashlib.pbkdf2_hmac and hmac (the embedded-cluster test also logs in with
        // a verifier made here, proving PostgreSQL accepts it)
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let v = scram_with_salt("pencil", &salt, 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        assert!(scram_matches(&v, "pencil"));
        assert!(!scram_matches(&v, "pencil2"));
        assert!(!scram_matches("md5abc", "pencil"));
    }
}
