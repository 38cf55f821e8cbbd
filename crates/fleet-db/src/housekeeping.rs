//! `fleet.ingest_rejects`, the records refused at ingest: stored here, and kept within bounds
//! (it would otherwise grow without limit).

use sqlx::{PgConnection, PgPool};

use crate::{Context, DbError};

/// Rejected records are kept this many days.
pub const REJECTS_KEEP_DAYS: i32 = 30;
/// At most this many rejected records are kept; past it the oldest go first.
pub const REJECTS_MAX_ROWS: i64 = 1_000_000;

/// Deletes rejects older than [`REJECTS_KEEP_DAYS`] and the oldest beyond [`REJECTS_MAX_ROWS`];
/// returns how many were deleted.
pub async fn prune_rejects(pool: &PgPool) -> Result<u64, DbError> {
    let old = sqlx::query!(
        "delete from fleet.ingest_rejects where received_at < now() - make_interval(days => $1)",
        REJECTS_KEEP_DAYS
    )
    .execute(pool)
    .await
    .context("pruning old rejects")?
    .rows_affected();
    let excess = sqlx::query!(
        "delete from fleet.ingest_rejects where reject_id <= (
             select reject_id from fleet.ingest_rejects order by reject_id desc offset $1 limit 1)",
        REJECTS_MAX_ROWS
    )
    .execute(pool)
    .await
    .context("pruning excess rejects")?
    .rows_affected();
    Ok(old + excess)
}

/// Stores refused records of one channel: each with its reason, the IMEI when one could be
/// read, and the record as received (already cut to its stored length).
pub async fn store_rejects(
    conn: &mut PgConnection,
    channel: &str,
    reasons: &[&str],
    imeis: &[Option<&str>],
    raws: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.ingest_rejects (channel, reason, imei, raw)
         select $1, r, i, w from unnest($2::text[], $3::text[], $4::text[]) as t(r, i, w)",
        channel,
        reasons as &[&str],
        imeis as &[Option<&str>],
        raws as &[&str]
    )
    .execute(conn)
    .await?;
    Ok(())
}
