//! The simulated vendor's pushes against a real HTTP receiver.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Form, Router};
use chrono::{TimeZone, Utc};
use fleet_config::Secret;
use fleet_sim::push::{self, AckedItem, PushConfig, PushFormat, PushKind, PushObserver, PushStats};
use fleet_sim::{Fleet, SimClock};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Received {
    /// path -> every item received (duplicates included)
    items: Mutex<BTreeMap<String, Vec<serde_json::Value>>>,
    largest_batch: AtomicUsize,
    requests: AtomicUsize,
    /// answer 503 to this many requests first
    fail_first: AtomicUsize,
    wrong_token: AtomicUsize,
}

async fn receive(
    State(r): State<Arc<Received>>,
    Path(path): Path<String>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> StatusCode {
    r.requests.fetch_add(1, Ordering::SeqCst);
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let items: Vec<serde_json::Value> = if path == "notify" {
        assert_eq!(form.get("msgType").map(String::as_str), Some("jimi.push.device.alarm"));
        vec![serde_json::from_str(&form["data"]).expect("data is JSON")]
    } else {
        if form.get("token").map(String::as_str) != Some("push-secret") {
            r.wrong_token.fetch_add(1, Ordering::SeqCst);
        }
        serde_json::from_str(&form["data_list"]).expect("data_list is a JSON array")
    };
    r.largest_batch.fetch_max(items.len(), Ordering::SeqCst);
    r.items.lock().expect("lock").entry(path).or_default().extend(items);
    StatusCode::OK
}

async fn receiver(r: Arc<Received>) -> String {
    let app = Router::new().route("/push/{path}", post(receive)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/push")
}

/// Pushes a simulated working morning (07:45 to about 09:15 local, 1800x speed) and stops.
async fn push_morning(
    format: PushFormat,
    fail_first: usize,
    tweak: impl FnOnce(&mut PushConfig),
) -> (Arc<Received>, Arc<PushStats>, Arc<Fleet>, i64, i64) {
    let received = Arc::new(Received::default());
    received.fail_first.store(fail_first, Ordering::SeqCst);
    let base = receiver(received.clone()).await;
    let fleet = Arc::new(Fleet::new(4, 8));
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 4, 45, 0).single().expect("time").timestamp();
    let clock = SimClock::starting_at(start, 1800.0);
    let mut config = PushConfig::new(base, Secret::new("push-secret".to_owned()));
    config.format = format;
    config.tick = Duration::from_millis(100);
    config.max_delay_s = 60;
    config.duplicate_rate = 0.05;
    config.record_acks = true;
    // an hour and a half of the morning, then wait until all of it is acknowledged: a slow
    // machine takes longer, it does not deliver less
    let end = start + 5400;
    config.end_at = Some(end);
    // the span starts at the clock's start, not whenever the task first runs: on a busy machine
    // the spawned pusher may first look at the clock seconds (of simulated time) later
    config.start_at = Some(start);
    tweak(&mut config);
    let stats = Arc::new(PushStats::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(push::run(fleet.clone(), clock, config, stats.clone(), stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !stats.delivered_through(end) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pusher did not deliver the morning within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.expect("pusher ends");
    (received, stats, fleet, start, end)
}

/// Every fix of the pushed span has been received.
fn assert_everything_due_arrived(
    fleet: &Fleet,
    start: i64,
    end: i64,
    received: &[(String, String)],
) {
    let got: HashSet<&(String, String)> = received.iter().collect();
    let mut due = 0;
    for v in fleet.vehicles() {
        for f in fleet.history(v.index, start + 1, end) {
            due += 1;
            let key = (v.imei.to_string(), fleet_sim::server::wire_time(f.time));
            assert!(got.contains(&key), "due but never delivered: {key:?}");
        }
    }
    assert!(due > 50, "the check covered real data: {due}");
}

#[tokio::test]
async fn data_push_delivers_each_kind_in_batches_of_at_most_fifty_with_the_token() {
    let (received, stats, fleet, start, end) = push_morning(PushFormat::DataPush, 0, |_| {}).await;
    let items = received.items.lock().expect("lock");
    for path in ["pushgps", "pushhb", "pushtripreport"] {
        assert!(
            items.get(path).is_some_and(|v| !v.is_empty()),
            "nothing on /{path}: {:?}",
            items.keys()
        );
    }
    assert!(received.largest_batch.load(Ordering::SeqCst) <= 50);
    assert_eq!(received.wrong_token.load(Ordering::SeqCst), 0);

    // every GPS item is a fix of the simulated history, and duplicates happen
    let mut history = HashSet::new();
    for v in fleet.vehicles() {
        for f in fleet.history(v.index, start, end) {
            history.insert((v.imei.to_string(), fleet_sim::server::wire_time(f.time)));
        }
    }
    let gps = &items["pushgps"];
    let keys: Vec<(String, String)> = gps
        .iter()
        .map(|i| {
            (
                i["deviceImei"].as_str().expect("imei").to_owned(),
                i["gpsTime"].as_str().expect("time").to_owned(),
            )
        })
        .collect();
    for k in &keys {
        assert!(history.contains(k), "pushed fix not in history: {k:?}");
    }
    let distinct: HashSet<_> = keys.iter().collect();
    assert!(distinct.len() > 100, "an hour of 8 vehicles: {}", distinct.len());
    assert_everything_due_arrived(&fleet, start, end, &keys);
    assert!(keys.len() > distinct.len(), "some items are delivered twice");
    assert!(stats.duplicates_sent.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn refused_batches_are_sent_again_until_acknowledged() {
    let (received, stats, fleet, start, end) = push_morning(PushFormat::DataPush, 5, |_| {}).await;
    assert!(stats.requests_failed.load(Ordering::Relaxed) >= 5);
    let all: Vec<(String, String)> = received.items.lock().expect("lock")["pushgps"]
        .iter()
        .map(|i| {
            (
                i["deviceImei"].as_str().unwrap_or_default().to_owned(),
                i["gpsTime"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_everything_due_arrived(&fleet, start, end, &all);
    let acked = stats.acked.lock().expect("lock").clone();
    let items = received.items.lock().expect("lock");
    let gps_received: HashSet<(String, String)> = items["pushgps"]
        .iter()
        .map(|i| {
            (
                i["deviceImei"].as_str().unwrap_or_default().to_owned(),
                i["gpsTime"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let gps_acked: Vec<_> = acked.iter().filter(|a| a.kind == PushKind::Gps).collect();
    assert!(!gps_acked.is_empty());
    for a in gps_acked {
        let key = (a.imei.clone(), fleet_sim::server::wire_time(a.time));
        assert!(gps_received.contains(&key), "acknowledged but never received: {key:?}");
    }
}

#[tokio::test]
async fn the_open_api_push_carries_alarms_with_the_push_field_names() {
    let (received, _stats, _fleet, _, _) = push_morning(PushFormat::OpenApi, 0, |_| {}).await;
    let items = received.items.lock().expect("lock");
    assert!(
        items.keys().all(|k| k == "notify"),
        "only /notify in Open API mode: {:?}",
        items.keys()
    );
    let alarms = items.get("notify").cloned().unwrap_or_default();
    assert!(!alarms.is_empty(), "a morning of 8 vehicles raises alarms");
    for a in alarms {
        for field in ["imei", "deviceName", "alarmType", "alarmName", "lat", "lng", "alarmTime"] {
            assert!(a.get(field).is_some(), "{field} missing in {a}");
        }
    }
}

/// Every batch the observer was told of, with its latency.
#[derive(Debug, Default)]
struct Observed(Mutex<Vec<(PushKind, Vec<AckedItem>, Duration)>>);

impl PushObserver for Observed {
    fn acknowledged(&self, kind: PushKind, items: &[AckedItem], latency: Duration) {
        self.0.lock().expect("lock").push((kind, items.to_vec(), latency));
    }
}

#[tokio::test]
async fn a_shifted_concurrent_push_sends_the_same_fixes_later_and_tells_the_observer() {
    const SHIFT: i64 = 5 * 3600;
    let observed = Arc::new(Observed::default());
    let sink = observed.clone();
    let (received, stats, fleet, start, end) = push_morning(PushFormat::DataPush, 0, move |c| {
        c.in_flight = 4;
        c.lookahead_s = 600;
        c.time_shift_s = SHIFT;
        c.observer = Some(sink);
    })
    .await;
    let items = received.items.lock().expect("lock");
    let gps: Vec<(String, String)> = items["pushgps"]
        .iter()
        .map(|i| {
            assert_eq!(
                fleet_sim::server::parse_wire_time(i["gateTime"].as_str().unwrap_or_default()),
                fleet_sim::server::parse_wire_time(i["gpsTime"].as_str().unwrap_or_default())
                    .map(|t| t + 1),
                "every vendor time moves, the gate time with the fix time: {i}"
            );
            let t = fleet_sim::server::parse_wire_time(i["gpsTime"].as_str().unwrap_or_default())
                .expect("a vendor time");
            // back in the fleet's own time, to compare with its history
            (
                i["deviceImei"].as_str().unwrap_or_default().to_owned(),
                fleet_sim::server::wire_time(t - SHIFT),
            )
        })
        .collect();
    assert_everything_due_arrived(&fleet, start, end, &gps);

    // the observer heard of exactly what was acknowledged, shifted, with a latency each
    let observed = observed.0.lock().expect("lock");
    let mut told: Vec<AckedItem> = observed.iter().flat_map(|(_, i, _)| i.clone()).collect();
    let mut logged = stats.acked.lock().expect("lock").clone();
    told.sort();
    logged.sort();
    assert_eq!(told, logged);
    assert!(observed.iter().all(|(kind, items, latency)| {
        items.iter().all(|i| i.kind == *kind) && !latency.is_zero()
    }));
    let gps_told: HashSet<(String, i64)> =
        told.iter().filter(|a| a.kind == PushKind::Gps).map(|a| (a.imei.clone(), a.time)).collect();
    assert!(gps_told.iter().all(|(_, t)| *t > start + SHIFT && *t <= end + SHIFT));
    assert!(gps_told.len() > 100);
}
