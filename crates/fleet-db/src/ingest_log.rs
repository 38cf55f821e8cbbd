//! What ingest records about itself, and what ingest health is computed from: one
//! `fleet.ingestion_log` row per poll run or writer window, and the pollers' cursors in
//! `fleet.poll_cursors` (account-wide, or per device).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};

/// One poll run, or one writer window of a push channel.
#[derive(Debug, Clone)]
pub struct RunLog<'a> {
    /// Job name: `poll.live`, `backfill`, `push.gps`, …
    pub job: &'a str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// ok, partial, failed or running.
    pub status: &'a str,
    pub rows_in: i32,
    pub rows_new: i32,
    pub rows_duplicate: i32,
    pub rows_rejected: i32,
    pub error: Option<&'a str>,
    pub detail: Value,
}

/// Appends `run` to `fleet.ingestion_log` (through the pool, or in the writer's transaction).
pub async fn record<'e>(db: impl PgExecutor<'e>, run: &RunLog<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.ingestion_log (job, started_at, finished_at, status, rows_in,
             rows_new, rows_duplicate, rows_rejected, error, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        run.job,
        run.started_at,
        run.finished_at,
        run.status,
        run.rows_in,
        run.rows_new,
        run.rows_duplicate,
        run.rows_rejected,
        run.error,
        &run.detail,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The active devices in device order, each IMEI with its cursor of `job` (if any).
pub async fn active_device_cursors(
    pool: &PgPool,
    job: &str,
) -> Result<Vec<(String, Option<DateTime<Utc>>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select d.imei, c.cursor_time as "cursor_time?" from fleet.devices d
         left join fleet.poll_cursors c on c.job = $1 and c.device_id = d.device_id
         where d.active order by d.device_id"#,
        job,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.imei, r.cursor_time)).collect())
}

/// The account-wide cursor of `job`.
pub async fn account_cursor(
    pool: &PgPool,
    job: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select cursor_time from fleet.poll_cursors where job = $1 and device_id is null",
        job,
    )
    .fetch_optional(pool)
    .await
}

/// Moves the account-wide cursor of `job` forward to `to` (never back).
pub async fn advance_account_cursor(
    pool: &PgPool,
    job: &str,
    to: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.poll_cursors (job, device_id, cursor_time) values ($1, null, $2)
         on conflict (job, device_id) do update
         set cursor_time = greatest(fleet.poll_cursors.cursor_time, excluded.cursor_time)",
        job,
        to,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves the cursor of `job` for the device `imei` forward to `to` (never back).
pub async fn advance_device_cursor(
    pool: &PgPool,
    job: &str,
    imei: &str,
    to: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.poll_cursors (job, device_id, cursor_time)
         select $1, device_id, $3 from fleet.devices where imei = $2
         on conflict (job, device_id) do update
         set cursor_time = greatest(fleet.poll_cursors.cursor_time, excluded.cursor_time)",
        job,
        imei,
        to,
    )
    .execute(pool)
    .await?;
    Ok(())
}
