//! Ingest health as the operations panels read it: the rows of the views of migrations 0016 and
//! 0025 (docs/SCHEMA.md, "Ingest health"), whole, as JSON objects, so a column added to a view
//! reaches the panels without a change here.

use serde_json::Value;
use sqlx::PgPool;

/// Device statuses of `reporting.v_ingest_health_devices`.
pub const DEVICE_STATUSES: [&str; 4] = ["live", "stale", "offline", "never_seen"];

/// Every row of `reporting.v_ingest_health_jobs`, by job.
pub async fn jobs(pool: &PgPool) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select to_jsonb(j) as "row!" from reporting.v_ingest_health_jobs j
           where j.job is not null order by j.job"#
    )
    .fetch_all(pool)
    .await
}

/// Up to `limit` rows of `reporting.v_ingest_health_devices` after device `after`, by device
/// id, only those with `status` when given; each with its device id.
pub async fn devices(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<(i32, Value)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select v.device_id as "device_id!", to_jsonb(v) as "row!"
           from reporting.v_ingest_health_devices v
           where ($1::text is null or v.status = $1)
             and ($2::int is null or v.device_id > $2)
           order by v.device_id
           limit $3"#,
        status,
        after,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.device_id, r.row)).collect())
}

/// A job's health, as the audit and the ops alerts judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHealth {
    pub job: String,
    /// poll, backfill, writer_window or other.
    pub run_kind: String,
    /// ok, failing, stale or never.
    pub status: String,
    pub consecutive_failures: i64,
    pub last_error: Option<String>,
    /// Seconds since the last success; `None` when the job never succeeded.
    pub lag_s: Option<i64>,
}

/// Every job but the manual backfill, by job.
pub async fn scheduled_jobs(pool: &PgPool) -> Result<Vec<JobHealth>, sqlx::Error> {
    sqlx::query_as!(
        JobHealth,
        r#"select job as "job!", run_kind as "run_kind!", status as "status!",
                  consecutive_failures as "consecutive_failures!", last_error, lag_s
           from reporting.v_ingest_health_jobs where job <> 'backfill'
           order by job"#
    )
    .fetch_all(pool)
    .await
}

/// The poll jobs that are stale or failed at least `failures` times in a row.
pub async fn troubled_polls(pool: &PgPool, failures: i64) -> Result<Vec<JobHealth>, sqlx::Error> {
    sqlx::query_as!(
        JobHealth,
        r#"select job as "job!", run_kind as "run_kind!", status as "status!",
                  consecutive_failures as "consecutive_failures!", last_error, lag_s
           from reporting.v_ingest_health_jobs
           where run_kind = 'poll' and (status = 'stale' or consecutive_failures >= $1)"#,
        failures,
    )
    .fetch_all(pool)
    .await
}

/// Active devices whose status is offline ([`crate::live`]'s rule, `fleet.device_status`).
pub async fn offline_devices(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from reporting.v_ingest_health_devices where status = 'offline'"#
    )
    .fetch_one(pool)
    .await
}
