//! The simulated vendor pushing to a receiver: it follows simulated time, queues what each
//! vehicle reports with a delivery delay (some items late, some twice, batches out of order),
//! and POSTs batches of at most 50 items in the Data Push form (`token` + `data_list` to
//! `<base>/pushgps` …) and/or alarms in the Open API form (`msgType` + `data` to
//! `<base>/notify`), retrying until the receiver answers 2xx.

mod items;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_config::Secret;
use futures_util::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

pub use items::{items_between, shift_times, PushItem, PushKind, HEARTBEAT_EVERY_S};

use crate::model::rng::{hash, unit};
use crate::{Fleet, SimClock};

/// Which push interface the simulated vendor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// Everything through the Data Push paths.
    DataPush,
    /// Alarms only, through the Open API push (`msgType` + `data`).
    OpenApi,
    /// Both of the above (alarms arrive twice, once per interface).
    Both,
}

/// How the simulated vendor pushes.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The receiver's base URL; the vendor appends `/pushgps`, `/notify`, ….
    pub base_url: String,
    /// The Data Push shared secret (`token` field).
    pub token: Secret<String>,
    pub format: PushFormat,
    /// How often the pusher looks for due items (wall clock).
    pub tick: Duration,
    /// Delivery delay of an item, simulated seconds: uniform in `0..=max_delay_s`, and one in
    /// twenty items up to five times that.
    pub max_delay_s: i64,
    /// Share of items sent a second time later.
    pub duplicate_rate: f64,
    /// Send each batch's items in reverse event order.
    pub out_of_order: bool,
    /// Most items per Data Push request (the vendor sends up to 50).
    pub batch_max: usize,
    pub request_timeout: Duration,
    /// Simulated time to push from; `None` is the clock's now at start.
    pub start_at: Option<i64>,
    /// Simulated time to push up to; `None` follows the clock forever.
    pub end_at: Option<i64>,
    /// Keep a log of every acknowledged item (for tests that check nothing acknowledged is lost).
    pub record_acks: bool,
    /// Batches in flight at once (1: one request after the other, as a single vendor
    /// connection sends them).
    pub in_flight: usize,
    /// Simulated seconds of reports taken ahead of the clock, in one go once half of it has
    /// passed: a large fleet's days are then computed once per span instead of once per tick.
    /// Nothing is sent before it is due.
    pub lookahead_s: i64,
    /// Added to every time the vendor reports: the fleet's day replayed this many seconds
    /// later, e.g. its morning rush on the wall clock of the night. The clock and `start_at`
    /// / `end_at` stay in the fleet's (unshifted) time.
    pub time_shift_s: i64,
    /// Told of every acknowledged batch with how long its request took.
    pub observer: Option<Arc<dyn PushObserver>>,
}

/// Watches the pusher's acknowledged batches (benchmarks time the receiver with it).
pub trait PushObserver: Send + Sync + std::fmt::Debug {
    /// `items` of one batch of `kind` were acknowledged (times as sent, shift applied) after
    /// `latency` (the batch's request; both requests when pushed through both interfaces).
    fn acknowledged(&self, kind: PushKind, items: &[AckedItem], latency: Duration);
}

impl PushConfig {
    pub fn new(base_url: impl Into<String>, token: Secret<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token,
            format: PushFormat::DataPush,
            tick: Duration::from_secs(2),
            max_delay_s: 30,
            duplicate_rate: 0.01,
            out_of_order: true,
            batch_max: 50,
            request_timeout: Duration::from_secs(30),
            start_at: None,
            end_at: None,
            record_acks: false,
            in_flight: 1,
            lookahead_s: 0,
            time_shift_s: 0,
            observer: None,
        }
    }
}

/// An item the receiver acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckedItem {
    pub kind: PushKind,
    pub imei: String,
    pub time: i64,
}

/// Counters of a running pusher.
#[derive(Debug, Default)]
pub struct PushStats {
    pub requests_ok: AtomicU64,
    pub requests_failed: AtomicU64,
    pub items_acked: AtomicU64,
    pub duplicates_sent: AtomicU64,
    pub acked: Mutex<Vec<AckedItem>>,
    /// Simulated time up to which reports have been taken from the fleet.
    pub cursor: AtomicI64,
    /// Items taken but not yet acknowledged.
    pub pending: AtomicUsize,
}

impl PushStats {
    /// Whether everything up to `t` (simulated) has been taken and acknowledged.
    pub fn delivered_through(&self, t: i64) -> bool {
        self.cursor.load(Ordering::Relaxed) >= t && self.pending.load(Ordering::Relaxed) == 0
    }
}

/// Most items waiting for delivery; past this the pusher stops taking new data until the
/// receiver catches up (backpressure instead of unbounded memory).
const MAX_PENDING: usize = 200_000;
/// Simulated seconds of reports taken from the fleet at a time.
const STEP_S: i64 = 900;
/// Steps per tick, so one tick's work stays bounded at high speed-ups.
const MAX_STEPS_PER_TICK: usize = 8;

/// A stable number for an IMEI (its digits), for the delivery-delay hash.
fn imei_key(imei: &str) -> u64 {
    imei.bytes()
        .fold(0u64, |acc, b| acc.wrapping_mul(10).wrapping_add(u64::from(b.wrapping_sub(b'0'))))
}

