//! The operations work a serving process does in the background: retention, scheduled
//! backups (each verified and the old ones pruned) and the ops alert monitor. Each coordinates
//! with other fleetd processes on the same database through a lease.

use std::path::PathBuf;
use std::time::Duration;

use fleet_config::Config;
use fleet_db::{Lease, LeaseOptions, PgPool};
use fleet_ops::backup::{self, BackupRequest};
use fleet_ops::prune::{self, KeepPolicy};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often retention looks for expired data (the first pass runs a minute after start).
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);
const RETENTION_FIRST: Duration = Duration::from_secs(60);
/// Name of the lease a scheduled backup is taken under.
pub const BACKUP_LEASE: &str = "backup";

/// Starts retention, the backup schedule (when configured) and the alert monitor.
pub fn start(
    cfg: &Config,
    pool: &PgPool,
    url: &str,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(retention(pool.clone(), cfg.retention, shutdown.clone())),
        tokio::spawn(fleet_ops::alerts::run(pool.clone(), cfg.alerts.clone(), shutdown.clone())),
    ];
    if let Some(schedule) = cfg.backup.schedule.clone() {
        let job = BackupJob {
            pool: pool.clone(),
            url: url.to_owned(),
            dir: cfg.backup.dir_in(&cfg.data_dir),
            bindir: cfg.pg_bindir.clone(),
            verify: cfg.backup.verify,
            keep: KeepPolicy {
                daily: cfg.backup.keep_daily,
                weekly: cfg.backup.keep_weekly,
                monthly: cfg.backup.keep_monthly,
            },
        };
        tasks.push(tokio::spawn(backup_schedule(job, schedule, shutdown.clone())));
    }
    tasks
}

async fn retention(
    pool: PgPool,
    policy: fleet_config::RetentionConfig,
    shutdown: CancellationToken,
) {
    let mut wait = RETENTION_FIRST;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = RETENTION_EVERY;
        match fleet_db::retention::run_with_lease(&pool, &policy, chrono::Utc::now()).await {
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!("another process holds the retention lease"),
            Err(e) => tracing::error!(error = %e, "retention failed"),
        }
    }
}

struct BackupJob {
    pool: PgPool,
    url: String,
    dir: PathBuf,
    bindir: Option<PathBuf>,
    verify: bool,
    keep: KeepPolicy,
}

async fn backup_schedule(job: BackupJob, schedule: croner::Cron, shutdown: CancellationToken) {
    tracing::info!(schedule = %schedule.pattern, dir = %job.dir.display(), "scheduled backups on");
    loop {
        let now = chrono::Utc::now();
        let next = match schedule.find_next_occurrence(&now, false) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "backup schedule has no next time; scheduled backups stop");
                return;
            }
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let lease = match Lease::try_acquire(&job.pool, BACKUP_LEASE, LeaseOptions::default()).await
        {
            Ok(Some(l)) => l,
            Ok(None) => {
                tracing::info!("another process is taking the scheduled backup");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled backup skipped: lease not tried");
                continue;
            }
        };
        // shutdown does not wait for a long dump: dropping it ends pg_dump (the unfinished
        // file keeps its .partial name)
        tokio::select! {
            _ = shutdown.cancelled() => tracing::warn!("scheduled backup interrupted by shutdown"),
            r = scheduled_backup(&job) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "scheduled backup failed");
                }
            }
        }
        lease.release().await;
    }
}

async fn scheduled_backup(job: &BackupJob) -> Result<(), fleet_ops::OpsError> {
    let mut quiet = |_: &str| {};
    let b = backup::take(
        BackupRequest {
            pool: &job.pool,
            url: &job.url,
            dir: &job.dir,
            bindir: job.bindir.as_deref(),
            scheduled: true,
        },
        &mut quiet,
    )
    .await?;
    if job.verify {
        let v = fleet_ops::verify::verify(
            &job.pool,
            &job.url,
            &b.path,
            job.bindir.as_deref(),
            &mut quiet,
        )
        .await?;
        if v.comparison.matches() {
            tracing::info!(path = %b.path.display(), "scheduled backup verified: {}", v.comparison);
        } else {
            tracing::error!(path = %b.path.display(), "scheduled backup FAILED verification: {}", v.comparison);
        }
    }
    let pruned = prune::prune(&job.pool, &job.dir, job.keep).await?;
    if !pruned.is_empty() {
        tracing::info!(deleted = pruned.len(), "old scheduled backups pruned");
    }
    Ok(())
}
