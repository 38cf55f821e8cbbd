//! The push receivers over real HTTP into a real database.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fleet_config::Secret;
use fleet_ingest::{push_routes, PushReceiver, Writer, WriterConfig};
use fleet_sim::push::{PushConfig, PushFormat, PushKind, PushStats};
use fleet_sim::{Fleet, SimClock};
use fleet_testkit::TestDb;
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct App {
    base: String,
    writer_task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

async fn start(pool: sqlx::PgPool, max_body: usize) -> App {
    let stop = CancellationToken::new();
    let (writer, writer_task) = Writer::spawn(pool, WriterConfig::default(), stop.clone());
    let receiver = PushReceiver {
        writer,
        token: Some(Secret::new("s3cret-push".to_owned())),
        max_body_bytes: max_body,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/push", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, push_routes(receiver)).await });
    App { base, writer_task, stop }
}

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = reqwest::Client::new().post(url).form(form).send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

fn gps(imei: &str, minute: u32) -> serde_json::Value {
    let t = Utc.with_ymd_and_hms(2026, 11, 20, 7, minute, 0).single().expect("time");
    json!({"deviceImei": imei, "gpsTime": t.format("%Y-%m-%d %H:%M:%S").to_string(), "gateTime": "2026-11-20 07:00:01",
           "lat": -1.2921, "lng": 36.8219, "gpsSpeed": 35, "direction": 180, "acc": 1, "satelliteNum": 9, "postType": 1})
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test]
async fn pushed_fixes_are_stored_once_and_acknowledged_with_the_vendors_reply() {
    let db = TestDb::migrated().await;
    let app = start(db.pool.clone(), 1 << 20).await;
    let list =
        json!([gps("868120303960873", 1), gps("868120303960873", 2), gps("868120303960874", 1)])
            .to_string();
    let form = [("token", "s3cret-push"), ("data_list", list.as_str())];
    let (status, body) = post(&format!("{}/pushgps", app.base), &form).await;
    assert_eq!((status, body.as_str()), (200, "{\"code\":0,\"msg\":\"success\"}"));
    assert_eq!(post(&format!("{}/pushgps", app.base), &form).await.0, 200, "re-delivery is fine");
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 3);
    assert_eq!(count(&db, "select count(*) from fleet.device_latest").await, 2);
}

#[tokio::test]
async fn wrong_secrets_oversized_bodies_and_garbage_get_their_status_and_are_counted() {
    let db = TestDb::migrated().await;
    let app = start(db.pool.clone(), 4096).await;
    let list = json!([gps("868120303960873", 1)]).to_string();
    let url = format!("{}/pushgps", app.base);
    assert_eq!(post(&url, &[("token", "guess"), ("data_list", list.as_str())]).await.0, 401);
    assert_eq!(post(&url, &[("data_list", list.as_str())]).await.0, 401);
    let big = "x".repeat(10_000);
    assert_eq!(post(&url, &[("token", "s3cret-push"), ("data_list", big.as_str())]).await.0, 413);
    let (status, body) = post(&url, &[("token", "s3cret-push"), ("data_list", "{not json")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        post(&format!("{}/pushnothing", app.base), &[("token", "s3cret-push")]).await.0,
        404
    );

    // one good item and two bad ones: the good one is stored, the bad ones kept as rejects
    let mixed = json!([gps("868120303960875", 3), {"deviceImei": "12ab", "gpsTime": "2026-11-20 07:04:00", "lat": 1, "lng": 1},
                       {"deviceImei": "868120303960875", "gpsTime": "2026-11-20 07:05:00", "lat": 95.0, "lng": 36.8}]).to_string();
    assert_eq!(post(&url, &[("token", "s3cret-push"), ("data_list", mixed.as_str())]).await.0, 200);
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 1);
    let reasons: Vec<String> =
        sqlx::query_scalar("select reason from fleet.ingest_rejects order by reject_id")
            .fetch_all(&db.pool)
            .await
            .expect("rejects");
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("data_list:"), "{reasons:?}");
    assert!(reasons[1].starts_with("item 1:") && reasons[2].starts_with("item 2:"), "{reasons:?}");

    app.stop.cancel();
    app.writer_task.await.expect("writer stops");
    let (rows_in, rejected): (i64, i64) = sqlx::query_as(
        "select sum(rows_in)::bigint, sum(rows_rejected)::bigint from fleet.ingestion_log where job = 'push.gps'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("log");
    // 2 unauthorised + 1 oversized + 1 garbage list + 3 items of the mixed list
    assert_eq!((rows_in, rejected), (7, 6));
}

#[tokio::test]
async fn a_push_without_a_data_list_is_kept_as_a_reject_without_its_token() {
    let db = TestDb::migrated().await;
    let app = start(db.pool.clone(), 1 << 20).await;
    let (status, _) = post(
        &format!("{}/pushgps", app.base),
        &[("token", "s3cret-push"), ("msgType", "gps"), ("datalist", "[]")],
    )
    .await;
    assert_eq!(status, 400);
    // the token in the registered URL's query string is not kept either
    let (status, _) = post(&format!("{}/pushalarm?token=s3cret-push", app.base), &[]).await;
    assert_eq!(status, 400);
    let raws: Vec<String> =
        sqlx::query_scalar("select raw from fleet.ingest_rejects order by reject_id")
            .fetch_all(&db.pool)
            .await
            .expect("rejects");
    assert_eq!(raws, ["token=[removed]&msgType=gps&datalist=[]&", "token=[removed]&"]);
    assert!(raws.iter().all(|r| !r.contains("s3cret")), "{raws:?}");
}

#[tokio::test]
async fn the_open_api_push_takes_its_secret_from_the_registered_url() {
    let db = TestDb::migrated().await;
    let app = start(db.pool.clone(), 1 << 20).await;
    let alarm = json!({"imei": "868120145233604", "deviceName": "van", "alarmType": "2", "alarmName": "Power cut off alert",
                       "lat": "-1.29", "lng": "36.82", "alarmTime": "2026-11-20 06:00:00"}).to_string();
    let form = [("msgType", "jimi.push.device.alarm"), ("data", alarm.as_str())];
    assert_eq!(post(&format!("{}/notify", app.base), &form).await.0, 401);
    let (status, body) = post(&format!("{}/notify?token=s3cret-push", app.base), &form).await;
    assert_eq!((status, body.as_str()), (200, "{\"code\":0,\"message\":\"success\"}"));
    let class: String = sqlx::query_scalar("select alarm_class from fleet.alarms")
        .fetch_one(&db.pool)
        .await
        .expect("alarm");
    assert_eq!(class, "power");
    let raw = [
        ("msgType", "jimi.open.instruction.raw.receive"),
        ("data", r#"{"imei":"868120145233604","deviceName":"van","raw_data":"0A0C"}"#),
    ];
    assert_eq!(post(&format!("{}/notify?token=s3cret-push", app.base), &raw).await.0, 200);
    assert_eq!(count(&db, "select count(*) from fleet.alarms").await, 1);
}

#[tokio::test]
async fn receivers_answer_503_while_the_database_is_unavailable() {
    let db = TestDb::migrated().await;
    let pool = db.another_pool().await;
    let app = start(pool.clone(), 1 << 20).await;
    pool.close().await;
    let list = json!([gps("868120303960873", 1)]).to_string();
    let (status, _) = post(
        &format!("{}/pushgps", app.base),
        &[("token", "s3cret-push"), ("data_list", list.as_str())],
    )
    .await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn every_item_the_simulated_vendor_saw_acknowledged_is_in_the_database() {
    let db = TestDb::migrated().await;
    let app = start(db.pool.clone(), 1 << 20).await;
    let fleet = Arc::new(Fleet::new(13, 10));
    let start_at = Utc.with_ymd_and_hms(2026, 11, 24, 4, 30, 0).single().expect("time").timestamp();
    let mut config = PushConfig::new(app.base.clone(), Secret::new("s3cret-push".to_owned()));
    config.format = PushFormat::Both;
    config.tick = Duration::from_millis(100);
    config.duplicate_rate = 0.05;
    config.record_acks = true;
    let stats = Arc::new(PushStats::default());
    let stop = CancellationToken::new();
    let clock = SimClock::starting_at(start_at, 1800.0);
    let pusher = tokio::spawn(fleet_sim::push::run(
        fleet.clone(),
        clock,
        config,
        stats.clone(),
        stop.clone(),
    ));
    // run until what is asserted below has had its chance: over a hundred fixes, a heartbeat
    // and a duplicate acknowledged
    fleet_testkit::eventually(
        "over a hundred fixes, a heartbeat and a duplicate acknowledged",
        Duration::from_secs(30),
        async || {
            let acked = stats.acked.lock().expect("acks");
            let fixes: HashSet<(&str, i64)> = acked
                .iter()
                .filter(|a| a.kind == PushKind::Gps)
                .map(|a| (a.imei.as_str(), a.time))
                .collect();
            fixes.len() > 100
                && acked.iter().any(|a| a.kind == PushKind::Heartbeat)
                && stats.duplicates_sent.load(Ordering::Relaxed) > 0
        },
    )
    .await;
    stop.cancel();
    pusher.await.expect("pusher");

    let acked = stats.acked.lock().expect("acks").clone();
    let gps: HashSet<(String, i64)> = acked
        .iter()
        .filter(|a| a.kind == PushKind::Gps)
        .map(|a| (a.imei.clone(), a.time))
        .collect();
    assert!(gps.len() > 100, "{}", gps.len());
    let stored: HashSet<(String, i64)> = sqlx::query_as::<_, (String, i64)>(
        "select d.imei, extract(epoch from p.gps_time)::bigint from fleet.positions p join fleet.devices d using (device_id)",
    )
    .fetch_all(&db.pool)
    .await
    .expect("positions")
    .into_iter()
    .collect();
    assert!(
        gps.is_subset(&stored),
        "{} acknowledged fixes missing",
        gps.difference(&stored).count()
    );
    // what is stored is the fleet's history, once (a batch in flight at the stop may be stored
    // without its acknowledgement having been seen)
    let mut history = HashSet::new();
    for v in fleet.vehicles() {
        for f in fleet.history(v.index, start_at, clock.now()) {
            history.insert((v.imei.to_string(), f.time));
        }
    }
    assert!(stored.is_subset(&history), "stored fixes the fleet never reported");
    let heartbeats = count(&db, "select count(*) from fleet.heartbeats").await;
    assert!(heartbeats > 0);
    assert_eq!(
        count(&db, "select count(*) from fleet.ingest_rejects").await,
        0,
        "the simulator sends only valid items"
    );
}
