//! The writer's loop: gathers batches and runs each flush in a task of its own, at most two at
//! a time (see the module docs of [`super`] for when a batch overlaps the running one and when
//! it waits).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fleet_core::Imei;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
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
    /// [`fix_key`] of every fix of the batch.
    keys: HashSet<(u64, i64)>,
    /// The closed log windows the flush is to store, kept to be stored later if its task
    /// panicked (a flush that failed returns them itself).
    windows: Vec<ClosedWindow>,
}

/// What the loop learns of a finished flush.
struct Finished {
    /// Each submission's channel and report, for the log windows (empty when it failed).
    counted: Vec<(String, WriteReport)>,
    /// Devices the flush registered or looked up (now committed).
    ids: HashMap<String, i32>,
    /// Whether it committed (with the log windows it was given).
    committed: bool,
}

/// What the loop knows of a batch before it is flushed.
struct Plan {
    /// Only fixes of devices already known, and rejects: it can run beside another flush.
    simple: bool,
    /// Every fix by IMEI, not device id: a fix of a device the running flush registers must
    /// count too, though its id was not known when that flush was planned.
    keys: HashSet<(u64, i64)>,
}

/// A fix's key for telling whether two batches share a fix: its IMEI as a number and its GPS
/// time in µs. An IMEI is 14 to 17 digits, so it always parses and the number is exact but for
/// leading zeros; two IMEIs that differ only there share keys, which only makes a batch wait for
/// the one before (as would the fallback, never taken).
fn fix_key(imei: &Imei, time: chrono::DateTime<chrono::Utc>) -> (u64, i64) {
    (imei.as_str().parse().unwrap_or(u64::MAX), time.timestamp_micros())
}

