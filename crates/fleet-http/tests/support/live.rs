//! The live stream's test kit: an API with the stream listener and a real ingest writer over
//! one test database, a viewer, fixes and alarms to write, and an SSE client that parses events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_core::{AlarmClass, AlarmEvent, FixKind, Imei, LatLon, PositionFix, PositionSource};
use fleet_http::auth::Role;
use fleet_http::stream::StreamHub;
use fleet_http::AppState;
use fleet_ingest::{Record, Writer, WriterConfig};
use reqwest::Method;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{App, As};

pub const IMEI: &str = "861234567800042";

pub struct Live {
    pub app: App,
    pub writer: Writer,
    pub viewer: As,
    pub hub: Arc<StreamHub>,
    _stop: tokio_util::sync::DropGuard,
}

pub async fn live() -> Live {
    live_with(|s| s).await
}

/// [`live`] with the state adjusted by `configure` (stream limits).
pub async fn live_with(configure: impl FnOnce(AppState) -> AppState) -> Live {
    live_on(configure, |app| app.db.pool.clone()).await
}

/// [`live_with`] whose stream listener is given the pool `listener_pool` returns (as fleetd
/// gives it the API's pool), the rest running on the test database's pool.
pub async fn live_on(
    configure: impl FnOnce(AppState) -> AppState,
    listener_pool: impl FnOnce(&App) -> sqlx::PgPool,
) -> Live {
    let mut hub = None;
    let app = App::start_with(|s| {
        let s = configure(s);
        hub = Some(s.stream.clone());
        s
    })
    .await;
    let hub = hub.expect("hub");
    let stop = CancellationToken::new();
    fleet_http::stream::spawn_listener(listener_pool(&app), hub.clone(), stop.clone());
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

pub fn fix(t: DateTime<Utc>, speed: f32) -> Record {
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

pub fn alarm(t: DateTime<Utc>) -> Record {
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
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// An open stream, parsed as it arrives.
pub struct Client {
    pub resp: reqwest::Response,
    buf: String,
}

impl Client {
    pub async fn open(l: &Live, query: &str, last: Option<&str>) -> Client {
        Self::open_as(&l.app, &l.viewer, query, last).await
    }

    /// Opens the stream as `who`; asserts it opened.
    pub async fn open_as(app: &App, who: &As, query: &str, last: Option<&str>) -> Client {
        let mut req = app.call(Method::GET, &format!("/stream{query}"), who);
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
    pub async fn next(&mut self, secs: u64) -> Option<Sse> {
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
    pub async fn until(&mut self, event: &str) -> Vec<Sse> {
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

    /// Whether the server ends the stream within `within` (events and heartbeats skipped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return false,
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
            }
        }
    }
}
