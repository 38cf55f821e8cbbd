//! The writer's loop: gathers batches and runs each flush in a task of its own, at most two at
//! a time (see the module docs of [`super`] for when a batch overlaps the running one and when
//! it waits).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::flush::{self, Order, Shared};
use super::window::{ClosedWindow, LogWindow};
use super::{record_metrics, Msg, Submission, WriteError, WriteReport, WriterConfig};
use crate::Record;

/// Device ids of IMEIs known to be registered; shared read-only with running flushes and
/// extended (copy on write) when a flush that registered devices has committed.
type Ids = Arc<HashMap<String, i32>>;

/// A flush running in its task.
struct InFlight {
    task: JoinHandle<Finished>,
    /// Cancelled once the flush committed or failed: the next batch waits on it when it must.
    done: CancellationToken,
    /// (device, GPS time in µs) of the batch's fixes of known devices.
    keys: HashSet<(i32, i64)>,
}

/// What the loop learns of a finished flush.
struct Finished {
    /// Each submission's channel and report, for the log windows (empty when it failed).
    counted: Vec<(String, WriteReport)>,
    /// Devices the flush registered or looked up (now committed).
    ids: HashMap<String, i32>,
    /// The log windows the flush was to store, back to the loop when it failed.
    unstored: Vec<ClosedWindow>,
}

/// What the loop knows of a batch before it is flushed.
struct Plan {
    /// Only fixes of devices already known, and rejects: it can run beside another flush.
    simple: bool,
    keys: HashSet<(i32, i64)>,
}

impl Plan {
    fn of(batch: &[Submission], ids: &HashMap<String, i32>) -> Plan {
        let mut simple = true;
        let mut keys = HashSet::new();
        for r in batch.iter().flat_map(|s| s.records.iter()) {
            match r {
                Record::Position(p) => match ids.get(p.imei.as_str()) {
                    Some(&id) => {
                        keys.insert((id, p.gps_time.timestamp_micros()));
                    }
                    None => simple = false,
                },
                Record::Reject(_) => {}
                _ => simple = false,
            }
        }
        Plan { simple, keys }
    }
}

pub(super) async fn run(
    pool: PgPool,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Msg>,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared::new(config.register_unknown_devices));
    let mut ids: Ids = Arc::new(HashMap::new());
    let mut window = LogWindow::new(config.log_window);
    let mut running: Option<InFlight> = None;
    let mut closing = false;
    loop {
        metrics::gauge!("fleetd_writer_queue_depth").set(rx.len() as f64);
        // the first submission of the next batch; a running flush that ends meanwhile is taken in
        let first = loop {
            tokio::select! {
                biased;
                finished = async { (&mut running.as_mut().expect("running").task).await }, if running.is_some() => {
                    running = None;
                    take_in(finished, &mut ids, &mut window);
                }
                next = rx.recv() => match next {
                    None => break None,
                    Some(Msg::Refused { channel }) => refused(&channel, &mut window),
                    Some(Msg::Write(s)) => break Some(s),
                },
                _ = shutdown.cancelled(), if !closing => {
                    // stop taking new work; store what is already queued
                    closing = true;
                    rx.close();
                }
            }
        };
        let Some(first) = first else { break };
        let mut rows = first.records.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_age;
        let mut queue_open = true;
        while rows < config.max_rows {
            // with a flush running, a small batch waits for it instead of starting beside it
            let may_start = running.is_none() || rows >= config.overlap_rows;
            tokio::select! {
                biased;
                finished = async { (&mut running.as_mut().expect("running").task).await }, if running.is_some() => {
                    running = None;
                    take_in(finished, &mut ids, &mut window);
                }
                next = rx.recv(), if queue_open => match next {
                    Some(Msg::Write(s)) => {
                        rows += s.records.len();
                        batch.push(s);
                    }
                    Some(Msg::Refused { channel }) => refused(&channel, &mut window),
                    None => queue_open = false,
                },
                _ = tokio::time::sleep_until(deadline), if may_start => break,
                // the queue closed and nothing is running: flush what there is
                _ = std::future::ready(()), if !queue_open && running.is_none() => break,
            }
        }
        let plan = Plan::of(&batch, &ids);
        let order = match &running {
            None => Order::default(),
            Some(r) => Order {
                after: Some(r.done.clone()),
                independent: plan.simple && r.keys.is_disjoint(&plan.keys),
            },
        };
        let previous = running.take();
        let done = CancellationToken::new();
        let task = tokio::spawn(flush_batch(
            pool.clone(),
            shared.clone(),
            ids.clone(),
            batch,
            rows,
            window.take_closed(),
            order,
            done.clone(),
        ));
        // two flushes at most: the older one ends before the next batch is gathered
        if let Some(p) = previous {
            take_in(p.task.await, &mut ids, &mut window);
        }
        running = Some(InFlight { task, done, keys: plan.keys });
    }
    if let Some(r) = running.take() {
        take_in(r.task.await, &mut ids, &mut window);
    }
    // the last windows' counts
    let closed = window.take_all();
    if !closed.is_empty() {
        if let Err(e) = flush::flush(&pool, &shared, &ids, &[], &closed, Order::default()).await {
            tracing::warn!(error = %e, "could not store the last ingestion_log windows");
        }
    }
}

