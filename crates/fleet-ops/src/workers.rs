//! The operations work a serving process does in the background: retention, scheduled
//! backups ([`crate::backup_schedule`]) and the ops alert monitor ([`crate::alerts`]). Each
//! coordinates with other fleetd processes on the same database through a lease.

use std::time::Duration;

use fleet_config::Config;
use fleet_db::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backup_schedule::{backup_schedule, BackupJob};
use crate::prune::KeepPolicy;

/// How often retention looks for expired data (the first pass runs a minute after start).
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);
const RETENTION_FIRST: Duration = Duration::from_secs(60);

/// Starts retention, the backup schedule (when configured) and the alert monitor.
pub fn start(
    cfg: &Config,
    pool: &PgPool,
    url: &str,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(retention(pool.clone(), cfg.retention, shutdown.clone())),
        tokio::spawn(crate::alerts::run(pool.clone(), cfg.alerts.clone(), shutdown.clone())),
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
        let pass = fleet_db::retention::run_with_lease(&pool, &policy, chrono::Utc::now())
            .instrument(tracing::info_span!("retention"));
        match pass.await {
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!("another process holds the retention lease"),
            Err(e) => tracing::error!(error = %e, "retention failed"),
        }
    }
}
