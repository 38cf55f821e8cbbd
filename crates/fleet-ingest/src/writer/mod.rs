//! The one batching writer of a process. Producers submit records with [`Writer::write`] and
//! wait; the writer gathers submissions until it has `max_rows` records or the oldest has
//! waited `max_age`, stores them all in one transaction, and only then answers each producer.
//! A producer that got `Ok` may acknowledge its sender: the records are durable. The queue in
//! front of the writer is bounded, so a slow database slows producers down instead of filling
//! memory.
//!
//! The writer is pipelined two deep: while one batch's transaction runs (on its own pooled
//! connection), the next batch is gathered and, once it holds `overlap_rows` records, starts its
//! own transaction, so PostgreSQL works on two flushes and the writer never idles while one
//! commits. A batch that could see or change what the running one writes (a fix of the same
//! device and time, a device to register, any record other than fixes and rejects, rules that
//! derive events from the latest positions) waits for the running one to commit first, so the
//! rows stored, the values kept for a fix sent twice (the earlier submission's) and what each
//! producer is told was new are what one flush after the other would give. Batches that only
//! share devices (not fixes) do run side by side: if the later one commits first,
//! `device_latest` still ends at each device's newest fix, but its `state_since` (kept while the
//! motion state stays the same) may differ from what serial flushes give, as each batch's
//! newest fix is compared with whichever was stored before it. Waiting on every shared device
//! instead would undo the pipelining: under load nearly every batch holds fixes of most
//! devices. Each producer is
//! answered only after its own batch committed.

mod flush;
mod pipeline;
mod window;

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Record;

pub use flush::CHANGES_CHANNEL;

/// How the writer batches.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Flush once this many records are waiting.
    pub max_rows: usize,
    /// Flush once the oldest waiting submission is this old. Short by default: whatever queues
    /// while a flush runs goes into the next one at once (group commit), so batches grow with
    /// load without making a lone producer wait.
    pub max_age: Duration,
    /// While a flush runs, the next batch starts its own transaction once it holds this many
    /// records (and is `max_age` old); smaller batches wait for the running flush to end, so
    /// under light load batches do not shrink to a submission each.
    pub overlap_rows: usize,
    /// Submissions that may wait in the queue before producers are held back.
    pub queue: usize,
    /// Records of IMEIs not in `fleet.devices` register the device (otherwise they are rejected).
    pub register_unknown_devices: bool,
    /// Length of the windows `fleet.ingestion_log` counts per channel.
    pub log_window: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_rows: 5_000,
            max_age: Duration::from_millis(2),
            overlap_rows: 2_000,
            queue: 256,
            register_unknown_devices: true,
            log_window: Duration::from_secs(60),
        }
    }
}

/// What became of one submission, once durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub received: usize,
    /// Stored for the first time.
    pub new: usize,
    /// Already stored (re-delivery, overlapping polls).
    pub duplicate: usize,
    /// Failed validation (by the producer or here, e.g. an unknown device) and kept as rejects.
    pub rejected: usize,
}

/// Why a submission was not stored. Nothing of it is durable; the producer must not
/// acknowledge it (a push receiver answers 503 so the sender retries).
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the writer has shut down")]
    Closed,
}

struct Submission {
    channel: String,
    records: Vec<Record>,
    reply: oneshot::Sender<Result<WriteReport, WriteError>>,
}

enum Msg {
    Write(Submission),
    /// A request refused before it had records (wrong token, oversized body): counted in the
    /// channel's log window, nothing stored.
    Refused {
        channel: String,
    },
}

/// A handle to the writer; clone it freely.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Starts the writer task. It stops when `shutdown` is cancelled, after storing (and
    /// answering) everything already submitted.
    pub fn spawn(
        pool: PgPool,
        config: WriterConfig,
        shutdown: CancellationToken,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let task = tokio::spawn(pipeline::run(pool, config, rx, shutdown));
        (Writer { tx }, task)
    }

    /// Stores `records` for `channel` (e.g. `push.gps`, `poll.track`) and returns once they are
    /// durable.
    pub async fn write(
        &self,
        channel: &str,
        records: Vec<Record>,
    ) -> Result<WriteReport, WriteError> {
        if records.is_empty() {
            return Ok(WriteReport::default());
        }
        let (reply, answer) = oneshot::channel();
        let submission = Submission { channel: channel.to_owned(), records, reply };
        self.tx.send(Msg::Write(submission)).await.map_err(|_| WriteError::Closed)?;
        answer.await.map_err(|_| WriteError::Closed)?
    }

    /// Counts a request of `channel` refused before it carried records (a wrong token, an
    /// oversized body) as one rejected row in the channel's `fleet.ingestion_log` window.
    pub fn note_refused(&self, channel: &str) {
        // best effort: a full queue must not hold up the refusal itself
        let _ = self.tx.try_send(Msg::Refused { channel: channel.to_owned() });
    }

    /// Submissions waiting in the queue (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Counts a submission's records by channel and outcome (`fleetd_ingest_records_total`); the
/// process's metrics recorder, if any, exports them.
fn record_metrics(channel: &str, report: &WriteReport) {
    let counts = [
        ("received", report.received),
        ("new", report.new),
        ("duplicate", report.duplicate),
        ("rejected", report.rejected),
    ];
    for (outcome, n) in counts {
        metrics::counter!(
            "fleetd_ingest_records_total",
            "channel" => channel.to_owned(),
            "outcome" => outcome
        )
        .increment(n as u64);
    }
}