fn refused(channel: &str, window: &mut LogWindow) {
    let refused = WriteReport { received: 1, rejected: 1, ..WriteReport::default() };
    record_metrics(channel, &refused);
    window.count(channel, &refused);
}

/// Takes a finished flush's results into the loop's state.
fn take_in(
    finished: Result<Finished, tokio::task::JoinError>,
    ids: &mut Ids,
    window: &mut LogWindow,
) {
    match finished {
        Ok(f) => {
            for (channel, report) in &f.counted {
                window.count(channel, report);
            }
            if !f.ids.is_empty() {
                Arc::make_mut(ids).extend(f.ids);
            }
            window.restore(f.unstored);
        }
        // its producers were told the writer closed (their reply senders were dropped)
        Err(e) => tracing::error!(error = %e, "a writer flush task failed"),
    }
}

/// Stores one batch and answers its producers once it committed (or failed).
#[allow(clippy::too_many_arguments)]
async fn flush_batch(
    pool: PgPool,
    shared: Arc<Shared>,
    ids: Ids,
    batch: Vec<Submission>,
    rows: usize,
    closed: Vec<ClosedWindow>,
    order: Order,
    done: CancellationToken,
) -> Finished {
    let jobs: Vec<(&str, &[Record])> =
        batch.iter().map(|s| (s.channel.as_str(), s.records.as_slice())).collect();
    let started = std::time::Instant::now();
    let outcome = flush::flush(&pool, &shared, &ids, &jobs, &closed, order).await;
    done.cancel();
    let result = if outcome.is_ok() { "ok" } else { "error" };
    metrics::histogram!("fleetd_writer_flush_seconds", "result" => result)
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!("fleetd_writer_flush_rows").record(rows as f64);
    drop(jobs);
    match outcome {
        Ok((reports, new_ids)) => {
            let mut counted = Vec::with_capacity(batch.len());
            for (s, report) in batch.into_iter().zip(reports) {
                record_metrics(&s.channel, &report);
                let _ = s.reply.send(Ok(report));
                counted.push((s.channel, report));
            }
            Finished { counted, ids: new_ids, unstored: Vec::new() }
        }
        Err(e) => {
            tracing::error!(error = %e, submissions = batch.len(), batch.rows = rows, "writer flush failed; nothing of it was stored");
            let failure = WriteError::Unavailable(e.to_string());
            for s in batch {
                let _ = s.reply.send(Err(failure.clone()));
            }
            Finished { counted: Vec::new(), ids: HashMap::new(), unstored: closed }
        }
    }
}
