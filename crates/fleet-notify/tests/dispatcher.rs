//! The dispatcher against a real database and a local webhook receiver: retries until sent,
//! dead letters, every attempt logged, and messages a stopped process left mid-send resolved at
//! start-up (webhooks sent again under the same delivery id, other channels not re-sent).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_db::notifications::events;
use fleet_notify::channels::Channels;
use fleet_notify::dispatcher::{self, DispatcherConfig};
use fleet_testkit::{eventually, TestDb};
use tokio_util::sync::CancellationToken;

/// A webhook receiver answering the scripted statuses in turn (then 200), counting requests per
/// `X-Fleetd-Delivery` id.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Receiver, String) {
        let r = Receiver::default();
        r.script.lock().expect("script").extend(script);
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
                    *state.seen.lock().expect("seen").entry(id).or_default() += 1;
                    let code = state.script.lock().expect("script").pop_front().unwrap_or(200);
                    (StatusCode::from_u16(code).expect("status"), format!("answered {code}"))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("receiver") });
        (r, url)
    }

    fn seen(&self) -> HashMap<String, usize> {
        self.seen.lock().expect("seen").clone()
    }
}

/// A vehicle, a webhook at `url` and a rule sending SOS alarms to it.
async fn fleet_with_webhook(db: &TestDb, url: &str) -> i32 {
    sqlx::query("insert into fleet.devices (imei, name, plate) values ('861234567800001', 'Lorry 7', 'KBX 123A')")
        .execute(&db.pool)
        .await
        .expect("device");
    let webhook: i32 = sqlx::query_scalar(
        "insert into fleet.notify_webhooks (name, url, secret) values ('ops', $1, 'whsec-test-0123456789')
         returning webhook_id",
    )
    .bind(url)
    .fetch_one(&db.pool)
    .await
    .expect("webhook");
    sqlx::query(
        "insert into fleet.notify_rules (name, kinds, webhook_ids, channels, severity)
         values ('SOS', '{alarm.safety}', $1, '{webhook}', 'critical')",
    )
    .bind(vec![webhook])
    .execute(&db.pool)
    .await
    .expect("rule");
    sqlx::query_scalar("select device_id from fleet.devices").fetch_one(&db.pool).await.expect("id")
}

async fn sos(db: &TestDb, device_id: i32) {
    let t = Utc::now();
    let event = Event {
        key: format!("alarm:{device_id}:{}:1", t.timestamp_micros()),
        device_id,
        time: t,
        kind: EventKind::AlarmSafety,
        facts: Facts {
            alarm_type: Some("1".into()),
            alarm_name: Some("SOS".into()),
            ..Facts::default()
        },
    };
    let mut tx = db.pool.begin().await.expect("tx");
    let recorded = events::record_now(&mut tx, &[event]).await.expect("recorded");
    tx.commit().await.expect("commit");
    assert_eq!(recorded.routed.outbox, 1);
}

fn start(db: &TestDb) -> CancellationToken {
    let stop = CancellationToken::new();
    let config = DispatcherConfig {
        poll: Duration::from_millis(100),
        retry_base: Duration::from_millis(200),
        lease_check: Duration::from_millis(200),
        ..DispatcherConfig::default()
    };
    let settings =
        fleet_config::Loader::new().dotenv(None).env(|_| None).load().expect("default settings");
    let channels =
        Channels::with_timeout(&settings.notify, Duration::from_secs(5)).expect("channels");
    tokio::spawn(dispatcher::run(db.pool.clone(), config, Arc::new(channels), stop.clone()));
    stop
}

async fn states(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("select state from fleet.notify_outbox order by delivery_id")
        .fetch_all(&db.pool)
        .await
        .expect("states")
}

async fn attempts(db: &TestDb) -> Vec<(i32, String, Option<i32>)> {
    sqlx::query_as(
        "select attempt, outcome, status_code from fleet.notify_attempts order by delivery_id, attempt",
    )
    .fetch_all(&db.pool)
    .await
    .expect("attempts")
}

#[tokio::test]
async fn a_failed_webhook_is_retried_until_delivered_with_every_attempt_logged() {
    let db = TestDb::migrated().await;
    let (receiver, url) = Receiver::start(&[500]).await;
    let device = fleet_with_webhook(&db, &url).await;
    let stop = start(&db);
    sos(&db, device).await;
    eventually("the webhook is delivered", Duration::from_secs(20), async || {
        states(&db).await == ["sent"]
    })
    .await;
    stop.cancel();
    assert_eq!(
        attempts(&db).await,
        [(1, "retry".to_owned(), Some(500)), (2, "sent".to_owned(), Some(200))]
    );
    let seen = receiver.seen();
    let key: String = sqlx::query_scalar("select idempotency_key from fleet.notify_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("key");
    assert_eq!(seen, HashMap::from([(key, 2)]), "both attempts carry the same delivery id");
}

#[tokio::test]
async fn a_refused_webhook_is_a_dead_letter_after_one_attempt() {
    let db = TestDb::migrated().await;
    let (receiver, url) = Receiver::start(&[400]).await;
    let device = fleet_with_webhook(&db, &url).await;
    let stop = start(&db);
    sos(&db, device).await;
    eventually("the webhook is given up", Duration::from_secs(20), async || {
        states(&db).await == ["dead"]
    })
    .await;
    stop.cancel();
    assert_eq!(attempts(&db).await, [(1, "failed".to_owned(), Some(400))]);
    assert_eq!(receiver.seen().values().sum::<usize>(), 1);
    let error: Option<String> = sqlx::query_scalar("select last_error from fleet.notify_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("error");
    assert!(error.is_some_and(|e| e.contains("400")));
}

#[tokio::test]
async fn messages_left_mid_send_are_resent_only_where_the_receiver_deduplicates() {
    let db = TestDb::migrated().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let device = fleet_with_webhook(&db, &url).await;
    sos(&db, device).await;
    // a process took the webhook row and an e-mail row and died mid-send
    sqlx::query(
        "insert into fleet.notify_outbox (event_id, channel, address, idempotency_key)
         select event_id, 'email', 'ann@example.com', 'email-key-1' from fleet.notify_events",
    )
    .execute(&db.pool)
    .await
    .expect("email row");
    sqlx::query("update fleet.notify_outbox set state = 'sending', attempts = 1")
        .execute(&db.pool)
        .await
        .expect("sending");
    sqlx::query("insert into fleet.notify_attempts (delivery_id, attempt) select delivery_id, 1 from fleet.notify_outbox")
        .execute(&db.pool)
        .await
        .expect("started");

    let stop = start(&db);
    eventually("the webhook is delivered again", Duration::from_secs(20), async || {
        states(&db).await == ["sent", "unknown"]
    })
    .await;
    stop.cancel();
    assert_eq!(
        attempts(&db).await,
        [
            (1, "unknown".to_owned(), None),
            (2, "sent".to_owned(), Some(200)),
            (1, "unknown".to_owned(), None),
        ]
    );
    assert_eq!(receiver.seen().values().sum::<usize>(), 1, "the e-mail was not sent again");
}
