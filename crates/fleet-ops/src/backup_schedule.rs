//! The backup schedule: at each time of `FLEETD_BACKUP_SCHEDULE` one process (the holder of
//! the `backup` lease) takes a backup, verifies it by restoring it when configured, and prunes
//! the scheduled backups the keep policy no longer wants.

use std::path::PathBuf;

use fleet_db::{Lease, LeaseOptions, PgPool};
use tokio_util::sync::CancellationToken;

use crate::backup::{self, BackupRequest};
use crate::prune::{self, KeepPolicy};

/// Name of the lease a scheduled backup is taken under.
pub const BACKUP_LEASE: &str = "backup";

/// What one scheduled backup needs.
pub(crate) struct BackupJob {
    pub(crate) pool: PgPool,
    pub(crate) url: String,
    pub(crate) dir: PathBuf,
    pub(crate) bindir: Option<PathBuf>,
    pub(crate) verify: bool,
    pub(crate) keep: KeepPolicy,
}

pub(crate) async fn backup_schedule(
    job: BackupJob,
    schedule: croner::Cron,
    shutdown: CancellationToken,
) {
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

async fn scheduled_backup(job: &BackupJob) -> Result<(), crate::OpsError> {
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
        let v =
            crate::verify::verify(&job.pool, &job.url, &b.path, job.bindir.as_deref(), &mut quiet)
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
