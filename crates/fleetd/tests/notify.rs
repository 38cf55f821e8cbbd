//! Notifications survive `kill -9`: fleetd is killed while webhook sends hang with more messages
//! queued than it sends at once (the sends in flight are `sending`, the rest still `pending`),
//! more messages are queued while it is down, and after a restart the receiver accepts every
//! delivery id exactly once.

mod support;

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_db::notifications::events;
use fleet_notify::dispatcher::DispatcherConfig;
use fleet_testkit::{eventually, TestDb};
use nix::sys::signal::Signal;
use support::{fleetd, free_port, spawn_until, stop};

/// A webhook receiver that deduplicates on `X-Fleetd-Delivery`, as receivers are told to:
/// `accepted` counts the requests it answered 200 per delivery id. While `hang` is set it never
/// answers (a receiver stuck mid-request).
#[derive(Clone, Default)]
struct Receiver {
    hang: Arc<AtomicBool>,
    arrived: Arc<Mutex<HashMap<String, usize>>>,
    accepted: Arc<Mutex<HashMap<String, usize>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap| {
                let state = state.clone();
                async move {
                    let id = headers
                        .get("x-fleetd-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    *state.arrived.lock().expect("arrived").entry(id.clone()).or_default() += 1;
                    if state.hang.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    *state.accepted.lock().expect("accepted").entry(id).or_default() += 1;
                    (StatusCode::OK, "ok")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("receiver") });
        (r, url)
    }

    fn arrived(&self) -> usize {
        self.arrived.lock().expect("arrived").values().sum()
    }
}

fn start_fleetd(db_url: &str) -> Child {
    let mut c = fleetd();
    c.args(["serve", "--database-url", db_url, "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("FLEETD_LOG", "warn");
    spawn_until(&mut c, "fleetd listening on ", Duration::from_secs(60)).0
}

/// `n` SOS alarms of the vehicle, stored and routed as the writer would (one outbox row each).
async fn alarms(db: &TestDb, device_id: i32, n: usize, tag: &str) {
    let now = Utc::now();
    let found: Vec<Event> = (0..n)
        .map(|i| Event {
            key: format!("alarm:{device_id}:{tag}-{i}:1"),
            device_id,
            time: now,
            kind: EventKind::AlarmSafety,
            facts: Facts { alarm_type: Some("1".into()), ..Facts::default() },
        })
        .collect();
    let mut tx = db.pool.begin().await.expect("tx");
    let recorded = events::record_now(&mut tx, &found).await.expect("recorded");
    tx.commit().await.expect("commit");
    assert_eq!(recorded.routed.outbox, n);
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_webhook_message_is_accepted_exactly_once() {
    let db = TestDb::migrated().await;
    let (receiver, url) = Receiver::start().await;
    sqlx::query("insert into fleet.devices (imei, name) values ('861234567800009', 'Lorry 9')")
        .execute(&db.pool)
        .await
        .expect("device");
    let device: i32 = sqlx::query_scalar("select device_id from fleet.devices")
        .fetch_one(&db.pool)
        .await
        .expect("id");
    sqlx::query(
        "with w as (insert into fleet.notify_webhooks (name, url, secret)
                    values ('ops', $1, 'whsec-test-0123456789') returning webhook_id)
         insert into fleet.notify_rules (name, kinds, webhook_ids, channels)
         select 'SOS', '{alarm.safety}', array[webhook_id], '{webhook}' from w",
    )
    .bind(&url)
    .execute(&db.pool)
    .await
    .expect("rule");

    // sends hang at the receiver; fleetd is killed with as many in flight as it sends at once
    // and more waiting their turn
    let in_flight = DispatcherConfig::default().concurrency;
    let queued = in_flight + 4;
    receiver.hang.store(true, Ordering::SeqCst);
    let fleetd = start_fleetd(db.url());
    alarms(&db, device, queued, "before").await;
    eventually("the sends reach the receiver", Duration::from_secs(30), async || {
        receiver.arrived() == in_flight
    })
    .await;
    let mut fleetd = fleetd;
    fleetd.kill().expect("SIGKILL");
    fleetd.wait().expect("reaped");
    assert_eq!(receiver.arrived(), in_flight, "no more sends than the dispatcher's concurrency");
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_outbox where state = 'sending'").await,
        in_flight as i64,
        "recorded as sending before the send, and only those in flight"
    );
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_outbox where state = 'pending'").await,
        4,
        "the messages waiting their turn were not claimed"
    );

    // messages queued while fleetd is down
    alarms(&db, device, 5, "while-down").await;
    let total = queued + 5;
    receiver.hang.store(false, Ordering::SeqCst);
    let fleetd = start_fleetd(db.url());
    eventually("every message delivered", Duration::from_secs(60), async || {
        count(&db, "select count(*) from fleet.notify_outbox where state = 'sent'").await
            == total as i64
    })
    .await;
    stop(fleetd, Signal::SIGTERM, Duration::from_secs(30));

    let keys: Vec<String> = sqlx::query_scalar("select idempotency_key from fleet.notify_outbox")
        .fetch_all(&db.pool)
        .await
        .expect("keys");
    let accepted = receiver.accepted.lock().expect("accepted").clone();
    assert_eq!(accepted.len(), total, "{accepted:?}");
    for k in &keys {
        assert_eq!(accepted.get(k), Some(&1), "delivery {k} accepted once");
    }
    // those cut short were sent again under the same id: one unknown attempt, one sent
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_attempts where outcome = 'unknown'").await,
        in_flight as i64
    );
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_attempts where outcome = 'sent'").await,
        total as i64
    );
}
