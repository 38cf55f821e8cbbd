//! The pollers' bookkeeping in PostgreSQL: one `fleet.ingestion_log` row per run, the
//! forward-only `fleet.poll_cursors`, and the active devices to poll.

use chrono::{DateTime, Utc};
use fleet_core::Imei;
use fleet_db::ingest_log;
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use super::{DbContext, Job, JobReport, PollError, RunStatus};
use crate::WriteReport;

/// Longest error text stored in a log row; a run refused for many devices lists them all
/// otherwise.
const MAX_ERROR_CHARS: usize = 4000;

/// One run being counted, logged when it ends.
#[derive(Debug)]
pub(crate) struct Run {
    job: &'static str,
    started_at: DateTime<Utc>,
    counts: WriteReport,
    devices: usize,
    problems: Vec<String>,
    detail: Map<String, Value>,
}

impl Run {
    pub fn new(job: &'static str) -> Self {
        let mut detail = Map::new();
        detail.insert("source".to_owned(), json!("poller"));
        Self {
            job,
            started_at: Utc::now(),
            counts: WriteReport::default(),
            devices: 0,
            problems: Vec::new(),
            detail,
        }
    }

    pub fn add(&mut self, report: &WriteReport) {
        self.counts.received += report.received;
        self.counts.new += report.new;
        self.counts.duplicate += report.duplicate;
        self.counts.rejected += report.rejected;
    }

    pub fn set_counts(&mut self, counts: WriteReport) {
        self.counts = counts;
    }

    pub fn set_devices(&mut self, devices: usize) {
        self.devices = devices;
    }

    /// Something that makes the run partial without failing it.
    pub fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    pub fn detail(&mut self, key: &str, value: Value) {
        self.detail.insert(key.to_owned(), value);
    }

    /// The run's range, for the log row.
    pub fn range(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        self.detail("from", json!(from.to_rfc3339()));
        self.detail("to", json!(to.to_rfc3339()));
    }

    /// Logs the run as `ok`, `partial` or `failed` and hands back its report or error. A log
    /// row that cannot be stored (the database is down) is reported in the process log; it
    /// does not change the outcome.
    pub async fn conclude(
        self,
        pool: &PgPool,
        outcome: Result<(), PollError>,
    ) -> Result<JobReport, PollError> {
        let (status, error) = match &outcome {
            Err(e) => (RunStatus::Failed, Some(e.to_string())),
            Ok(()) if self.counts.rejected > 0 || !self.problems.is_empty() => {
                let mut problems = self.problems.clone();
                if self.counts.rejected > 0 {
                    problems.push(format!(
                        "{} records rejected (see fleet.ingest_rejects)",
                        self.counts.rejected
                    ));
                }
                (RunStatus::Partial, Some(problems.join("; ")))
            }
            Ok(()) => (RunStatus::Ok, None),
        };
        let error = error.map(|e| truncate(e, MAX_ERROR_CHARS));
        if let Err(e) = self.log(pool, status, error.as_deref()).await {
            tracing::warn!(job = self.job, error = %e, "could not log the poll run");
        }
        outcome.map(|()| JobReport {
            job: self.job,
            status,
            counts: self.counts,
            devices: self.devices,
            problems: self.problems,
        })
    }

    async fn log(
        &self,
        pool: &PgPool,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), PollError> {
        let mut detail = self.detail.clone();
        detail.insert("devices".to_owned(), json!(self.devices));
        let finished_at = Utc::now().max(self.started_at);
        let run = ingest_log::RunLog {
            job: self.job,
            started_at: self.started_at,
            finished_at,
            status: status.as_str(),
            rows_in: count(self.counts.received),
            rows_new: count(self.counts.new),
            rows_duplicate: count(self.counts.duplicate),
            rows_rejected: count(self.counts.rejected),
            error,
            detail: Value::Object(detail),
        };
        ingest_log::record(pool, &run).await.context("logging the poll run")?;
        Ok(())
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An active device with its cursor for a per-device job.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCursor {
    pub imei: Imei,
    pub cursor: Option<DateTime<Utc>>,
}

/// The active devices, in device order, with their cursors of `job`. Stored IMEIs that do not
/// parse (impossible under the table's check) are skipped.
pub(crate) async fn active_devices(
    pool: &PgPool,
    job: Job,
) -> Result<Vec<DeviceCursor>, PollError> {
    let rows = ingest_log::active_device_cursors(pool, job.name())
        .await
        .context("listing the active devices")?;
    Ok(rows
        .into_iter()
        .filter_map(|(imei, cursor)| {
            Imei::parse(&imei).ok().map(|imei| DeviceCursor { imei, cursor })
        })
        .collect())
}

/// The account-wide cursor of `job`.
pub(crate) async fn account_cursor(
    pool: &PgPool,
    job: Job,
) -> Result<Option<DateTime<Utc>>, PollError> {
    ingest_log::account_cursor(pool, job.name()).await.context("reading a poll cursor")
}

/// Moves the account-wide cursor of `job` forward to `to` (never back).
pub(crate) async fn advance_account_cursor(
    pool: &PgPool,
    job: Job,
    to: DateTime<Utc>,
) -> Result<(), PollError> {
    ingest_log::advance_account_cursor(pool, job.name(), to)
        .await
        .context("advancing a poll cursor")?;
    Ok(())
}

/// Moves the cursor of `job` for the device `imei` forward to `to` (never back).
pub(crate) async fn advance_device_cursor(
    pool: &PgPool,
    job: Job,
    imei: &Imei,
    to: DateTime<Utc>,
) -> Result<(), PollError> {
    ingest_log::advance_device_cursor(pool, job.name(), imei.as_str(), to)
        .await
        .context("advancing a device's poll cursor")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_texts_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(10), 4);
        assert_eq!(cut, "éééé…");
        assert_eq!(truncate("short".to_owned(), 10), "short");
    }
}
