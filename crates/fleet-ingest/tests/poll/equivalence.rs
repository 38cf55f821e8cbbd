//! A simulated working day for 20 vehicles ingested by polling alone, by pushes alone, and by
//! both at once: the same rows each time, exactly the simulator's history, no duplicates.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{jobs, start_sim, writer, yesterday_evening, SEED};
use chrono::TimeDelta;
use fleet_config::Secret;
use fleet_ingest::{push_routes, PollConfig, PushReceiver};
use fleet_sim::push::{PushConfig, PushStats};
use fleet_sim::{Fleet, SimClock};
use fleet_testkit::TestDb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const VEHICLES: usize = 20;

type Fixes = BTreeSet<(String, i64)>;

async fn stored(pool: &PgPool, from: i64, to: i64) -> (Fixes, usize) {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select d.imei, extract(epoch from p.gps_time)::bigint from fleet.positions p join fleet.devices d using (device_id)
         where p.gps_time between to_timestamp($1) and to_timestamp($2)",
    )
    .bind(from as f64)
    .bind(to as f64)
    .fetch_all(pool)
    .await
    .expect("positions");
    let n = rows.len();
    (rows.into_iter().collect(), n)
}

/// Track-polls the day ending at `end` into `pool`.
async fn poll_day(pool: &PgPool, end: i64) {
    let sim = start_sim(VEHICLES, end).await;
    let stop = CancellationToken::new();
    let config =
        PollConfig { first_backfill: Duration::from_secs(86_400), ..PollConfig::default() };
    let j = jobs(pool, &sim, &stop, config);
    j.sync_devices().await.expect("device sync");
    let now = chrono::DateTime::from_timestamp(end, 0).expect("time");
    j.poll_track(now).await.expect("track poll");
    stop.cancel();
}

/// Pushes the day `[start, end]` into `pool` through the receivers, at high speed.
async fn push_day(pool: &PgPool, start: i64, end: i64) {
    let stop = CancellationToken::new();
    let receiver = PushReceiver {
        writer: writer(pool, &stop),
        token: Some(Secret::new("equivalence".to_owned())),
        max_body_bytes: 1 << 20,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/push", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, push_routes(receiver)).await });
    let mut config = PushConfig::new(base, Secret::new("equivalence".to_owned()));
    config.tick = Duration::from_millis(50);
    config.max_delay_s = 60;
    config.duplicate_rate = 0.05;
    config.start_at = Some(start - 1);
    config.end_at = Some(end);
    let clock = SimClock::starting_at(start, 30_000.0);
    let stats = Arc::new(PushStats::default());
    let fleet = Arc::new(Fleet::new(SEED, VEHICLES));
    let pusher =
        tokio::spawn(fleet_sim::push::run(fleet, clock, config, stats.clone(), stop.clone()));
    // everything of the day taken from the fleet and acknowledged by the receivers
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !stats.delivered_through(end) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pusher did not deliver the day within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = pusher.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_pushing_and_both_store_the_same_day_exactly_once() {
    let end = yesterday_evening().timestamp();
    let start = (yesterday_evening() - TimeDelta::hours(24)).timestamp();
    let fleet = Fleet::new(SEED, VEHICLES);
    let mut expected = Fixes::new();
    for v in fleet.vehicles() {
        for f in fleet.history(v.index, start, end) {
            expected.insert((v.imei.to_string(), f.time));
        }
    }
    assert!(expected.len() > 5_000, "a working day of 20 vehicles: {}", expected.len());

    let polled = TestDb::migrated().await;
    poll_day(&polled.pool, end).await;
    let pushed = TestDb::migrated().await;
    push_day(&pushed.pool, start, end).await;
    let both = TestDb::migrated().await;
    tokio::join!(poll_day(&both.pool, end), push_day(&both.pool, start, end));

    for (how, db) in [("polling", &polled), ("pushing", &pushed), ("both", &both)] {
        let rejects: Vec<(String, String)> =
            sqlx::query_as("select reason, left(raw, 300) from fleet.ingest_rejects limit 3")
                .fetch_all(&db.pool)
                .await
                .expect("rejects");
        assert!(rejects.is_empty(), "{how}: rejects {rejects:?}");
        let (fixes, rows) = stored(&db.pool, start, end).await;
        assert_eq!(rows, fixes.len(), "{how}: no fix stored twice");
        let missing: Vec<_> = expected.difference(&fixes).take(3).collect();
        let extra: Vec<_> = fixes.difference(&expected).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{how}: missing {missing:?}, extra {extra:?}"
        );
    }
}
