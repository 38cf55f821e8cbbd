//! `fleet.backups`: every backup taken and its last verification. fleet-ops records them,
//! forgets pruned ones and the audit reads them. A database not yet migrated to this table (a
//! backup taken before an upgrade) is backed up and verified all the same, only not recorded.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A backup just taken.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub file_name: &'a str,
    pub path: &'a str,
    pub started_at: DateTime<Utc>,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub scheduled: bool,
}

/// A recorded backup as the audit reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRecord {
    pub file_name: String,
    pub finished_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_ok: Option<bool>,
    pub verify_detail: Option<String>,
}

/// Whether the table exists yet (the database may predate migration 0018).
pub async fn table_exists(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select to_regclass('fleet.backups') is not null as "exists!""#)
        .fetch_one(pool)
        .await
}

/// Records a finished backup.
pub async fn record(pool: &PgPool, b: &NewBackup<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.backups (file_name, path, started_at, finished_at, size_bytes, sha256, scheduled)
         values ($1, $2, $3, now(), $4, $5, $6)",
        b.file_name,
        b.path,
        b.started_at,
        b.size_bytes,
        b.sha256,
        b.scheduled
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a pruned scheduled backup (manual ones are never pruned).
pub async fn forget_scheduled(pool: &PgPool, file_name: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from fleet.backups where file_name = $1 and scheduled", file_name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the outcome of verifying the backup with this name and checksum; nothing to record
/// on a database without the table.
pub async fn record_verification(
    pool: &PgPool,
    file_name: &str,
    sha256: &str,
    ok: bool,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let done = sqlx::query!(
        "update fleet.backups set verified_at = now(), verify_ok = $3, verify_detail = $4
         where file_name = $1 and sha256 = $2",
        file_name,
        sha256,
        ok,
        detail
    )
    .execute(pool)
    .await;
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => Ok(()),
        Err(e) => Err(e),
    }
}

/// The newest backup taken.
pub async fn newest(pool: &PgPool) -> Result<Option<BackupRecord>, sqlx::Error> {
    sqlx::query_as!(
        BackupRecord,
        "select file_name, finished_at, verified_at, verify_ok, verify_detail
         from fleet.backups order by finished_at desc limit 1"
    )
    .fetch_optional(pool)
    .await
}

/// The backup verified last (whichever it was): whether restores work.
pub async fn newest_verification(pool: &PgPool) -> Result<Option<BackupRecord>, sqlx::Error> {
    sqlx::query_as!(
        BackupRecord,
        "select file_name, finished_at, verified_at, verify_ok, verify_detail
         from fleet.backups where verified_at is not null order by verified_at desc limit 1"
    )
    .fetch_optional(pool)
    .await
}
