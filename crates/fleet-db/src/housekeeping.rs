//! Bounds on tables that would otherwise grow without limit.

use sqlx::PgPool;

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
