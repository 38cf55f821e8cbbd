//! The simulated vendor pushing to a receiver: it follows simulated time, queues what each
//! vehicle reports with a delivery delay (some items late, some twice, batches out of order),
//! and POSTs batches of at most 50 items in the Data Push form (`token` + `data_list` to
//! `<base>/pushgps` …) and/or alarms in the Open API form (`msgType` + `data` to
//! `<base>/notify`), retrying until the receiver answers 2xx.

mod items;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_config::Secret;
use tokio_util::sync::CancellationToken;

pub use items::{items_between, PushItem, PushKind, HEARTBEAT_EVERY_S};

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
        let take_until = config.end_at.map_or(now, |end| now.min(end));
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
        for (kind, mut items) in by_kind {
            if config.out_of_order {
                items.reverse();
            }
            for batch in items.chunks(config.batch_max.max(1)) {
                let delivered = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ok = deliver(&http, &config, kind, batch, &stats) => ok,
                };
                if !delivered {
                    // not acknowledged: back in the queue, due again at once
                    for item in batch {
                        seq += 1;
                        pending.insert((now, seq), item.clone());
                    }
                }
            }
        }
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
    let mut ok = true;
    if matches!(config.format, PushFormat::DataPush | PushFormat::Both) {
        let list = serde_json::Value::Array(batch.iter().map(|i| i.body.clone()).collect());
        let form = [("token", config.token.expose().clone()), ("data_list", list.to_string())];
        ok &= send(http, &format!("{base}{}", kind.path()), &form, stats).await;
    }
    if kind == PushKind::Alarm && matches!(config.format, PushFormat::OpenApi | PushFormat::Both) {
        for item in batch {
            let Some(data) = &item.open_api else { continue };
            let form =
                [("msgType", "jimi.push.device.alarm".to_owned()), ("data", data.to_string())];
            ok &= send(http, &format!("{base}/notify"), &form, stats).await;
        }
    }
    let only_open_api = config.format == PushFormat::OpenApi && kind != PushKind::Alarm;
    if ok && !only_open_api {
        stats.items_acked.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if config.record_acks {
            if let Ok(mut log) = stats.acked.lock() {
                log.extend(batch.iter().map(|i| AckedItem {
                    kind: i.kind,
                    imei: i.imei.clone(),
                    time: i.time,
                }));
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