impl Plan {
    fn of(batch: &[Submission], ids: &HashMap<String, i32>) -> Plan {
        let mut simple = true;
        let mut keys = HashSet::new();
        for r in batch.iter().flat_map(|s| s.records.iter()) {
            match r {
                Record::Position(p) => {
                    keys.insert(fix_key(&p.imei, p.gps_time));
                    simple &= ids.contains_key(p.imei.as_str());
                }
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
                    let given = running.take().expect("running").windows;
                    take_in(finished, given, &mut ids, &mut window);
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
                    let given = running.take().expect("running").windows;
                    take_in(finished, given, &mut ids, &mut window);
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
        let windows = window.take_closed();
        let task = tokio::spawn(flush_batch(
            pool.clone(),
            shared.clone(),
            ids.clone(),
            batch,
            rows,
            windows.clone(),
            order,
            done.clone(),
        ));
        // two flushes at most: the older one ends before the next batch is gathered
        if let Some(p) = previous {
            take_in(p.task.await, p.windows, &mut ids, &mut window);
        }
        running = Some(InFlight { task, done, keys: plan.keys, windows });
    }
    if let Some(r) = running.take() {
        take_in(r.task.await, r.windows, &mut ids, &mut window);
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

/// Takes a finished flush's results into the loop's state; the log windows it was `given` go
/// back to be stored with a later flush unless it committed them.
fn take_in(
    finished: Result<Finished, tokio::task::JoinError>,
    given: Vec<ClosedWindow>,
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
            if !f.committed {
                window.restore(given);
            }
        }
        // a panic: its producers were answered with an error as the task unwound
        Err(e) => {
            tracing::error!(error = %e, "a writer flush task failed");
            window.restore(given);
        }
    }
}

/// A batch's producers not answered yet. Those still here when it is dropped (a panicking
/// flush unwinding) are told their records may not be stored, so none waits for an answer
/// that never comes or takes it for the writer's shutdown.
struct Unanswered(Vec<oneshot::Sender<Result<WriteReport, WriteError>>>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        for reply in self.0.drain(..) {
            let failure = WriteError::Unavailable("a writer flush failed unexpectedly".into());
            let _ = reply.send(Err(failure));
        }
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
    // the next flush may go on once this one ends, even by a panic (then the token is dropped
    // while unwinding): it must never wait forever
    let done = done.drop_guard();
    let mut replies = Unanswered(Vec::with_capacity(batch.len()));
    let mut parts = Vec::with_capacity(batch.len());
    for s in batch {
        replies.0.push(s.reply);
        parts.push((s.channel, s.records));
    }
    let jobs: Vec<(&str, &[Record])> =
        parts.iter().map(|(channel, records)| (channel.as_str(), records.as_slice())).collect();
    let started = std::time::Instant::now();
    #[cfg(test)]
    tests::act_as_asked(&parts).await;
    let outcome = flush::flush(&pool, &shared, &ids, &jobs, &closed, order).await;
    // committed or failed: the next flush need not wait for the answers
    done.disarm().cancel();
    let result = if outcome.is_ok() { "ok" } else { "error" };
    metrics::histogram!("fleetd_writer_flush_seconds", "result" => result)
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!("fleetd_writer_flush_rows").record(rows as f64);
    drop(jobs);
    match outcome {
        Ok((reports, new_ids)) => {
            let mut counted = Vec::with_capacity(parts.len());
            for (((channel, _), reply), report) in
                parts.into_iter().zip(replies.0.drain(..)).zip(reports)
            {
                record_metrics(&channel, &report);
                let _ = reply.send(Ok(report));
                counted.push((channel, report));
            }
            Finished { counted, ids: new_ids, committed: true }
        }
        Err(e) => {
            tracing::error!(error = %e, submissions = parts.len(), batch.rows = rows, "writer flush failed; nothing of it was stored");
            let failure = WriteError::Unavailable(e.to_string());
            for reply in replies.0.drain(..) {
                let _ = reply.send(Err(failure.clone()));
            }
            Finished { counted: Vec::new(), ids: HashMap::new(), committed: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use fleet_core::{FixKind, Imei, LatLon, PositionFix, PositionSource};
    use fleet_testkit::TestDb;
    use tokio_util::sync::CancellationToken;

    use crate::writer::{WriteError, Writer, WriterConfig};
    use crate::Record;

    /// A submission of this channel makes its flush panic (after a moment, so that the next
    /// batch is planned behind it) before it touches the database.
    const PANIC_CHANNEL: &str = "test.panic";
    /// A submission of this channel makes its flush start late, so the next batch waits on it.
    const SLOW_CHANNEL: &str = "test.slow";

    pub(super) async fn act_as_asked(parts: &[(String, Vec<Record>)]) {
        let asked = |c: &str| parts.iter().any(|(channel, _)| channel == c);
        if asked(PANIC_CHANNEL) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!("a flush panics as the test asked");
        }
        if asked(SLOW_CHANNEL) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn fix(device: u32, s: i64) -> Record {
        let t: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).single().expect("time")
            + TimeDelta::seconds(s);
        Record::Position(PositionFix {
            imei: Imei::parse(&format!("8612345678{device:05}")).expect("imei"),
            gps_time: t,
            location: LatLon::new(-1.28, 36.82).expect("valid"),
            speed_kmh: Some(1.0),
            course_deg: None,
            altitude_m: None,
            ignition: Some(true),
            satellites: Some(9),
            fix_kind: FixKind::Gps,
            battery_pct: None,
            external_v: None,
            odometer_m: None,
            source: PositionSource::Push,
            extra: None,
        })
    }

    #[tokio::test]
    async fn a_panicking_flush_answers_its_producers_keeps_its_log_windows_and_the_writer_goes_on()
    {
        let db = TestDb::migrated().await;
        let stop = CancellationToken::new();
        let config = WriterConfig {
            overlap_rows: 1,
            log_window: Duration::from_millis(1),
            ..WriterConfig::default()
        };
        let (w, task) = Writer::spawn(db.pool.clone(), config, stop.clone());
        let run = async {
            // counted in a log window that has closed when the panicking batch is planned, so
            // that flush is given it to store
            w.write("push.gps", vec![fix(1, 0)]).await.expect("stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (panicked, behind) = tokio::join!(w.write(PANIC_CHANNEL, vec![fix(1, 1)]), async {
                // in a batch of its own, planned while the panicking flush runs; a new device,
                // so it waits for that flush to end
                tokio::time::sleep(Duration::from_millis(50)).await;
                w.write("push.gps", vec![fix(2, 2)]).await
            });
            assert!(
                matches!(panicked, Err(WriteError::Unavailable(_))),
                "the panicked flush's producer got {panicked:?}"
            );
            assert_eq!(behind.expect("the batch behind it stored").new, 1);
            // and the writer still works
            assert_eq!(w.write("push.gps", vec![fix(1, 1)]).await.expect("stored").new, 1);
            stop.cancel();
            task.await.expect("writer ends");
        };
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the writer hung after a flush panicked");
        // every stored submission is counted in fleet.ingestion_log, including the window the
        // panicked flush was given
        let logged: i64 = sqlx::query_scalar(
            "select coalesce(sum(rows_in), 0)::int8 from fleet.ingestion_log where job = 'push.gps'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("log");
        assert_eq!(logged, 3);
        let stored: i64 = sqlx::query_scalar("select count(*) from fleet.positions")
            .fetch_one(&db.pool)
            .await
            .expect("count");
        assert_eq!(stored, 3);
    }

    #[tokio::test]
    async fn a_flush_waiting_for_the_one_before_holds_no_transaction_open() {
        let db = TestDb::migrated().await;
        let stop = CancellationToken::new();
        let config = WriterConfig { overlap_rows: 1, ..WriterConfig::default() };
        let (w, task) = Writer::spawn(db.pool.clone(), config, stop.clone());
        let (slow, behind, idle) = tokio::join!(
            w.write(SLOW_CHANNEL, vec![fix(1, 0)]),
            async {
                // a batch of its own, planned while the slow flush runs; a new device, so it
                // waits for that flush to commit
                tokio::time::sleep(Duration::from_millis(50)).await;
                w.write("push.gps", vec![fix(2, 1)]).await
            },
            async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let idle: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                     where datname = current_database() and state = 'idle in transaction'",
                )
                .fetch_one(&db.pool)
                .await
                .expect("activity");
                idle
            }
        );
        assert_eq!(slow.expect("stored").new, 1);
        assert_eq!(behind.expect("stored").new, 1);
        assert_eq!(idle, 0, "a waiting flush held a transaction open");
        stop.cancel();
        task.await.expect("writer ends");
    }
}
