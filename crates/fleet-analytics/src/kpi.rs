//! The KPI step: refreshes `fleet.kpi_daily` for the device-days the trip builder queued in
//! `fleet.kpi_backlog`.
//!
//! It runs on a slower cadence than trips: changes queued meanwhile for one device merge into
//! one range, so each day is recomputed once per step however many trip passes touched it. A
//! day's per-fix figures come from its fix aggregate (`fleet.kpi_fix_days`), to which a step
//! adds only the fixes after the day's watermark; a late fix makes it recount the day
//! (docs/KPI_FRAMEWORK.md, "How KPIs stay current").

use sqlx::PgPool;

/// What one KPI step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KpiReport {
    pub devices: usize,
    /// `fleet.kpi_daily` rows written.
    pub rows: i64,
}

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
        let claims = fleet_db::kpis::queued(pool, after, chunk).await?;
        let Some(last) = claims.last() else { break };
        after = last.device_id;
        let mut tx = pool.begin().await?;
        let rows = fleet_db::kpis::refresh(&mut tx, &claims).await?;
        tx.commit().await?;
        report.devices += claims.len();
        report.rows += i64::from(rows);
        progress(&report);
    }
    Ok(report)
}
