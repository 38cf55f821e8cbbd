//! Fault tests of the ingest path, bounded in time: fleetd killed with SIGKILL while the vendor
//! pushes, and PostgreSQL restarted while it does. Whatever the pusher saw acknowledged must be
//! in the database afterwards, once.

mod support;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fleet_config::Secret;
use fleet_embedded_pg::{EmbeddedPostgres, StartOptions};
use fleet_sim::push::{PushConfig, PushKind, PushStats};
use fleet_sim::{Fleet, SimClock};
use fleet_testkit::eventually;
use fleet_testkit::TestDb;
use nix::sys::signal::Signal;
use sqlx::PgPool;
use support::{fleetd, free_port, spawn_until, stop};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "fault-test-token";

/// `fleetd serve` against `db_url` on `port`; returns once it listens.
fn start_fleetd(db_url: &str, port: u16) -> Child {
    let mut c = fleetd();
    c.args(["serve", "--database-url", db_url, "--listen", &format!("127.0.0.1:{port}")])
        .env("FLEETD_PUSH_TOKEN", TOKEN)
        // while PostgreSQL is down, give up on a connection after a second and answer 503
        .env("FLEETD_DB_ACQUIRE_TIMEOUT_MS", "1000")
        .env("FLEETD_LOG", "warn");
    spawn_until(&mut c, "fleetd listening on ", Duration::from_secs(60)).0
}

struct Pusher {
    stats: Arc<PushStats>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The simulated vendor pushing a busy morning of 40 vehicles at 1800x to `port`.
fn start_pusher(fleet: Arc<Fleet>, port: u16) -> Pusher {
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 4, 30, 0).single().expect("time").timestamp();
    let mut config =
        PushConfig::new(format!("http://127.0.0.1:{port}/push"), Secret::new(TOKEN.to_owned()));
    config.tick = Duration::from_millis(50);
    config.max_delay_s = 20;
    config.request_timeout = Duration::from_secs(5);
    config.record_acks = true;
    let stats = Arc::new(PushStats::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(fleet_sim::push::run(
        fleet,
        SimClock::starting_at(start, 1800.0),
        config,
        stats.clone(),
        stop.clone(),
    ));
    Pusher { stats, stop, task }
}

async fn stored_fixes(pool: &PgPool) -> (HashSet<(String, i64)>, i64) {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select d.imei, extract(epoch from p.gps_time)::bigint from fleet.positions p join fleet.devices d using (device_id)",
    )
    .fetch_all(pool)
    .await
    .expect("positions");
    let n = rows.len() as i64;
    (rows.into_iter().collect(), n)
}

fn acked_fixes(stats: &PushStats) -> HashSet<(String, i64)> {
    stats
        .acked
        .lock()
        .expect("acks")
        .iter()
        .filter(|a| a.kind == PushKind::Gps)
        .map(|a| (a.imei.clone(), a.time))
        .collect()
}

fn failed(stats: &PushStats) -> u64 {
    stats.requests_failed.load(std::sync::atomic::Ordering::Relaxed)
}

fn stop_gracefully(child: Child) {
    stop(child, Signal::SIGTERM, Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_acknowledged_push_is_stored_once() {
    let db = TestDb::migrated().await;
    let port = free_port();
    let fleetd = start_fleetd(db.url(), port);
    let fleet = Arc::new(Fleet::new(17, 40));
    let pusher = start_pusher(fleet, port);
    eventually("pushes acknowledged", Duration::from_secs(60), async || {
        acked_fixes(&pusher.stats).len() > 100
    })
    .await;

    let mut fleetd = fleetd;
    fleetd.kill().expect("SIGKILL");
    fleetd.wait().expect("reaped");
    let acked_before = acked_fixes(&pusher.stats).len();
    assert!(acked_before > 100, "pushes were acknowledged before the kill: {acked_before}");
    // the vendor keeps trying meanwhile
    let failed_at_kill = failed(&pusher.stats);
    eventually("a push refused", Duration::from_secs(30), async || {
        failed(&pusher.stats) > failed_at_kill
    })
    .await;

    let fleetd = start_fleetd(db.url(), port);
    eventually("pushing to resume", Duration::from_secs(60), async || {
        acked_fixes(&pusher.stats).len() > acked_before + 50
    })
    .await;
    pusher.stop.cancel();
    pusher.task.await.expect("pusher");
    stop_gracefully(fleetd);

    let acked = acked_fixes(&pusher.stats);
    assert!(acked.len() > acked_before, "pushing resumed after the restart");
    let (stored, rows) = stored_fixes(&db.pool).await;
    let lost: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert_eq!(rows as usize, stored.len(), "no fix stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_gets_503s_then_ingest_resumes_with_nothing_lost() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pg =
        EmbeddedPostgres::start(StartOptions { data_dir: dir.path().to_owned(), bindir: None })
            .await
            .expect("embedded PostgreSQL");
    fleet_db::ensure_database(pg.url("postgres").expose(), "fleetd").await.expect("database");
    let url = pg.url("fleetd").expose().clone();
    let port = free_port();
    let fleetd = start_fleetd(&url, port);
    let pusher = start_pusher(Arc::new(Fleet::new(23, 30)), port);
    eventually("pushes acknowledged", Duration::from_secs(60), async || {
        pusher.stats.items_acked.load(std::sync::atomic::Ordering::Relaxed) > 100
    })
    .await;

    pg.stop_now().await.expect("stop PostgreSQL");
    let failed_before = failed(&pusher.stats);
    eventually("pushes refused", Duration::from_secs(30), async || {
        failed(&pusher.stats) > failed_before + 2
    })
    .await;
    let pg =
        EmbeddedPostgres::start(StartOptions { data_dir: dir.path().to_owned(), bindir: None })
            .await
            .expect("PostgreSQL again");

    // ingest resumes by itself: acknowledgements grow again
    let acked_at_restart = pusher.stats.items_acked.load(std::sync::atomic::Ordering::Relaxed);
    let mut resumed = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if pusher.stats.items_acked.load(std::sync::atomic::Ordering::Relaxed)
            > acked_at_restart + 50
        {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "ingest did not resume within 15 s of PostgreSQL coming back");
    pusher.stop.cancel();
    pusher.task.await.expect("pusher");
    stop_gracefully(fleetd);

    let pool = fleet_db::connect(&url, &fleet_testkit::db_config()).await.expect("pool");
    let acked = acked_fixes(&pusher.stats);
    let (stored, rows) = stored_fixes(&pool).await;
    let lost: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert_eq!(rows as usize, stored.len());
    pool.close().await;
    pg.stop().await.expect("stop");
}
