//! `fleetd ingest backfill` against the simulator: stores exactly the simulated history of the
//! range, and a second run changes nothing.

mod support;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use fleet_sim::server::default_credentials;
use fleet_sim::{Fleet, SimClock, SimConfig, SimState};
use fleet_testkit::TestDb;
use support::fleetd;
use tokio_util::sync::CancellationToken;

fn backfill(db_url: &str, sim_url: &str, from: &str, to: &str) -> String {
    let c = default_credentials();
    let out = fleetd()
        .args(["ingest", "backfill", "--database-url", db_url, "--from", from, "--to", to])
        .env("FLEETD_TRACKSOLID_URL", sim_url)
        .env("FLEETD_TRACKSOLID_APP_KEY", &c.app_key)
        .env("FLEETD_TRACKSOLID_APP_SECRET", c.app_secret.expose())
        .env("FLEETD_TRACKSOLID_USER", &c.user)
        .env("FLEETD_TRACKSOLID_PASSWORD", c.password.expose())
        .output()
        .expect("fleetd runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_stores_the_simulated_history_of_the_range_and_a_second_run_changes_nothing() {
    let db = TestDb::migrated().await;
    let now = Utc::now().timestamp();
    let state = SimState::new(
        Arc::new(Fleet::new(31, 6)),
        SimConfig { clock: SimClock::starting_at(now, 0.0), ..SimConfig::default() },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim_url = format!("http://{}/route/rest", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(fleet_sim::serve(listener, state.clone(), stop.clone().cancelled_owned()));

    let (from, to) = (Utc::now() - TimeDelta::days(3), Utc::now() - TimeDelta::days(1));
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let (from_s, to_s) = (fmt(from), fmt(to));
    let first = backfill(db.url(), &sim_url, &from_s, &to_s);
    let expected: usize = state
        .fleet
        .vehicles()
        .iter()
        .map(|v| state.fleet.history(v.index, from.timestamp(), to.timestamp()).len())
        .sum();
    let stored: i64 = sqlx::query_scalar("select count(*) from fleet.positions")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert!(expected > 1000, "{expected}");
    assert_eq!(stored as usize, expected, "{first}");
    let second = backfill(db.url(), &sim_url, &from_s, &to_s);
    assert!(second.contains(" 0 new"), "{second}");
    let again: i64 = sqlx::query_scalar("select count(*) from fleet.positions")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(again, stored);
    stop.cancel();
}
