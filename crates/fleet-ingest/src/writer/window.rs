//! Per-channel counters of the writer, written to `fleet.ingestion_log` as one row per channel
//! and window (a minute by default), in the same transaction as the next flush.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::WriteReport;

/// Channel prefixes of producers that write their own `fleet.ingestion_log` row per run.
const SELF_LOGGING: [&str; 2] = ["poll.", "backfill"];

/// A finished window of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    pub channel: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub counts: WriteReport,
}

#[derive(Debug)]
pub struct LogWindow {
    length: chrono::TimeDelta,
    open: BTreeMap<String, (DateTime<Utc>, WriteReport)>,
    closed: Vec<ClosedWindow>,
}

impl LogWindow {
    pub fn new(length: Duration) -> Self {
        let length = chrono::TimeDelta::from_std(length).unwrap_or(chrono::TimeDelta::minutes(1));
        Self { length, open: BTreeMap::new(), closed: Vec::new() }
    }

    /// Adds a stored submission's counts to its channel's open window. Channels whose producers
    /// log each run themselves (the pollers, backfills) are left out, so no record is counted
    /// twice in `fleet.ingestion_log`.
    pub fn count(&mut self, channel: &str, report: &WriteReport) {
        if SELF_LOGGING.iter().any(|p| channel.starts_with(p)) {
            return;
        }
        let now = Utc::now();
        let (_, c) = self.open.entry(channel.to_owned()).or_insert((now, WriteReport::default()));
        c.received += report.received;
        c.new += report.new;
        c.duplicate += report.duplicate;
        c.rejected += report.rejected;
    }

    /// Windows older than the window length, ready to be logged (removed from the open set).
    pub fn take_closed(&mut self) -> Vec<ClosedWindow> {
        let now = Utc::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, (start, _))| now - *start >= self.length)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = std::mem::take(&mut self.closed);
        for channel in due {
            if let Some((started_at, counts)) = self.open.remove(&channel) {
                out.push(ClosedWindow { channel, started_at, finished_at: now, counts });
            }
        }
        out
    }

    /// Every window, closed or not (at shutdown).
    pub fn take_all(&mut self) -> Vec<ClosedWindow> {
        let now = Utc::now();
        let mut out = std::mem::take(&mut self.closed);
        for (channel, (started_at, counts)) in std::mem::take(&mut self.open) {
            out.push(ClosedWindow { channel, started_at, finished_at: now, counts });
        }
        out
    }

    /// Windows whose logging failed go back to be logged with the next flush.
    pub fn restore(&mut self, windows: Vec<ClosedWindow>) {
        self.closed.extend(windows);
    }
}
