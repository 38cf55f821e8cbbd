//! The live stream over real HTTP: events written through the real ingest writer reach a
//! subscribed client as `position`, `status` and `alarm` events; a client resuming with
//! `Last-Event-ID` gets what it missed, or `reset` when that is gone; filters; auth.

mod support;

use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;

use fleet_http::stream::{StreamHub, RING_CAPACITY};
use support::live::{alarm, fix, live, live_with, Client, IMEI};
use support::{kind, As};

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
async fn changes_nobody_watches_are_skipped_and_resuming_across_them_resets() {
    let l = live_with(|mut s| {
        s.stream = Arc::new(StreamHub::new(RING_CAPACITY).with_resume_grace(Duration::ZERO));
        s
    })
    .await;
    let t = Utc::now() - chrono::TimeDelta::seconds(30);
    let mut c = Client::open(&l, "", None).await;
    l.writer.write("push.gps", vec![fix(t, 10.0)]).await.expect("stored");
    let first = c.until("position").await.pop().expect("first");
    let first_id = first.id.clone().expect("id");
    drop(c);
    for _ in 0..200 {
        if l.hub.clients() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(l.hub.clients(), 0, "the stream closed");

    // nobody watches: stopping (moving -> idling) becomes no event, and no row is read for it
    let gaps = l.hub.gaps();
    l.writer
        .write("push.gps", vec![fix(t + chrono::TimeDelta::seconds(10), 0.0)])
        .await
        .expect("stored");
    for _ in 0..400 {
        if l.hub.gaps() > gaps {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(l.hub.gaps() > gaps, "the unwatched change was skipped");
    let mut resumed = Client::open(&l, "", Some(&first_id)).await;
    let r = resumed.next(10).await.expect("reset");
    assert_eq!(r.event, "reset", "resuming across skipped changes: {r:?}");

    // watched again: moving as before the gap, but idling in between was skipped, so the status
    // goes out again rather than being taken for no change
    l.writer
        .write("push.gps", vec![fix(t + chrono::TimeDelta::seconds(20), 30.0)])
        .await
        .expect("stored");
    let seen = resumed.until("status").await;
    let p = seen.iter().find(|e| e.event == "position").expect("position");
    assert_eq!(p.data["speed_kmh"], 30.0);
    let s = seen.last().expect("status");
    assert_eq!(s.data["status"], "moving");
    assert!(s.data["previous"].is_null(), "{s:?}");
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
