//! /healthz and /readyz over real HTTP against a real database.

use std::net::SocketAddr;

use fleet_testkit::TestDb;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Serves fleetd's router on port 0; the returned sender stops it.
async fn spawn_app(
    db: &TestDb,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let app = fleet_http::router(fleet_http::AppState::new(db.pool.clone()));
    let server = tokio::spawn(fleet_http::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

#[tokio::test]
async fn readyz_is_200_when_the_database_answers_and_the_schema_is_current() {
    let db = TestDb::migrated().await;
    let (addr, stop, server) = spawn_app(&db).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations"], "current");
    let (status, body) = get(addr, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    stop.send(()).expect("stop");
    server.await.expect("join").expect("clean shutdown");
}

#[tokio::test]
async fn readyz_is_503_while_migrations_are_pending() {
    let db = TestDb::empty().await;
    let (addr, _stop, _server) = spawn_app(&db).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "ok");
    let pending = fleet_db::migrate::MIGRATOR.iter().count();
    assert_eq!(
        body["migrations"],
        format!("not current: {pending} pending, 0 changed, 0 unknown to this fleetd")
    );
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_unreachable_but_healthz_still_answers() {
    let db = TestDb::migrated().await;
    let (addr, _stop, _server) = spawn_app(&db).await;
    db.pool.close().await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "unreachable");
    assert_eq!(get(addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readyz_lists_active_ops_alerts_and_metrics_show_each_alerts_state() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "insert into fleet.ops_alerts (alert, active, message, raised_at, cleared_at) values
         ('ingest_failing:poll.live', true, 'ingest job poll.live failed 3 times in a row', now(), null),
         ('fleet_data_stale', false, 'no new fix', now() - interval '1 hour', now())",
    )
    .execute(&db.pool)
    .await
    .expect("alerts");
    let (addr, _stop, _server) = spawn_app(&db).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "an alert does not take the API out of rotation: {body}");
    let alerts = body["alerts"].as_array().expect("alerts array");
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["alert"], "ingest_failing:poll.live");
    assert_eq!(alerts[0]["message"], "ingest job poll.live failed 3 times in a row");
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("fleetd_ops_alert_active{alert=\"ingest_failing:poll.live\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fleetd_ops_alert_active{alert=\"fleet_data_stale\"} 0"), "{metrics}");
}
