//! The trip builder as a background job: one per database, under the `trip-builder` lease.

use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_db::{Lease, LeaseOptions};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::pass::{run_chunk, BuilderCache, ChunkStats};
use crate::rebuild::run_rebuild;

/// How the trip builder runs.
#[derive(Debug, Clone)]
pub struct TripWorkerConfig {
    /// Pause between trip passes.
    pub interval: Duration,
    /// Least time between KPI steps (daily KPIs of the device-days trips changed).
    pub kpi_interval: Duration,
    /// Devices per chunk (one transaction each).
    pub chunk_devices: i64,
    pub lease_name: String,
    pub lease_check: Duration,
    /// Builders kept in memory at most; beyond it the cache is dropped (devices restart cold).
    pub max_cached_devices: usize,
    /// Fixes per window a full rebuild hands from its scan to the builder at a time (about 40
    /// bytes each; at most three windows are in memory).
    pub rebuild_window_fixes: usize,
}

impl Default for TripWorkerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            kpi_interval: Duration::from_secs(60),
            chunk_devices: 200,
            lease_name: "trip-builder".to_owned(),
            lease_check: Duration::from_secs(5),
            max_cached_devices: 50_000,
            rebuild_window_fixes: 400_000,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub chunks: usize,
    pub devices: usize,
    pub cold: usize,
    pub fixes_read: usize,
    pub trips_written: usize,
    /// Windows (batches of fixes) the full rebuild of the devices marked for one read its scan
    /// in.
    pub rebuild_windows: usize,
    /// Devices whose fixes the full rebuild's scan met out of time order (stored late, after
    /// newer ones), rebuilt afterwards by chunks from their fixes in time order.
    pub rebuild_reordered: usize,
}

impl PassReport {
    fn add(&mut self, c: ChunkStats) {
        self.chunks += 1;
        self.devices += c.devices;
        self.cold += c.cold;
        self.fixes_read += c.fixes_read;
        self.trips_written += c.trips_written;
        self.rebuild_windows += c.windows;
        self.rebuild_reordered += c.reordered;
    }
}

/// The trip builder: call [`TripWorker::pass`] directly (tests, `fleetd trips rebuild`) or
/// [`TripWorker::run`] it in the background under the lease.
#[derive(Debug)]
pub struct TripWorker {
    pool: PgPool,
    config: TripWorkerConfig,
    cache: BuilderCache,
}

impl TripWorker {
    pub fn new(pool: PgPool, config: TripWorkerConfig) -> Self {
        Self { pool, config, cache: BuilderCache::default() }
    }

