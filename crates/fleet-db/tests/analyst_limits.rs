//! The analyst role's limits hold against an analyst who tries to lift them: its session
//! defaults are in place, its connection limit refuses one connection too many, and a query
//! that turned its statement timeout off is cancelled by fleetd's watchdog.
//!
//! fleet_ro is one role for the whole server, so the tests here take turns.

use std::str::FromStr;
use std::time::{Duration, Instant};

use fleet_config::{AnalystLimits, Secret};
use fleet_testkit::TestDb;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

static ROLE: Mutex<()> = Mutex::const_new(());

const PASSWORD: &str = "analyst-limits-test";

/// Enables fleet_ro with `limits` and returns how to connect as it.
async fn analyst(db: &TestDb, limits: AnalystLimits) -> PgConnectOptions {
    let password = Secret::new(PASSWORD.to_owned());
    fleet_db::roles::apply_analyst_login(&db.pool, Some(&password)).await.expect("login");
    assert!(fleet_db::roles::apply_analyst_limits(&db.pool, &limits).await.expect("limits"));
    PgConnectOptions::from_str(db.url()).expect("url").username("fleet_ro").password(PASSWORD)
}

#[tokio::test]
async fn the_analyst_role_has_its_timeouts_work_mem_and_connection_limit() {
    let _turn = ROLE.lock().await;
    let db = TestDb::migrated().await;
    let limits =
        AnalystLimits { statement_timeout: Duration::from_millis(1500), connection_limit: 2 };
    let opts = analyst(&db, limits).await;
    let mut first = opts.connect().await.expect("first");
    let settings: (String, String, String) = sqlx::query_as(
        "select current_setting('statement_timeout'), current_setting('work_mem'),
                current_setting('idle_in_transaction_session_timeout')",
    )
    .fetch_one(&mut first)
    .await
    .expect("settings");
    assert_eq!(settings, ("1500ms".into(), "32MB".into(), "5min".into()));
    // a query past the timeout fails on its own
    let slow = sqlx::query("select pg_sleep(3)").execute(&mut first).await.expect_err("timeout");
    assert_eq!(code(&slow).as_deref(), Some("57014"), "{slow}");

    let _second = opts.connect().await.expect("second");
    let third = opts.connect().await.expect_err("a third is over the limit");
    assert_eq!(code(&third).as_deref(), Some("53300"), "{third}");
    // fleetd's own sessions are unaffected
    let n: i64 =
        sqlx::query_scalar("select count(*) from pg_stat_activity where usename = 'fleet_ro'")
            .fetch_one(&db.pool)
            .await
            .expect("fleetd still connects");
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_query_that_turned_its_statement_timeout_off_is_cancelled_by_the_watchdog() {
    let _turn = ROLE.lock().await;
    let db = TestDb::migrated().await;
    let limit = Duration::from_secs(1);
    let limits = AnalystLimits { statement_timeout: limit, connection_limit: 5 };
    let opts = analyst(&db, limits).await;
    let mut conn: PgConnection = opts.connect().await.expect("analyst");
    sqlx::query("set statement_timeout = 0").execute(&mut conn).await.expect("lifted");

    let stop = CancellationToken::new();
    let watchdog =
        tokio::spawn(fleet_db::analyst_limits::watch(db.pool.clone(), limit, stop.clone()));
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        sqlx::query("select pg_sleep(30)").execute(&mut conn),
    )
    .await
    .expect("the query ended before its 30 s");
    let e = outcome.expect_err("cancelled");
    assert_eq!(code(&e).as_deref(), Some("57014"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "cancelled after {:?}", started.elapsed());
    // the connection itself stays usable, and fleetd's own long queries are not touched
    let one: i32 = sqlx::query_scalar("select 1").fetch_one(&mut conn).await.expect("usable");
    assert_eq!(one, 1);
    sqlx::query("select pg_sleep(2)").execute(&db.pool).await.expect("fleetd's query runs on");
    stop.cancel();
    watchdog.await.expect("watchdog stops");
    conn.close().await.ok();
}

fn code(e: &sqlx::Error) -> Option<String> {
    e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
}
