//! Recording a send's outcome never overrides recovery: an attempt recovery resolved (its
//! process lost the lease, or its outcome came too late) keeps recovery's verdict.

use std::time::Duration;

use fleet_db::notifications::outbox::{self, Finished, Resolution};
use fleet_testkit::TestDb;

async fn one_email_row(db: &TestDb) {
    sqlx::query("insert into fleet.devices (imei, name) values ('861234567800003', 'Lorry 3')")
        .execute(&db.pool)
        .await
        .expect("device");
    sqlx::query(
        "with e as (
             insert into fleet.notify_events (event_key, device_id, event_time, kind, facts)
             select 'alarm:test:1', device_id, now(), 'alarm.safety', '{}' from fleet.devices
             returning event_id
         )
         insert into fleet.notify_outbox (event_id, channel, address, idempotency_key)
         select event_id, 'email', 'ann@example.com', 'key-1' from e",
    )
    .execute(&db.pool)
    .await
    .expect("outbox row");
}

async fn state(db: &TestDb) -> (String, String) {
    sqlx::query_as(
        "select o.state, a.outcome from fleet.notify_outbox o
         join fleet.notify_attempts a on a.delivery_id = o.delivery_id and a.attempt = o.attempts",
    )
    .fetch_one(&db.pool)
    .await
    .expect("state")
}

fn sent(delivery_id: i64, attempt: i32) -> Finished<'static> {
    Finished {
        delivery_id,
        attempt,
        resolution: Resolution::Sent,
        status_code: Some(250),
        detail: "250 queued",
        latency_ms: 12,
    }
}

#[tokio::test]
async fn a_late_outcome_leaves_recoverys_verdict() {
    let db = TestDb::migrated().await;
    one_email_row(&db).await;
    let claimed = outbox::claim(&db.pool, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];

    // a started attempt younger than the stale limit is left alone
    let r = outbox::recover(&db.pool, Duration::from_secs(3600)).await.expect("recover");
    assert_eq!((r.retried, r.unknown), (0, 0));
    assert_eq!(state(&db).await, ("sending".to_owned(), "started".to_owned()));

    // an outcome for another attempt number records nothing
    assert!(!outbox::finish(&db.pool, &sent(c.delivery_id, c.attempt + 1)).await.expect("finish"));
    assert_eq!(state(&db).await, ("sending".to_owned(), "started".to_owned()));

    // recovery resolves it; the send's outcome arriving afterwards is ignored
    let r = outbox::recover(&db.pool, Duration::ZERO).await.expect("recover");
    assert_eq!((r.retried, r.unknown), (0, 1));
    assert!(!outbox::finish(&db.pool, &sent(c.delivery_id, c.attempt)).await.expect("finish"));
    assert_eq!(state(&db).await, ("unknown".to_owned(), "unknown".to_owned()));
}

#[tokio::test]
async fn an_outcome_in_time_is_recorded() {
    let db = TestDb::migrated().await;
    one_email_row(&db).await;
    let c = outbox::claim(&db.pool, 10).await.expect("claim").remove(0);
    assert!(outbox::finish(&db.pool, &sent(c.delivery_id, c.attempt)).await.expect("finish"));
    assert_eq!(state(&db).await, ("sent".to_owned(), "sent".to_owned()));
}
