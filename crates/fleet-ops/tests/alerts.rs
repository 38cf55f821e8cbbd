//! Ops alerts against a real database: raised once per state change, cleared once; stale fleet
//! data; webhooks retried until a receiver accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use fleet_config::{AlertConfig, Secret};
use fleet_ops::alerts::{self, Notification};
use fleet_testkit::TestDb;

fn config() -> AlertConfig {
    AlertConfig {
        webhooks: vec![],
        failures: 2,
        stale_after: Duration::from_secs(1800),
        check_every: Duration::from_secs(1),
    }
}

async fn run(db: &TestDb, job: &str, status: &str, error: Option<&str>) {
    sqlx::query(
        r#"insert into fleet.ingestion_log (job, started_at, finished_at, status, error, detail)
           values ($1, clock_timestamp(), clock_timestamp(), $2, $3, '{"source": "poller"}')"#,
    )
    .bind(job)
    .bind(status)
    .bind(error)
    .execute(&db.pool)
    .await
    .expect("log a run");
}

async fn step(db: &TestDb) -> Vec<Notification> {
    let holding = alerts::conditions(&db.pool, &config()).await.expect("conditions");
    alerts::transition(&db.pool, &holding).await.expect("transition")
}

#[tokio::test]
async fn a_failing_job_raises_once_and_clears_once() {
    let db = TestDb::migrated().await;
    run(&db, "poll.live", "ok", None).await;
    assert!(step(&db).await.is_empty());
    run(&db, "poll.live", "failed", Some("the Tracksolid credentials were refused")).await;
    assert!(step(&db).await.is_empty(), "one failure is below the threshold of two");
    run(&db, "poll.live", "failed", Some("the Tracksolid credentials were refused")).await;
    let raised = step(&db).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!((raised[0].alert.as_str(), raised[0].state), ("ingest_failing:poll.live", "raised"));
    assert!(raised[0].text.contains("failed 2 times in a row"), "{}", raised[0].text);
    assert!(raised[0].text.contains("credentials were refused"), "{}", raised[0].text);

    run(&db, "poll.live", "failed", None).await;
    assert!(step(&db).await.is_empty(), "still failing: no second raise");
    assert!(step(&db).await.is_empty());
    let active = fleet_db::ops_alerts::active(&db.pool).await.expect("active");
    assert_eq!(active.len(), 1);

    run(&db, "poll.live", "ok", None).await;
    let cleared = step(&db).await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(cleared[0].state, "cleared");
    assert!(step(&db).await.is_empty(), "cleared once");
    assert!(fleet_db::ops_alerts::active(&db.pool).await.expect("active").is_empty());

    // a second episode raises again
    run(&db, "poll.live", "failed", None).await;
    run(&db, "poll.live", "failed", None).await;
    assert_eq!(step(&db).await.len(), 1);
}

#[tokio::test]
async fn fleet_data_going_stale_raises_and_fresh_data_clears() {
    let db = TestDb::migrated().await;
    sqlx::raw_sql(
        "insert into fleet.devices (imei) values ('359339075012345');
         insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, source, motion_state, state_since)
             select device_id, now() - interval '2 hours', now() - interval '2 hours', -1.28, 36.82, 'push', 'parked', now() - interval '3 hours'
             from fleet.devices",
    )
    .execute(&db.pool)
    .await
    .expect("seed");
    let raised = step(&db).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].alert, alerts::FLEET_DATA_STALE);
    sqlx::query("update fleet.device_latest set received_at = now(), gps_time = now()")
        .execute(&db.pool)
        .await
        .expect("fresh");
    let cleared = step(&db).await;
    assert_eq!(cleared.iter().map(|n| n.state).collect::<Vec<_>>(), vec!["cleared"]);
}

#[derive(Clone, Default)]
struct Receiver {
    attempts: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn hook(State(r): State<Receiver>, Json(body): Json<serde_json::Value>) -> StatusCode {
    // the first attempt fails, as a webhook endpoint briefly down would
    if r.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    r.accepted.lock().expect("lock").push(body);
    StatusCode::OK
}

#[tokio::test]
async fn a_webhook_is_retried_until_it_accepts_and_gets_a_slack_text_field() {
    let receiver = Receiver::default();
    let app = Router::new().route("/hook", post(hook)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let n = Notification {
        text: "fleetd alert: test".to_owned(),
        alert: "ingest_failing:poll.live".to_owned(),
        state: "raised",
        message: "test".to_owned(),
        at: chrono::Utc::now(),
        detail: serde_json::json!({}),
    };
    let http = alerts::webhook_client().expect("client");
    assert!(alerts::post(&http, 1, &Secret::new(format!("http://{addr}/hook")), &n).await);
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 2);
    let got = receiver.accepted.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "fleetd alert: test");
    assert_eq!(got[0]["state"], "raised");
    // nothing listening: gives up after its attempts, without panicking
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = closed.local_addr().expect("addr");
    drop(closed);
    assert!(!alerts::post(&http, 1, &Secret::new(format!("http://{dead}/hook")), &n).await);
}

fn notification() -> Notification {
    Notification {
        text: "fleetd alert: test".to_owned(),
        alert: "ingest_failing:poll.live".to_owned(),
        state: "raised",
        message: "test".to_owned(),
        at: chrono::Utc::now(),
        detail: serde_json::json!({}),
    }
}

#[tokio::test]
async fn webhooks_never_follow_redirects_and_their_urls_stay_out_of_the_log() {
    let captured = fleet_testkit::logs::capture(tracing::Level::INFO);

    // where a redirect would carry the alert: it must never be called
    let stolen = Arc::new(AtomicUsize::new(0));
    let thief = Router::new().route(
        "/collect",
        post({
            let stolen = stolen.clone();
            move || async move {
                stolen.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    let thief_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let thief_addr = thief_listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(thief_listener, thief).await });
    let location = format!("http://{thief_addr}/collect");
    let redirector =
        Router::new().route(
            "/hook/{secret}",
            post(move || {
                let location = location.clone();
                async move {
                    (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)])
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead = closed.local_addr().expect("addr");
    drop(closed);

    let http = alerts::webhook_client().expect("client");
    let n = notification();
    let redirected = Secret::new(format!("http://{addr}/hook/s3cr3t-redirected"));
    let unreachable = Secret::new(format!("http://{dead}/hook/s3cr3t-unreachable"));
    let (a, b) = tokio::join!(
        alerts::post(&http, 1, &redirected, &n),
        alerts::post(&http, 2, &unreachable, &n)
    );
    assert!(!a, "a redirect is a refusal, not a delivery");
    assert!(!b);
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "the redirect was not followed");

    let log = captured.text();
    assert!(log.contains("alert webhook refused") && log.contains("webhook=1"), "{log}");
    assert!(log.contains("alert webhook unreachable") && log.contains("webhook=2"), "{log}");
    assert!(log.contains("onnection refused"), "the cause is logged: {log}");
    assert!(!log.contains("s3cr3t"), "a webhook URL reached the log:\n{log}");
    assert!(!log.contains(&dead.to_string()), "not even its host:\n{log}");
}
