//! The poller as fleetd runs it: failures are logged on every run and retried, never the end
//! of polling; of several processes on one database only the lease holder polls.

use std::time::Duration;

use fleet_testkit::eventually;

use crate::support::{client, jobs, runs, start_sim, writer, Sim};
use chrono::Utc;
use fleet_ingest::{PollConfig, PollJobs, Poller};
use fleet_testkit::TestDb;
use tokio_util::sync::CancellationToken;

/// Every job often, retries and lease checks quick: a test's worth of scheduling.
fn quick() -> PollConfig {
    let ms = Duration::from_millis;
    PollConfig {
        live_every: ms(100),
        track_every: ms(1000),
        trips_every: ms(1000),
        alarms_every: ms(1000),
        devices_every: ms(1000),
        retry_min: ms(50),
        lease_retry: ms(100),
        lease_check: ms(100),
        ..PollConfig::default()
    }
}

#[tokio::test]
async fn with_wrong_credentials_every_run_is_logged_as_failed_and_the_poller_keeps_retrying() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let sim = start_sim(2, Utc::now().timestamp()).await;
    let jobs = PollJobs::new(
        client(&sim, Some("not-the-password")),
        writer(&db.pool, &stop),
        db.pool.clone(),
        quick(),
    );
    let poller = tokio::spawn(Poller::new(jobs).run(stop.clone()));

    eventually("three failed device syncs", Duration::from_secs(15), || async {
        runs(&db.pool, "poll.devices").await.len() >= 3
    })
    .await;
    for job in ["poll.devices", "poll.live"] {
        eventually(job, Duration::from_secs(10), || async {
            !runs(&db.pool, job).await.is_empty()
        })
        .await;
        for (status, rows_in, .., error) in runs(&db.pool, job).await {
            assert_eq!((status.as_str(), rows_in), ("failed", 0));
            let error = error.expect("an error text");
            assert!(error.contains("credentials") && error.contains("password"), "{error}");
        }
    }
    assert!(!poller.is_finished(), "a failing poller keeps going");
    assert_eq!(
        sim.state.calls("jimi.oauth.token.get"),
        1,
        "a refused login is not repeated at every retry (accounts get locked)"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), poller).await.expect("stops").expect("no panic");
}

#[tokio::test]
async fn of_two_pollers_on_one_database_only_the_lease_holder_calls_the_vendor() {
    let db = TestDb::migrated().await;
    let other_pool = db.another_pool().await;
    let now = Utc::now().timestamp();
    let (sim_a, sim_b) = (start_sim(3, now).await, start_sim(3, now).await);
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = tokio::spawn(Poller::new(jobs(&db.pool, &sim_a, &stop_a, quick())).run(stop_a.clone()));
    let b =
        tokio::spawn(Poller::new(jobs(&other_pool, &sim_b, &stop_b, quick())).run(stop_b.clone()));

    let live = |s: &Sim| s.state.calls("jimi.user.device.location.list");
    eventually("one poller polled live five times", Duration::from_secs(15), || async {
        live(&sim_a) >= 5 || live(&sim_b) >= 5
    })
    .await;
    let (holder, (stop_holder, holder_task), standby, (stop_standby, standby_task)) =
        if live(&sim_a) >= 5 {
            (&sim_a, (stop_a, a), &sim_b, (stop_b, b))
        } else {
            (&sim_b, (stop_b, b), &sim_a, (stop_a, a))
        };
    assert!(holder.state.calls("jimi.user.device.list") >= 1, "the holder synced devices first");
    assert_eq!(standby.total_calls(), 0, "the standby made no vendor call");

    // the holder stops and releases the lease: the standby takes over
    stop_holder.cancel();
    tokio::time::timeout(Duration::from_secs(10), holder_task)
        .await
        .expect("holder stops")
        .expect("no panic");
    eventually("the standby took over", Duration::from_secs(15), || async { live(standby) >= 1 })
        .await;
    stop_standby.cancel();
    tokio::time::timeout(Duration::from_secs(10), standby_task)
        .await
        .expect("standby stops")
        .expect("no panic");
}

/// The poller's lease lock in this test's database (advisory locks are per database, and other
/// tests hold the same name in theirs).
const LEASE_LOCK: &str = "locktype = 'advisory' and granted and classid = $1::oid
    and objid = hashtext('tracksolid-poller')::oid
    and database = (select oid from pg_database where datname = current_database())";

async fn lease_held(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar(&format!("select exists (select from pg_locks where {LEASE_LOCK})"))
        .bind(fleet_db::lease::LEASE_NAMESPACE)
        .fetch_one(pool)
        .await
        .expect("lease state")
}

#[tokio::test]
async fn a_poller_that_loses_its_lease_takes_it_again_and_goes_on_polling() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let sim = start_sim(2, Utc::now().timestamp()).await;
    let poller = tokio::spawn(Poller::new(jobs(&db.pool, &sim, &stop, quick())).run(stop.clone()));
    let live = || sim.state.calls("jimi.user.device.location.list");
    eventually("polling", Duration::from_secs(15), || async { live() >= 2 }).await;

    let killed: i64 = sqlx::query_scalar(&format!(
        "select count(*) from (select pg_terminate_backend(pid) from pg_locks where {LEASE_LOCK}) t"
    ))
    .bind(fleet_db::lease::LEASE_NAMESPACE)
    .fetch_one(&db.pool)
    .await
    .expect("terminate the lease's session");
    assert_eq!(killed, 1);
    let before = live();
    eventually("polling again under a new lease", Duration::from_secs(15), || async {
        live() >= before + 3 && lease_held(&db.pool).await
    })
    .await;
    assert!(!poller.is_finished());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), poller).await.expect("stops").expect("no panic");
}
