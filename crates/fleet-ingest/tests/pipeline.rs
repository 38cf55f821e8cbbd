//! The pipelined writer against a real PostgreSQL database: two flushes may run at once, yet
//! every producer is answered only after its records committed, a fix submitted twice is stored
//! as (and reported new for) the earlier submission, and nothing is lost or stored twice.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use fleet_core::{FixKind, Imei, LatLon, PositionFix, PositionSource};
use fleet_ingest::{Record, Writer, WriterConfig};
use fleet_testkit::TestDb;
use tokio_util::sync::CancellationToken;

fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 6, 0, 0).single().expect("time") + TimeDelta::seconds(s)
}

fn imei(n: u32) -> Imei {
    Imei::parse(&format!("8612345678{n:05}")).expect("imei")
}

fn fix(device: u32, t: DateTime<Utc>, speed: f32) -> Record {
    Record::Position(PositionFix {
        imei: imei(device),
        gps_time: t,
        location: LatLon::new(-1.28, 36.82).expect("valid"),
        speed_kmh: Some(speed),
        course_deg: None,
        altitude_m: None,
        ignition: Some(true),
        satellites: Some(9),
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: None,
        odometer_m: None,
        source: PositionSource::Push,
        extra: None,
    })
}

/// Small batches that overlap readily: every submission of 50 may start beside the running one.
fn overlapping() -> WriterConfig {
    WriterConfig {
        max_rows: 100,
        overlap_rows: 1,
        max_age: Duration::from_millis(1),
        ..WriterConfig::default()
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test]
async fn every_producer_is_answered_after_its_fixes_committed_and_each_fix_is_new_once() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let (w, task) = Writer::spawn(db.pool.clone(), overlapping(), stop.clone());
    // the devices exist, so batches of fixes alone may run two at a time
    w.write("push.gps", (0..40).map(|d| fix(d, at(0), 1.0)).collect()).await.expect("stored");

    // 40 producers, each sending 10 submissions of 50 fixes over 40 devices; producer p and
    // p + 1 send the same fixes (re-delivery), so most fixes arrive twice
    let mut producers = Vec::new();
    for p in 0..40u32 {
        let w = w.clone();
        let pool = db.pool.clone();
        producers.push(tokio::spawn(async move {
            let mut new = 0usize;
            for round in 0..10i64 {
                let base = i64::from(p / 2) * 1_000 + round * 50;
                let records: Vec<Record> =
                    (0..50).map(|i| fix((i % 40) as u32, at(1 + base + i), 1.0)).collect();
                let report = w.write("push.gps", records).await.expect("stored");
                assert_eq!(report.received, 50);
                assert_eq!(report.new + report.duplicate, 50);
                new += report.new;
                // acknowledged means committed: another connection sees every fix of it
                let seen: i64 = sqlx::query_scalar(
                    "select count(*) from fleet.positions
                     where gps_time >= $1 and gps_time < $2",
                )
                .bind(at(1 + base))
                .bind(at(1 + base + 50))
                .fetch_one(&pool)
                .await
                .expect("count");
                assert_eq!(seen, 50, "producer {p} round {round} answered before its commit");
            }
            new
        }));
    }
    let mut new = 0;
    for p in producers {
        new += p.await.expect("producer");
    }
    // 20 distinct producer pairs x 10 rounds x 50 fixes, each stored and reported new once
    assert_eq!(new, 20 * 10 * 50);
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 40 + 20 * 10 * 50);
    // the latest position of each device is its newest fix
    let behind = count(
        &db,
        "select count(*) from fleet.device_latest l
         where l.gps_time <> (select max(gps_time) from fleet.positions p
                              where p.device_id = l.device_id)",
    )
    .await;
    assert_eq!(behind, 0);
    stop.cancel();
    task.await.expect("writer ends");
}

#[tokio::test]
async fn a_fix_sent_again_while_its_first_batch_runs_keeps_the_first_submissions_values() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let config = WriterConfig { max_rows: 2_000, overlap_rows: 1, ..WriterConfig::default() };
    let (w, _task) = Writer::spawn(db.pool.clone(), config, stop.clone());
    w.write("push.gps", (0..200).map(|d| fix(d, at(0), 1.0)).collect()).await.expect("stored");
    for round in 0..5i64 {
        // a large first batch, and right behind it a small one re-sending one of its fixes with
        // other values: the second may only store after the first committed
        let t0 = 10_000 * (round + 1);
        let first: Vec<Record> =
            (0..2_000).map(|i| fix((i % 200) as u32, at(t0 + i64::from(i)), 10.0)).collect();
        let again = vec![fix(1999 % 200, at(t0 + 1_999), 20.0), fix(7, at(t0 + 5_000), 20.0)];
        let (a, b) = tokio::join!(w.write("push.gps", first), async {
            // queued after the first
            tokio::task::yield_now().await;
            w.write("push.gps", again).await
        });
        let (a, b) = (a.expect("first stored"), b.expect("second stored"));
        assert_eq!((a.new, a.duplicate), (2_000, 0), "round {round}");
        assert_eq!((b.new, b.duplicate), (1, 1), "round {round}");
        let speed: f32 =
            sqlx::query_scalar("select speed_kmh from fleet.positions where gps_time = $1")
                .bind(at(t0 + 1_999))
                .fetch_one(&db.pool)
                .await
                .expect("speed");
        assert_eq!(speed, 10.0, "round {round}: the later submission's values were stored");
    }
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 200 + 5 * 2_001);
}

#[tokio::test]
async fn a_fix_of_a_device_the_writer_did_not_know_yet_sent_again_keeps_the_first_values() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let config = WriterConfig { max_rows: 2_000, overlap_rows: 1, ..WriterConfig::default() };
    let (w, _task) = Writer::spawn(db.pool.clone(), config, stop.clone());
    for round in 0..5u32 {
        // devices new to the database and to the writer: a first batch registers them, a second
        // (planned while the first runs, so its devices are still unknown to the writer) sends
        // more of their fixes, and a third (planned once the devices are known) re-sends one of
        // the second's fixes with other values: it may only store after the second committed
        let base = 1_000 * (round + 1);
        let t0 = 10_000 * i64::from(round + 1);
        let register: Vec<Record> =
            (0..2_000u32).map(|i| fix(base + i % 200, at(t0 + i64::from(i)), 1.0)).collect();
        let first: Vec<Record> = (0..2_000u32)
            .map(|i| fix(base + i % 200, at(t0 + 3_000 + i64::from(i)), 10.0))
            .collect();
        let again = vec![
            fix(base + 1_999 % 200, at(t0 + 4_999), 20.0),
            fix(base + 7, at(t0 + 9_000), 20.0),
        ];
        let (z, a, b) = tokio::join!(
            w.write("push.gps", register),
            async {
                tokio::task::yield_now().await;
                w.write("push.gps", first).await
            },
            async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                w.write("push.gps", again).await
            }
        );
        let (z, a, b) =
            (z.expect("registered"), a.expect("first stored"), b.expect("again stored"));
        assert_eq!(z.new, 2_000, "round {round}");
        assert_eq!(
            (a.new, a.duplicate),
            (2_000, 0),
            "round {round}: the re-sent fix was new twice"
        );
        assert_eq!((b.new, b.duplicate), (1, 1), "round {round}");
        let speed: f32 =
            sqlx::query_scalar("select speed_kmh from fleet.positions where gps_time = $1")
                .bind(at(t0 + 4_999))
                .fetch_one(&db.pool)
                .await
                .expect("speed");
        assert_eq!(speed, 10.0, "round {round}: the later submission's values were stored");
    }
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 5 * 4_001);
}
