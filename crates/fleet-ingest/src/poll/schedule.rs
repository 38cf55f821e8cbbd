//! The poller: takes the lease, runs every job at its interval while it holds it, and is loud
//! about failures. Only one process of those sharing a database polls; the others wait for
//! the lease and take over when its holder stops or loses it.
//!
//! A failing job logs one error when it starts failing and one info line when it recovers;
//! every failed run in between is logged in `fleet.ingestion_log` and retried with backoff
//! (doubling from `retry_min` up to the job's interval). A job never stops on its own.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_db::{Lease, LeaseOptions};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{Job, JobReport, PollError, PollJobs};

/// Shortest interval or backoff honoured: a zero in the configuration must not spin.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Why polling under a lease ended.
#[derive(Debug)]
enum Ended {
    Shutdown,
    LeaseLost,
    JobDied(Option<tokio::task::JoinError>),
}

/// Schedules the [`PollJobs`] under the lease. See the module docs.
#[derive(Debug)]
pub struct Poller {
    jobs: Arc<PollJobs>,
}

impl Poller {
    pub fn new(jobs: PollJobs) -> Self {
        Self { jobs: Arc::new(jobs) }
    }

    pub fn jobs(&self) -> &PollJobs {
        &self.jobs
    }

    /// Polls until `shutdown` is cancelled, then releases the lease. While another process
    /// holds the lease this waits, trying again every `lease_retry`; a lost lease stops every
    /// job and goes back to waiting.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let Some(lease) = self.acquire(&shutdown).await else { return };
            info!(lease = lease.name(), "polling Tracksolid");
            let stop = shutdown.child_token();
            let mut tasks = self.spawn_jobs(&stop);
            // biased: at shutdown the jobs (watching a child token) end too, and that must not
            // read as a job dying
            let ended = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Ended::Shutdown,
                _ = lease.lost() => Ended::LeaseLost,
                // the job loops never end on their own; one ending means it panicked
                Some(ended) = tasks.join_next() => Ended::JobDied(ended.err()),
            };
            let ended = if shutdown.is_cancelled() { Ended::Shutdown } else { ended };
            stop.cancel();
            while tasks.join_next().await.is_some() {}
            match ended {
                Ended::Shutdown => {
                    lease.release().await;
                    info!("poller stopped");
                    return;
                }
                Ended::LeaseLost => error!(
                    lease = lease.name(),
                    "poller lease lost; polling stopped until it is taken again"
                ),
                Ended::JobDied(e) => {
                    error!(error = ?e, "a poll job stopped unexpectedly; restarting the jobs")
                }
            }
            lease.release().await;
        }
    }

    /// Takes the lease, retrying while another session holds it; `None` on shutdown.
    async fn acquire(&self, shutdown: &CancellationToken) -> Option<Lease> {
        let config = &self.jobs.config;
        let opts = LeaseOptions { check_every: config.lease_check.max(MIN_PERIOD) };
        let mut standing_by = false;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = Lease::try_acquire(&self.jobs.pool, &config.lease_name, opts) => r,
            };
            match attempt {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) if !standing_by => {
                    info!(lease = %config.lease_name, "another process is polling Tracksolid; standing by");
                    standing_by = true;
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(lease = %config.lease_name, error = %e, "could not try the poller lease")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(config.lease_retry.max(MIN_PERIOD)) => {}
            }
        }
    }

    /// One loop per job. The device sync goes first: the other jobs wait for its first run
    /// (whatever its outcome), so a fresh database has devices to poll.
    fn spawn_jobs(&self, stop: &CancellationToken) -> JoinSet<()> {
        let (synced_tx, synced) = watch::channel(false);
        let mut synced_tx = Some(synced_tx);
        let mut tasks = JoinSet::new();
        for job in Job::ALL {
            let first = if job == Job::Devices { synced_tx.take() } else { None };
            let mut synced = synced.clone();
            let (jobs, stop) = (self.jobs.clone(), stop.clone());
            tasks.spawn(async move {
                if first.is_none() {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        // an error means the device loop ended, which only happens on stop
                        _ = synced.wait_for(|done| *done) => {}
                    }
                }
                job_loop(jobs, job, stop, first).await;
            });
        }
        tasks
    }
}

/// Runs `job` at its interval until `stop`; `first_done` is told when the first run ended.
async fn job_loop(
    jobs: Arc<PollJobs>,
    job: Job,
    stop: CancellationToken,
    mut first_done: Option<watch::Sender<bool>>,
) {
    let period = jobs.config.interval(job).max(MIN_PERIOD);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut health = Health::new(job);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let mut failures = 0u32;
        loop {
            let outcome = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                r = jobs.run(job, Utc::now()) => r,
            };
            if let Some(tx) = first_done.take() {
                let _ = tx.send(true);
            }
            match outcome {
                Ok(report) => {
                    health.succeeded(&report);
                    break;
                }
                Err(e) => {
                    health.failed(&e);
                    failures = failures.saturating_add(1);
                    let delay = backoff(jobs.config.retry_min, failures, period);
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        // after retrying, the next run is a full interval after the one that worked
        if failures > 0 {
            ticker.reset();
        }
    }
}

/// Delay before retry number `failures` (1-based): `min` doubled per failure, at most `max`.
fn backoff(min: Duration, failures: u32, max: Duration) -> Duration {
    let doubled = min.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
    doubled.min(max).max(MIN_PERIOD)
}

/// Whether a job is failing, so that only changes are logged loudly.
#[derive(Debug)]
struct Health {
    job: Job,
    /// Consecutive failed runs; zero while healthy.
    failed_runs: u32,
}

impl Health {
    fn new(job: Job) -> Self {
        Self { job, failed_runs: 0 }
    }

    fn failed(&mut self, e: &PollError) {
        self.failed_runs = self.failed_runs.saturating_add(1);
        let job = self.job.name();
        if self.failed_runs == 1 {
            error!(job, error = %e, "poll job failing; retrying with backoff until it works");
        } else {
            debug!(job, error = %e, failed_runs = self.failed_runs, "poll job still failing");
        }
    }

    fn succeeded(&mut self, report: &JobReport) {
        let job = self.job.name();
        if self.failed_runs > 0 {
            info!(job, failed_runs = self.failed_runs, "poll job recovered");
            self.failed_runs = 0;
        }
        let c = &report.counts;
        debug!(
            job,
            status = report.status.as_str(),
            devices = report.devices,
            received = c.received,
            new = c.new,
            duplicate = c.duplicate,
            rejected = c.rejected,
            "poll run done"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_up_to_the_interval() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(10), 1, s(300)), s(10));
        assert_eq!(backoff(s(10), 2, s(300)), s(20));
        assert_eq!(backoff(s(10), 5, s(300)), s(160));
        assert_eq!(backoff(s(10), 6, s(300)), s(300));
        assert_eq!(backoff(s(10), u32::MAX, s(300)), s(300), "no overflow however long it fails");
    }

    #[test]
    fn a_zero_backoff_still_waits_a_little() {
        assert_eq!(backoff(Duration::ZERO, 1, Duration::ZERO), MIN_PERIOD);
    }
}
