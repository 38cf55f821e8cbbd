//! `sending` means a send in flight: the dispatcher claims no more messages than it sends at
//! once, so a dispatcher stopped dead leaves unknown only the messages whose send had started;
//! and a message whose outcome was never recorded is resolved while the dispatcher runs, once
//! its attempt is older than any send may take.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{TimeDelta, Utc};
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_db::notifications::events;
use fleet_notify::channels::Channels;
use fleet_notify::dispatcher::{self, DispatcherConfig};
use fleet_testkit::{eventually, TestDb};
use tokio_util::sync::CancellationToken;

/// A generic SMS gateway counting the requests that reached it; while `hang` is set it never
/// answers.
#[derive(Clone, Default)]
struct Gateway {
    hang: Arc<AtomicBool>,
    arrived: Arc<AtomicUsize>,
}

impl Gateway {
    async fn start() -> (Gateway, String) {
        let g = Gateway::default();
        let state = g.clone();
        let router = Router::new().route(
            "/send",
            post(move || {
                let state = state.clone();
                async move {
                    state.arrived.fetch_add(1, Ordering::SeqCst);
                    while state.hang.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (StatusCode::OK, "queued")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/send", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("gateway") });
        (g, url)
    }

    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }
}

/// A vehicle and a rule texting its SOS alarms to one number; `n` alarms routed (one SMS
/// outbox row each).
async fn queue_sms(db: &TestDb, n: usize) {
    sqlx::query("insert into fleet.devices (imei, name) values ('861234567800002', 'Lorry 2')")
        .execute(&db.pool)
        .await
        .expect("device");
    sqlx::query(
        r#"insert into fleet.notify_rules (name, kinds, addresses, channels)
           values ('SOS', '{alarm.safety}', '[{"channel": "sms", "to": "+254711000001"}]', '{sms}')"#,
    )
    .execute(&db.pool)
    .await
    .expect("rule");
    let device: i32 = sqlx::query_scalar("select device_id from fleet.devices")
        .fetch_one(&db.pool)
        .await
        .expect("id");
    let t = Utc::now();
    let alarms: Vec<Event> = (0..n)
        .map(|i| Event {
            key: format!("alarm:{device}:in-flight-{i}:1"),
            device_id: device,
            time: t - TimeDelta::seconds(i as i64),
            kind: EventKind::AlarmSafety,
            facts: Facts { alarm_type: Some("1".into()), ..Facts::default() },
        })
        .collect();
    let mut tx = db.pool.begin().await.expect("tx");
    let recorded = events::record_now(&mut tx, &alarms).await.expect("recorded");
    tx.commit().await.expect("commit");
    assert_eq!(recorded.routed.outbox, n);
}

fn config(concurrency: usize) -> DispatcherConfig {
    DispatcherConfig {
        poll: Duration::from_millis(100),
        concurrency,
        sweep_every: Duration::from_millis(200),
        stale_margin: Duration::from_secs(1),
        lease_check: Duration::from_millis(200),
        ..DispatcherConfig::default()
    }
}

fn sms_channels(url: &str) -> Channels {
    let url = url.to_owned();
    let settings = fleet_config::Loader::new()
        .dotenv(None)
        .env(move |k| match k {
            "FLEETD_SMS_PROVIDER" => Some("generic".to_owned()),
            "FLEETD_SMS_URL" => Some(url.clone()),
            "FLEETD_SMS_API_KEY" => Some("gateway-token".to_owned()),
            "FLEETD_SMS_SENDER" => Some("FLEETD".to_owned()),
            _ => None,
        })
        .load()
        .expect("settings");
    // long enough that a hanging send stays in flight for the whole test
    Channels::with_timeout(&settings.notify, Duration::from_secs(120)).expect("channels")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_dispatcher_leaves_unknown_only_the_messages_whose_send_had_started() {
    let db = TestDb::migrated().await;
    let (gateway, url) = Gateway::start().await;
    queue_sms(&db, 10).await;

    // three sends at once, all hanging at the gateway
    gateway.hang.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let first = tokio::spawn(dispatcher::run(
        db.pool.clone(),
        config(3),
        Arc::new(sms_channels(&url)),
        stop.clone(),
    ));
    eventually("three sends reach the gateway", Duration::from_secs(20), async || {
        gateway.arrived() == 3
    })
    .await;
    // a row is `sending` only while its send is in flight: the seven waiting are still pending
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_outbox where state = 'sending'").await,
        3
    );
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_outbox where state = 'pending'").await,
        7
    );

    // the process dies with the three in flight
    first.abort();
    let _ = first.await;
    gateway.hang.store(false, Ordering::SeqCst);
    let second = tokio::spawn(dispatcher::run(
        db.pool.clone(),
        config(3),
        Arc::new(sms_channels(&url)),
        stop.clone(),
    ));
    eventually("every message resolved", Duration::from_secs(30), async || {
        count(&db, "select count(*) from fleet.notify_outbox where state in ('sent', 'unknown')")
            .await
            == 10
    })
    .await;
    stop.cancel();
    second.await.expect("dispatcher");
    // only the three cut short are unknown; the seven never tried were sent, once each
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_outbox where state = 'unknown'").await,
        3
    );
    assert_eq!(
        count(&db, "select count(*) from fleet.notify_attempts where outcome = 'sent'").await,
        7
    );
    assert_eq!(gateway.arrived(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_outcome_was_never_recorded_is_resolved_while_running() {
    let db = TestDb::migrated().await;
    let (gateway, url) = Gateway::start().await;
    queue_sms(&db, 1).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(dispatcher::run(
        db.pool.clone(),
        config(3),
        Arc::new(sms_channels(&url)),
        stop.clone(),
    ));
    eventually("the first message is sent", Duration::from_secs(20), async || {
        count(&db, "select count(*) from fleet.notify_outbox where state = 'sent'").await == 1
    })
    .await;

    // two rows a send left `sending` without an outcome while the dispatcher runs (the start-up
    // recovery is long past): one whose attempt started an hour ago, one just now
    for (key, started) in [("stale", "now() - interval '1 hour'"), ("fresh", "now()")] {
        sqlx::query(&format!(
            "with o as (
                 insert into fleet.notify_outbox (event_id, channel, address, idempotency_key,
                                                  state, attempts)
                 select event_id, 'sms', '+254711000002', '{key}', 'sending', 1
                 from fleet.notify_events returning delivery_id
             )
             insert into fleet.notify_attempts (delivery_id, attempt, started_at)
             select delivery_id, 1, {started} from o"
        ))
        .execute(&db.pool)
        .await
        .expect("row left sending");
    }
    eventually("the stale row is resolved", Duration::from_secs(20), async || {
        count(
            &db,
            "select count(*) from fleet.notify_outbox where idempotency_key = 'stale'
               and state = 'unknown'",
        )
        .await
            == 1
    })
    .await;
    // the fresh one may still be in flight: left alone until older than a send may take
    // (timeout 120 s + margin)
    assert_eq!(
        count(
            &db,
            "select count(*) from fleet.notify_outbox o join fleet.notify_attempts a using (delivery_id)
             where o.idempotency_key = 'fresh' and o.state = 'sending' and a.outcome = 'started'",
        )
        .await,
        1
    );
    stop.cancel();
    running.await.expect("dispatcher");
    assert_eq!(gateway.arrived(), 1, "neither row was sent");
}
