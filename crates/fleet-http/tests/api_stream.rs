//! The live stream over real HTTP: events written through the real ingest writer reach a
//! subscribed client as `position`, `status` and `alarm` events; a client resuming with
//! `Last-Event-ID` gets what it missed, or `reset` when that is gone; filters; auth.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_core::{AlarmClass, AlarmEvent, FixKind, Imei, LatLon, PositionFix, PositionSource};
use fleet_http::auth::Role;
use fleet_http::stream::StreamHub;
use fleet_ingest::{Record, Writer, WriterConfig};
use reqwest::Method;
use serde_json::Value;
use support::{kind, App, As};
use tokio_util::sync::CancellationToken;

const IMEI: &str = "861234567800042";

struct Live {
    app: App,
    writer: Writer,
    viewer: As,
    hub: Arc<StreamHub>,
    _stop: tokio_util::sync::DropGuard,
}

async fn live() -> Live {
    let mut hub = None;
    let app = App::start_with(|s| {
        hub = Some(s.stream.clone());
        s
    })
    .await;
    let hub = hub.expect("hub");
    let stop = CancellationToken::new();
    fleet_http::stream::spawn_listener(app.db.pool.clone(), hub.clone(), stop.clone());
    let (writer, _) = Writer::spawn(app.db.pool.clone(), WriterConfig::default(), stop.clone());
    let id = app.user("vera", Role::Viewer).await;
    let viewer = As::Bearer(app.token(id).await);
    for _ in 0..200 {
        if hub.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(hub.is_listening(), "listener started");
    Live { app, writer, viewer, hub, _stop: stop.drop_guard() }
}

fn fix(t: DateTime<Utc>, speed: f32) -> Record {
    Record::Position(PositionFix {
        imei: Imei::parse(IMEI).expect("imei"),
        gps_time: t,
        location: LatLon::new(-1.2921, 36.8219).expect("valid"),
        speed_kmh: Some(speed),
        course_deg: Some(90.0),
        altitude_m: None,
        ignition: Some(true),
        satellites: Some(9),
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: Some(12.4),
        odometer_m: None,
        source: PositionSource::Push,
        extra: None,
    })
}

fn alarm(t: DateTime<Utc>) -> Record {
    Record::Alarm(AlarmEvent {
        imei: Imei::parse(IMEI).expect("imei"),
        alarm_time: t,
        alarm_type: "1".into(),
        alarm_name: "SOS alert".into(),
        class: AlarmClass::Safety,
        location: LatLon::new(-1.2921, 36.8219).ok(),
        speed_kmh: Some(0.0),
        source: PositionSource::Push,
        extra: None,
    })
}

/// One received event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// An open stream, parsed as it arrives.
struct Client {
    resp: reqwest::Response,
    buf: String,
}

impl Client {
    async fn open(l: &Live, query: &str, last: Option<&str>) -> Client {
        let mut req = l.app.call(Method::GET, &format!("/stream{query}"), &l.viewer);
        if let Some(id) = last {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("stream");
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/event-stream"));
        Client { resp, buf: String::new() }
    }

    /// The next event (comments skipped), waiting at most `secs`.
    async fn next(&mut self, secs: u64) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, "message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).expect("json data");
                    return Some(Sse { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await.ok()?;
            let chunk = chunk.expect("chunk")?;
            self.buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// Events until one of `event` arrives (which is returned last).
    async fn until(&mut self, event: &str) -> Vec<Sse> {
        let mut seen = Vec::new();
        while let Some(e) = self.next(20).await {
            let done = e.event == event;
            seen.push(e);
            if done {
                return seen;
            }
        }
        panic!("no {event} event; saw {seen:?}");
    }
}

#[tokio::test]
async fn stored_positions_and_alarms_reach_subscribers_as_events_with_ids() {
    let l = live().await;
    let mut c = Client::open(&l, "", None).await;
    let t = Utc::now() - chrono::TimeDelta::seconds(5);
    l.writer.write("push.gps", vec![fix(t, 42.0)]).await.expect("stored");
    let seen = c.until("position").await;
    let p = seen.last().expect("position");
    assert!(p.id.is_some(), "{p:?}");
    assert_eq!(p.data["imei"], IMEI);
    assert_eq!(p.data["speed_kmh"], 42.0);
    assert_eq!(p.data["status"], "moving");
    assert_eq!(p.data["ignition"], true);
    assert!((p.data["lat"].as_f64().expect("lat") + 1.2921).abs() < 1e-9);
    let device_id = p.data["device_id"].as_i64().expect("id");
    let status = c.until("status").await.pop().expect("status");
    assert_eq!(
        (status.data["status"].as_str(), status.data["device_id"].as_i64()),
        (Some("moving"), Some(device_id))
    );

    l.writer.write("push.alarm", vec![alarm(t)]).await.expect("stored");
    let a = c.until("alarm").await.pop().expect("alarm");
    assert_eq!(a.data["device_id"].as_i64(), Some(device_id));
    assert_eq!(a.data["type"], "1");
    assert_eq!(a.data["class"], "safety");
    assert_eq!(a.data["name"], "SOS alert");
    assert!(a.data["alarm_time"].is_string());

    // stopped with the ignition on: a position and a status change; a duplicate fix is no event
    l.writer
        .write("push.gps", vec![fix(t, 42.0), fix(t + chrono::TimeDelta::seconds(1), 0.0)])
        .await
        .expect("stored");
    let seen = c.until("status").await;
    assert!(seen.iter().filter(|e| e.event == "position").count() == 1, "{seen:?}");
    let s = seen.last().expect("status");
    assert_eq!(
        (s.data["status"].as_str(), s.data["previous"].as_str()),
        (Some("idling"), Some("moving"))
    );
}

#[tokio::test]
async fn a_client_resuming_with_last_event_id_gets_what_it_missed_or_a_reset() {
    let l = live().await;
    let t = Utc::now() - chrono::TimeDelta::seconds(30);
    let mut watcher = Client::open(&l, "", None).await;
    let mut c = Client::open(&l, "", None).await;
    l.writer.write("push.gps", vec![fix(t, 10.0)]).await.expect("stored");
    let first = c.until("position").await.pop().expect("first");
    let first_id = first.id.clone().expect("id");
    drop(c);
    watcher.until("position").await;
    // written while the client was away
    l.writer
        .write("push.gps", vec![fix(t + chrono::TimeDelta::seconds(10), 20.0)])
        .await
        .expect("stored");
    l.writer.write("push.alarm", vec![alarm(t)]).await.expect("stored");
    watcher.until("alarm").await;

    let mut again = Client::open(&l, "", Some(&first_id)).await;
    let missed = again.until("alarm").await;
    let kinds: Vec<&str> = missed.iter().map(|e| e.event.as_str()).collect();
    assert!(kinds.contains(&"position"), "{kinds:?}");
    assert!(!kinds.contains(&"reset"), "{kinds:?}");
    let p = missed.iter().find(|e| e.event == "position").expect("position");
    assert_eq!(p.data["speed_kmh"], 20.0, "only what came after the id");
    assert_ne!(p.id.as_deref(), Some(first_id.as_str()));

    // an id of another run of the server, or gone from the buffer: reset, with an id to go on from
    let mut stale = Client::open(&l, "", Some("0-5")).await;
    let r = stale.next(10).await.expect("reset");
    assert_eq!(r.event, "reset");
    assert!(r.data["reason"].is_string());
    assert!(r.id.is_some());
    assert!(l.hub.clients() >= 2);
}

#[tokio::test]
async fn filters_select_the_vehicles_and_bad_filters_are_422() {
    let l = live().await;
    let t = Utc::now() - chrono::TimeDelta::seconds(5);
    let mut other = Client::open(&l, "?city=Mombasa", None).await;
    let mut here = Client::open(&l, "?city=nairobi", None).await;
    l.writer.write("push.gps", vec![fix(t, 0.0)]).await.expect("stored");
    let first = here.next(3).await;
    assert!(first.is_none(), "device has no city yet: {first:?}");
    sqlx::query("update fleet.devices set city = 'Nairobi' where imei = $1")
        .bind(IMEI)
        .execute(&l.app.db.pool)
        .await
        .expect("city");
    l.writer
        .write("push.gps", vec![fix(t + chrono::TimeDelta::seconds(1), 0.0)])
        .await
        .expect("stored");
    let p = here.until("position").await.pop().expect("position");
    assert_eq!(p.data["imei"], IMEI);
    assert!(other.next(2).await.is_none(), "another city sees nothing");

    let (status, body) = l.app.get("/stream?device_id=x", &l.viewer).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(kind(&body), "validation");
}

#[tokio::test]
async fn the_stream_needs_a_login() {
    let l = live().await;
    let (status, body) = l.app.get("/stream", &As::Anonymous).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(kind(&body), "unauthenticated");
    let (status, _) = l.app.get("/stream", &As::Bearer("fltd_nope".into())).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn open_streams_end_when_the_server_shuts_down() {
    let l = live().await;
    let mut c = Client::open(&l, "", None).await;
    let started = std::time::Instant::now();
    l.hub.close();
    assert!(c.next(10).await.is_none());
    assert!(started.elapsed() < Duration::from_secs(5), "the stream ended, not timed out");
}
