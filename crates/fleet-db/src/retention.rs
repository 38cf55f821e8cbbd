//! Retention: old data is removed on a schedule, under the `retention` lease so that only one
//! process of those sharing a database does it.
//!
//! Positions go by whole monthly partitions: a partition is detached and dropped once its upper
//! bound is at or before the cutoff, so every row in it is older than the retention period.
//! That costs a catalog change instead of a mass DELETE (no dead tuples, no vacuum debt, no
//! long lock on live rows). The partition holding the cutoff stays until it has expired in
//! full, so positions are kept *at least* the configured period. The default partition is never
//! dropped. Tables that are not partitioned (trips, alarms, KPI rows, the vendor's per-fix
//! feeds) are small next to positions; their expired rows are deleted in bounded batches, each
//! its own short transaction.

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};
use fleet_config::RetentionConfig;
use sqlx::PgPool;

use crate::lease::{Lease, LeaseOptions};
use crate::partitions;
use crate::{Context, DbError};

/// Name of the lease retention runs under.
pub const RETENTION_LEASE: &str = "retention";

/// Rows deleted per statement from a non-partitioned table.
const DELETE_BATCH: i64 = 10_000;

/// What one retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Positions partitions dropped, oldest first.
    pub dropped_partitions: Vec<String>,
    /// Rows deleted per table, for tables that lost any.
    pub deleted_rows: Vec<(String, u64)>,
}

/// Non-partitioned tables and the time column their age is read from, by policy period.
const FEEDS: [(&str, &str); 4] = [
    ("fleet.heartbeats", "gate_time"),
    ("fleet.device_events", "event_time"),
    ("fleet.cell_fixes", "gate_time"),
    ("fleet.sensor_readings", "reading_time"),
];
/// Notifications follow the alarms' period: events (their outbox rows, attempts and in-app rows
/// go with them), then what has no event of its own (test messages) or outlived it.
const NOTIFICATION_TABLES: [(&str, &str); 3] = [
    ("fleet.notify_events", "created_at"),
    ("fleet.notify_outbox", "created_at"),
    ("fleet.notify_inbox", "created_at"),
];
const TRIP_TABLES: [(&str, &str); 4] = [
    ("fleet.trips", "start_time"),
    ("fleet.stops", "start_time"),
    ("fleet.geofence_events", "event_time"),
    ("fleet.vendor_trips", "start_time"),
];

fn cutoff(now: DateTime<Utc>, days: Option<u32>) -> Option<DateTime<Utc>> {
    days.and_then(|d| now.checked_sub_signed(TimeDelta::days(i64::from(d))))
}

/// Runs retention under the [`RETENTION_LEASE`]; `Ok(None)` when another session holds it.
pub async fn run_with_lease(
    pool: &PgPool,
    policy: &RetentionConfig,
    now: DateTime<Utc>,
) -> Result<Option<RetentionReport>, DbError> {
    let Some(lease) = Lease::try_acquire(pool, RETENTION_LEASE, LeaseOptions::default()).await?
    else {
        return Ok(None);
    };
    let result = apply(pool, policy, now).await;
    lease.release().await;
    result.map(Some)
}

/// Removes everything `policy` says has expired at `now`. Call under the lease
/// ([`run_with_lease`]); by itself this does not coordinate with other processes.
pub async fn apply(
    pool: &PgPool,
    policy: &RetentionConfig,
    now: DateTime<Utc>,
) -> Result<RetentionReport, DbError> {
    let mut report = RetentionReport::default();
    if let Some(cut) = cutoff(now, policy.positions_days) {
        report.dropped_partitions = drop_expired_partitions(pool, cut).await?;
        for (table, column) in FEEDS {
            delete_older(pool, table, column, cut, &mut report).await?;
        }
        // the KPI step's fix aggregates summarise positions and go with them: every local day
        // that may hold a fix before the cut (zones run up to 14 h ahead of UTC). A day whose
        // aggregate is gone is recounted from the fixes left if it is ever refreshed again.
        let day: NaiveDate = (cut + TimeDelta::days(1)).date_naive();
        delete_older(pool, "fleet.kpi_fix_days", "local_date", day, &mut report).await?;
    }
    if let Some(cut) = cutoff(now, policy.trips_days) {
        for (table, column) in TRIP_TABLES {
            delete_older(pool, table, column, cut, &mut report).await?;
        }
    }
    if let Some(cut) = cutoff(now, policy.alarms_days) {
        delete_older(pool, "fleet.alarms", "alarm_time", cut, &mut report).await?;
        for (table, column) in NOTIFICATION_TABLES {
            delete_older(pool, table, column, cut, &mut report).await?;
        }
    }
    if let Some(cut) = cutoff(now, policy.kpi_days) {
        // KPI rows are keyed by local date, not by an instant
        let day: NaiveDate = cut.date_naive();
        delete_older(pool, "fleet.kpi_daily", "local_date", day, &mut report).await?;
    }
    if !report.dropped_partitions.is_empty() || !report.deleted_rows.is_empty() {
        tracing::info!(
            partitions = ?report.dropped_partitions,
            rows = ?report.deleted_rows,
            "retention removed expired data"
        );
    }
    Ok(report)
}

/// Partitions of `fleet.positions` whose every row is older than `cutoff`, oldest first.
pub async fn expired_partitions(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    Ok(partitions::list(pool)
        .await?
        .into_iter()
        .filter(|p| p.to.is_some_and(|to| to <= cutoff))
        .map(|p| p.name)
        .collect())
}

/// Detaches and drops each expired partition in a transaction of its own, holding the same
/// lock `fleet.create_positions_partition` takes so a concurrent create never sees half a change.
async fn drop_expired_partitions(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    let mut dropped = Vec::new();
    for name in expired_partitions(pool, cutoff).await? {
        let mut tx = pool.begin().await.context("starting a partition drop")?;
        sqlx::query("select pg_advisory_xact_lock(hashtext('fleet.positions partitions'))")
            .execute(&mut *tx)
            .await
            .context("locking positions partitions")?;
        let ident = crate::pool::quote_ident(&name);
        sqlx::query(&format!("alter table fleet.positions detach partition fleet.{ident}"))
            .execute(&mut *tx)
            .await
            .context("detaching an expired positions partition")?;
        sqlx::query(&format!("drop table fleet.{ident}"))
            .execute(&mut *tx)
            .await
            .context("dropping an expired positions partition")?;
        tx.commit().await.context("committing a partition drop")?;
        tracing::info!(partition = %name, cutoff = %cutoff, "expired positions partition dropped");
        dropped.push(name);
    }
    Ok(dropped)
}

/// Deletes rows of `table` with `column < cutoff` in batches of [`DELETE_BATCH`]; `cutoff`
/// is an instant or a date, as the column is.
async fn delete_older<T>(
    pool: &PgPool,
    table: &str,
    column: &str,
    cutoff: T,
    report: &mut RetentionReport,
) -> Result<(), DbError>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Copy + Send,
{
    // table and column come from the constants above, never from input
    let sql = format!(
        "delete from {table} where ctid = any(array(
             select ctid from {table} where {column} < $1 limit $2))"
    );
    let mut total = 0u64;
    loop {
        let n = sqlx::query(&sql)
            .bind(cutoff)
            .bind(DELETE_BATCH)
            .execute(pool)
            .await
            .context("deleting expired rows")?
            .rows_affected();
        total += n;
        if n == 0 {
            break;
        }
    }
    if total > 0 {
        report.deleted_rows.push((table.to_owned(), total));
    }
    Ok(())
}
