//! A device's status is one rule wherever it is read: the live map, the live stream, ingest
//! health and the reporting views all call `fleet.device_status`, so a per-device
//! `offline_after_s` override makes a vehicle offline everywhere at once.

mod support;

use chrono::{TimeDelta, Utc};
use reqwest::Method;
use serde_json::Value;
use support::live::{fix, live, Client, IMEI};

#[tokio::test]
async fn a_per_device_offline_override_makes_the_vehicle_offline_on_every_reader() {
    let l = live().await;
    let pool = &l.app.db.pool;
    // the global threshold is an hour; this vehicle is offline after ten minutes
    sqlx::query(
        "insert into fleet.analytics_config (scope, scope_key, offline_after_s)
         values ('device', $1, 600)",
    )
    .bind(IMEI)
    .execute(pool)
    .await
    .expect("override");
    let mut c = Client::open(&l, "", None).await;
    // a fix twenty minutes old, ignition on and stationary: idling, were it not too old
    let t = Utc::now() - TimeDelta::minutes(20);
    l.writer.write("push.gps", vec![fix(t, 0.0)]).await.expect("stored");

    let position = c.until("position").await.pop().expect("position");
    assert_eq!(position.data["status"], "offline", "stream: {position:?}");
    let device_id = position.data["device_id"].as_i64().expect("device id");

    let resp = l.app.call(Method::GET, "/fleet/live", &l.viewer).send().await.expect("live");
    assert_eq!(resp.status(), 200);
    let fc: Value = resp.json().await.expect("json");
    assert_eq!(fc["features"][0]["properties"]["status"], "offline", "live map: {fc}");
    assert_eq!(fc["summary"]["offline"], 1);

    let (status, health) = l.app.get("/health/devices", &l.viewer).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["items"][0]["status"], "offline", "ingest health: {health}");

    let report: String =
        sqlx::query_scalar("select status from reporting.v_live_positions where device_id = $1")
            .bind(device_id as i32)
            .fetch_one(pool)
            .await
            .expect("reporting view");
    assert_eq!(report, "offline", "reporting.v_live_positions");
    let (_, idle) = l.app.get("/fleet/idle", &l.viewer).await;
    assert_eq!(idle, serde_json::json!([]), "an offline vehicle is not idling");

    // without the override the global hour applies again: idling everywhere
    sqlx::query("delete from fleet.analytics_config where scope = 'device'")
        .execute(pool)
        .await
        .expect("drop override");
    let resp = l.app.call(Method::GET, "/fleet/live", &l.viewer).send().await.expect("live");
    let fc: Value = resp.json().await.expect("json");
    assert_eq!(fc["features"][0]["properties"]["status"], "idling", "{fc}");
    let (_, health) = l.app.get("/health/devices", &l.viewer).await;
    assert_eq!(health["items"][0]["status"], "stale", "{health}");
    let (_, idle) = l.app.get("/fleet/idle", &l.viewer).await;
    assert_eq!(idle[0]["device_id"], device_id, "idle list: {idle}");
}