/// Runs the pusher until `shutdown`.
pub async fn run(
    fleet: Arc<Fleet>,
    clock: SimClock,
    config: PushConfig,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder().timeout(config.request_timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "simulator pusher cannot build its HTTP client");
            return;
        }
    };
    let mut cursor = config.start_at.unwrap_or_else(|| clock.now());
    let mut pending: BTreeMap<(i64, u64), PushItem> = BTreeMap::new();
    let mut seq: u64 = 0;
    let mut ticker = tokio::time::interval(config.tick);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = clock.now();
        // with a lookahead, refill only once half of it is used up, then to its full length
        let horizon =
            if cursor - now > config.lookahead_s / 2 { cursor } else { now + config.lookahead_s };
        let take_until = config.end_at.map_or(horizon, |end| horizon.min(end));
        // take the fleet's reports in bounded steps, so catching up after an outage neither
        // builds millions of items at once nor starves the delivery below
        let mut steps = 0;
        while pending.len() < MAX_PENDING && cursor < take_until && steps < MAX_STEPS_PER_TICK {
            let upto = (cursor + STEP_S).min(take_until);
            let f = fleet.clone();
            let from = cursor;
            let items = tokio::task::spawn_blocking(move || {
                f.vehicles()
                    .iter()
                    .flat_map(|v| items_between(&f, v, from, upto))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for item in items {
                let h =
                    hash(&[fleet.seed(), item.time as u64, item.kind as u64, imei_key(&item.imei)]);
                let late = if unit(h.rotate_left(7)) < 0.05 { 5.0 } else { 1.0 };
                let delay = (unit(h) * config.max_delay_s as f64 * late) as i64;
                if unit(h.rotate_left(23)) < config.duplicate_rate {
                    seq += 1;
                    pending.insert((item.time + delay + config.max_delay_s + 1, seq), item.clone());
                    stats.duplicates_sent.fetch_add(1, Ordering::Relaxed);
                }
                seq += 1;
                pending.insert((item.time + delay, seq), item);
            }
            cursor = upto;
            steps += 1;
        }
        let later = pending.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut pending, later);
        let mut by_kind: BTreeMap<PushKind, Vec<PushItem>> = BTreeMap::new();
        for item in due.into_values() {
            by_kind.entry(item.kind).or_default().push(item);
        }
        let mut batches: Vec<(PushKind, Vec<PushItem>)> = Vec::new();
        for (kind, mut items) in by_kind {
            if config.out_of_order {
                items.reverse();
            }
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                batches.push((kind, items.by_ref().take(config.batch_max.max(1)).collect()));
            }
        }
        let (http, config_ref, stats_ref) = (&http, &config, &*stats);
        let mut sends = stream::iter(batches.into_iter().map(|(kind, batch)| async move {
            let ok = deliver(http, config_ref, kind, &batch, stats_ref).await;
            (batch, ok)
        }))
        .buffer_unordered(config.in_flight.max(1));
        loop {
            let (batch, delivered) = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = sends.next() => match next {
                    Some(done) => done,
                    None => break,
                },
            };
            if !delivered {
                // not acknowledged: back in the queue, due again at once
                for item in batch {
                    seq += 1;
                    pending.insert((now, seq), item);
                }
            }
        }
        drop(sends);
        stats.cursor.store(cursor, Ordering::Relaxed);
        stats.pending.store(pending.len(), Ordering::Relaxed);
    }
}

/// Sends one batch through the configured interface(s); true when every request got a 2xx.
async fn deliver(
    http: &reqwest::Client,
    config: &PushConfig,
    kind: PushKind,
    batch: &[PushItem],
    stats: &PushStats,
) -> bool {
    let base = config.base_url.trim_end_matches('/');
    let shift = config.time_shift_s;
    let started = Instant::now();
    let mut ok = true;
    if matches!(config.format, PushFormat::DataPush | PushFormat::Both) {
        let list = serde_json::Value::Array(
            batch.iter().map(|i| items::shift_times(i.body.clone(), shift)).collect(),
        );
        let form = [("token", config.token.expose().clone()), ("data_list", list.to_string())];
        ok &= send(http, &format!("{base}{}", kind.path()), &form, stats).await;
    }
    if kind == PushKind::Alarm && matches!(config.format, PushFormat::OpenApi | PushFormat::Both) {
        for item in batch {
            let Some(data) = &item.open_api else { continue };
            let data = items::shift_times(data.clone(), shift);
            let form =
                [("msgType", "jimi.push.device.alarm".to_owned()), ("data", data.to_string())];
            ok &= send(http, &format!("{base}/notify"), &form, stats).await;
        }
    }
    let latency = started.elapsed();
    let only_open_api = config.format == PushFormat::OpenApi && kind != PushKind::Alarm;
    if ok && !only_open_api {
        stats.items_acked.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if config.record_acks || config.observer.is_some() {
            let acked: Vec<AckedItem> = batch
                .iter()
                .map(|i| AckedItem { kind: i.kind, imei: i.imei.clone(), time: i.time + shift })
                .collect();
            if let Some(observer) = &config.observer {
                observer.acknowledged(kind, &acked, latency);
            }
            if config.record_acks {
                if let Ok(mut log) = stats.acked.lock() {
                    log.extend(acked);
                }
            }
        }
    }
    ok
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, String)],
    stats: &PushStats,
) -> bool {
    match http.post(url).form(form).send().await {
        Ok(resp) if resp.status().is_success() => {
            stats.requests_ok.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(resp) => {
            stats.requests_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url, status = %resp.status(), "push not acknowledged; will retry");
            false
        }
        Err(e) => {
            stats.requests_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url, error = %e, "push failed; will retry");
            false
        }
    }
}
