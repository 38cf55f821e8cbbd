//! The KPI step: refreshes `fleet.kpi_daily` for the device-days the trip builder queued in
//! `fleet.kpi_backlog`.
//!
//! It runs on a slower cadence than trips because a day's KPIs read every fix of that day
//! (coverage, reporting time, odometer, the midnight split); changes queued meanwhile for one
//! device merge into one range, so each day is recomputed once per step however many trip passes
//! touched it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What one KPI step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KpiReport {
    pub devices: usize,
    /// `fleet.kpi_daily` rows written.
    pub rows: i64,
}

type KpiClaim = (i32, Option<DateTime<Utc>>, DateTime<Utc>, i64);

/// Refreshes every queued device, `chunk` devices per transaction; `progress` is called after
/// each chunk. Call it while holding the trip-builder lease. Runs in a `kpi_refresh` span.
#[tracing::instrument(name = "kpi_refresh", skip_all, fields(chunk_devices = chunk))]
pub async fn refresh_queued(
    pool: &PgPool,
    chunk: i64,
    mut progress: impl FnMut(&KpiReport),
) -> Result<KpiReport, sqlx::Error> {
    let mut report = KpiReport::default();
    let mut after = 0;
    loop {
        let claims: Vec<KpiClaim> = sqlx::query_as(
            "select device_id, case when from_time <> '-infinity' then from_time end, to_time,
                    version
             from fleet.kpi_backlog where device_id > $1 order by device_id limit $2",
        )
        .bind(after)
        .bind(chunk)
        .fetch_all(pool)
        .await?;
        let Some(last) = claims.last() else { break };
        after = last.0;
        let ids: Vec<i32> = claims.iter().map(|c| c.0).collect();
        let from: Vec<Option<DateTime<Utc>>> = claims.iter().map(|c| c.1).collect();
        let to: Vec<DateTime<Utc>> = claims.iter().map(|c| c.2).collect();
        let versions: Vec<i64> = claims.iter().map(|c| c.3).collect();
        let mut tx = pool.begin().await?;
        let rows: i32 = sqlx::query_scalar(
            "select fleet.refresh_kpi_daily($1::int[],
                 array(select coalesce(f, '-infinity') from unnest($2::timestamptz[]) with ordinality as u(f, n) order by n),
                 $3::timestamptz[])",
        )
        .bind(&ids)
        .bind(&from)
        .bind(&to)
        .fetch_one(&mut *tx)
        .await?;
        crate::store::clear_marks(&mut tx, "fleet.kpi_backlog", &ids, &versions).await?;
        tx.commit().await?;
        report.devices += claims.len();
        report.rows += i64::from(rows);
        progress(&report);
    }
    Ok(report)
}
