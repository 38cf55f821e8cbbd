//! Schema migrations: ordered SQL files in `migrations/`, embedded in the binary and applied by
//! sqlx's migrator, which checksums each file and holds an advisory lock while it runs, so any
//! number of fleetd processes may start at once and each migration is applied exactly once.
//! Landed migrations never change (`migrations.sha384`); the few that changed before that rule
//! are accepted in their earlier texts ([`earlier`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};

use crate::{Context, DbError};

mod earlier;
pub use earlier::earlier_texts;

/// Every migration fleetd knows, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Key of the advisory lock serialising fleetd's migrate step (status, then the migrator), so
/// the count of migrations each process applied is exact when several start at once.
const MIGRATE_LOCK_KEY: i64 = 0x464c_5444_4d49_4752;

/// Applies pending migrations; returns how many this call applied.
pub async fn run(pool: &PgPool) -> Result<usize, DbError> {
    let mut guard = pool.acquire().await.context("taking a connection for migrating")?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *guard)
        .await
        .context("waiting for the migration lock")?;
    // everything on this one connection: a pool budget of 1 must not deadlock
    let result = async {
        accept_earlier_texts(&mut guard).await?;
        let pending = status_on(&mut guard).await?.pending.len();
        MIGRATOR.run(&mut *guard).await?;
        Ok::<_, DbError>(pending)
    }
    .await;
    let unlocked = sqlx::query("select pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *guard)
        .await;
    if unlocked.is_err() {
        // a session holding the lock must not go back to the pool
        guard.close_on_drop();
    }
    let pending = result?;
    if pending > 0 {
        tracing::info!(migrations.applied = pending, "database migrated");
    }
    Ok(pending)
}

/// Points history rows that hold the checksum of a known earlier text of their migration at the
/// current text, so sqlx's checksum check passes; migration 0027 makes up for what the earlier
/// texts did not create. Any other mismatch is left for sqlx to refuse.
async fn accept_earlier_texts(conn: &mut PgConnection) -> Result<(), DbError> {
    if !history_exists(conn).await? {
        return Ok(());
    }
    let rows = sqlx::query!("select version, checksum from public._sqlx_migrations where success")
        .fetch_all(&mut *conn)
        .await
        .context("reading the migration checksums")?;
    for row in rows {
        let Some(current) = MIGRATOR.iter().find(|m| m.version == row.version) else {
            continue;
        };
        if current.checksum.as_ref() == row.checksum.as_slice()
            || !earlier::is_earlier_text(row.version, &row.checksum)
        {
            continue;
        }
        sqlx::query!(
            "update public._sqlx_migrations set checksum = $1
             where version = $2 and checksum = $3 and success",
            current.checksum.as_ref(),
            row.version,
            row.checksum,
        )
        .execute(&mut *conn)
        .await
        .context("recording the current text of an edited migration")?;
        tracing::info!(
            migration.version = row.version,
            migration.description = %current.description,
            "migration was applied in an earlier text; its checksum now names the current text"
        );
    }
    Ok(())
}

async fn history_exists(conn: &mut PgConnection) -> Result<bool, DbError> {
    sqlx::query_scalar!(r#"select to_regclass('public._sqlx_migrations') is not null as "exists!""#)
        .fetch_one(&mut *conn)
        .await
        .context("checking for the migrations table")
}

/// A row of sqlx's `_sqlx_migrations`: version, description, installed_on, success, checksum.
type HistoryRow = (i64, String, DateTime<Utc>, bool, Vec<u8>);

/// One migration as the database records it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    pub installed_on: DateTime<Utc>,
}

/// What is applied, what is pending, and anything that does not match the binary.
#[derive(Debug, Clone, Default)]
pub struct MigrationStatus {
    pub applied: Vec<AppliedMigration>,
    pub pending: Vec<(i64, String)>,
    /// Applied migrations whose file changed since (a checksum mismatch), or that failed.
    pub mismatched: Vec<i64>,
    /// Applied versions this binary does not know (the database is newer than fleetd).
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    /// The schema is exactly what this binary expects.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.mismatched.is_empty() && self.unknown.is_empty()
    }
}

/// Compares the database's migration history with the embedded migrations.
pub async fn status(pool: &PgPool) -> Result<MigrationStatus, DbError> {
    let mut conn = pool.acquire().await.context("taking a connection for the migration status")?;
    status_on(&mut conn).await
}

async fn status_on(conn: &mut PgConnection) -> Result<MigrationStatus, DbError> {
    let rows: Vec<HistoryRow> = if history_exists(conn).await? {
        sqlx::query_as(
            "select version, description, installed_on, success, checksum
             from public._sqlx_migrations order by version",
        )
        .fetch_all(&mut *conn)
        .await
        .context("reading the migration history")?
    } else {
        Vec::new()
    };

    let known: HashMap<i64, &sqlx::migrate::Migration> =
        MIGRATOR.iter().map(|m| (m.version, m)).collect();
    let mut st = MigrationStatus::default();
    for (version, description, installed_on, success, checksum) in &rows {
        match known.get(version) {
            None => st.unknown.push(*version),
            // an earlier text is repaired by the next migrate, not a mismatch
            Some(m)
                if !success
                    || (m.checksum.as_ref() != checksum.as_slice()
                        && !earlier::is_earlier_text(*version, checksum)) =>
            {
                st.mismatched.push(*version)
            }
            Some(_) => {}
        }
        st.applied.push(AppliedMigration {
            version: *version,
            description: description.clone(),
            installed_on: *installed_on,
        });
    }
    st.pending = MIGRATOR
        .iter()
        .filter(|m| !rows.iter().any(|r| r.0 == m.version))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    Ok(st)
}