    /// Processes the whole backlog once (chunk by chunk, in device order; the devices marked
    /// for a full rebuild all together, in one read of their fixes), then closes the open
    /// trips of devices that fell silent. `progress` is called after each chunk with the
    /// devices done so far. Call it only while holding the lease (or alone on the database).
    /// Runs in a `trip_pass` span; each chunk in a `trip_chunk` span inside it.
    #[tracing::instrument(name = "trip_pass", skip_all)]
    pub async fn pass(
        &mut self,
        mut progress: impl FnMut(&PassReport),
    ) -> Result<PassReport, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let settings = fleet_db::analytics::settings(&mut conn).await?;
        let fences = fleet_db::geofences::active(&mut conn).await?;
        drop(conn);
        if self.cache.len() > self.config.max_cached_devices {
            self.cache.clear();
        }
        let mut report = PassReport::default();
        let mut after = 0;
        let mut full = Vec::new();
        loop {
            let mut conn = self.pool.acquire().await?;
            let claims =
                fleet_db::analytics::backlog(&mut conn, after, self.config.chunk_devices).await?;
            drop(conn);
            let Some(last) = claims.last() else { break };
            after = last.device_id;
            let (rebuild, claims): (Vec<_>, Vec<_>) = claims.into_iter().partition(|c| c.full);
            full.extend(rebuild);
            if claims.is_empty() {
                continue;
            }
            let now = Utc::now();
            let stats = self.chunk(&claims, &settings, &fences, now).await?;
            report.add(stats);
            progress(&report);
        }
        if !full.is_empty() {
            let (stats, out_of_order) = run_rebuild(
                &self.pool,
                &mut self.cache,
                full,
                &settings,
                &fences,
                Utc::now(),
                self.config.rebuild_window_fixes,
            )
            .await?;
            report.add(stats);
            progress(&report);
            // still marked from their first fix: read in time order, as a pass reads them
            let chunk = usize::try_from(self.config.chunk_devices).unwrap_or(1).max(1);
            for claims in out_of_order.chunks(chunk) {
                let stats = self.chunk(claims, &settings, &fences, Utc::now()).await?;
                report.add(stats);
                progress(&report);
            }
        }
        let mut conn = self.pool.acquire().await?;
        let silent =
            fleet_db::analytics::silent_open_trips(&mut conn, self.config.chunk_devices).await?;
        drop(conn);
        if !silent.is_empty() {
            report.add(self.chunk(&silent, &settings, &fences, Utc::now()).await?);
            progress(&report);
        }
        Ok(report)
    }

    async fn chunk(
        &mut self,
        claims: &[fleet_db::analytics::Claim],
        settings: &std::collections::HashMap<i32, fleet_core::AnalyticsSettings>,
        fences: &fleet_core::Geofences,
        now: chrono::DateTime<Utc>,
    ) -> Result<ChunkStats, sqlx::Error> {
        run_chunk(&self.pool, &mut self.cache, claims, settings, fences, now).await
    }

    /// Runs passes every `interval` while holding the lease, until `shutdown`. Another process
    /// holding the lease makes this one stand by; a lost lease drops the in-memory builders
    /// (the new holder may have changed the stored trips) and waits to take it again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let Some(lease) = self.acquire(&shutdown).await else { return };
            self.cache.clear();
            let mut last_kpi: Option<Instant> = None;
            loop {
                let started = Instant::now();
                match self.pass(|_| {}).await {
                    Ok(r) if r.devices > 0 => info!(
                        devices = r.devices,
                        cold = r.cold,
                        fixes = r.fixes_read,
                        trips = r.trips_written,
                        took_ms = started.elapsed().as_millis() as u64,
                        "trip builder pass"
                    ),
                    Ok(_) => {}
                    Err(e) => error!(error = %e, "trip builder pass failed; retrying"),
                }
                if last_kpi.is_none_or(|t| t.elapsed() >= self.config.kpi_interval) {
                    let started = Instant::now();
                    match crate::kpi::refresh_queued(&self.pool, self.config.chunk_devices, |_| {})
                        .await
                    {
                        Ok(r) if r.devices > 0 => info!(
                            devices = r.devices,
                            rows = r.rows,
                            took_ms = started.elapsed().as_millis() as u64,
                            "daily KPIs refreshed"
                        ),
                        Ok(_) => {}
                        Err(e) => error!(error = %e, "daily KPI refresh failed; retrying"),
                    }
                    last_kpi = Some(Instant::now());
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        lease.release().await;
                        info!("trip builder stopped");
                        return;
                    }
                    _ = lease.lost() => {
                        error!(lease = lease.name(), "trip builder lease lost; standing by");
                        break;
                    }
                    _ = tokio::time::sleep(self.config.interval) => {}
                }
            }
            self.cache.clear();
            lease.release().await;
        }
    }

    async fn acquire(&self, shutdown: &CancellationToken) -> Option<Lease> {
        let opts = LeaseOptions { check_every: self.config.lease_check };
        let mut standing_by = false;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = Lease::try_acquire(&self.pool, &self.config.lease_name, opts) => r,
            };
            match attempt {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) if !standing_by => {
                    info!(lease = %self.config.lease_name, "another process builds trips; standing by");
                    standing_by = true;
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "could not try the trip builder lease"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}

/// Asks for a re-derivation of every device (or those with the given IMEIs) from `since`
/// (`None`: from the first fix), as `fleetd trips rebuild` does; returns how many devices were
/// marked. IMEIs of no registered device are an error naming them.
pub async fn mark_rebuild(
    pool: &PgPool,
    imeis: Option<&[String]>,
    since: Option<chrono::DateTime<Utc>>,
) -> Result<u64, RebuildError> {
    if let Some(imeis) = imeis {
        let unknown = fleet_db::analytics::unknown_imeis(pool, imeis).await?;
        if !unknown.is_empty() {
            return Err(RebuildError::UnknownDevices(unknown));
        }
    }
    Ok(fleet_db::analytics::mark_rebuild(pool, imeis, since).await?)
}

/// Devices waiting in the backlog.
pub async fn backlog_size(pool: &PgPool) -> Result<i64, sqlx::Error> {
    fleet_db::analytics::backlog_size(pool).await
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no device has IMEI {}", .0.join(", "))]
    UnknownDevices(Vec<String>),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}
