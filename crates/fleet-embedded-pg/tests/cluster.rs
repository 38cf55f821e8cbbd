//! The embedded cluster against the PostgreSQL binaries installed on this machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fleet_config::Secret;
use fleet_embedded_pg::{EmbeddedError, EmbeddedPostgres, StartOptions};
use sqlx::{Connection, PgConnection};

/// A temporary data directory the `postgres` user can reach when the tests run as root.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

async fn start(dir: &Path) -> EmbeddedPostgres {
    EmbeddedPostgres::start(StartOptions { data_dir: dir.to_owned(), bindir: None })
        .await
        .unwrap_or_else(|e| {
            panic!("the embedded cluster must start (PostgreSQL server binaries installed?): {e}")
        })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

async fn connect(url: &Secret<String>) -> PgConnection {
    PgConnection::connect(url.expose()).await.expect("connect")
}

#[tokio::test]
async fn the_cluster_starts_keeps_data_across_a_restart_and_stops() {
    let dir = data_dir();
    let pg = start(dir.path()).await;
    assert!(pg.started_here());
    let first_port = pg.port();
    let mut conn = connect(&pg.url("postgres")).await;
    sqlx::query("create table kept (id int primary key, note text)")
        .execute(&mut conn)
        .await
        .expect("create");
    sqlx::query("insert into kept values (1, 'survives a restart')")
        .execute(&mut conn)
        .await
        .expect("insert");
    conn.close().await.expect("close");
    let pid_file = pg.root().join("pgdata/postmaster.pid");
    assert!(pid_file.exists());
    let log = pg.root().join("postgres.log");
    assert_eq!(mode(&log), 0o600, "the server log is the owner's only");
    pg.stop().await.expect("stop");
    assert!(!pid_file.exists(), "the postmaster is gone after stop");

    // a log left readable by an earlier version is tightened at the next start
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let pg = start(dir.path()).await;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(pg.port(), first_port, "the free port of last time is reused");
    let mut conn = connect(&pg.url("postgres")).await;
    let note: String = sqlx::query_scalar("select note from kept where id = 1")
        .fetch_one(&mut conn)
        .await
        .expect("row");
    assert_eq!(note, "survives a restart");
    conn.close().await.expect("close");
    pg.stop().await.expect("stop");
}

#[tokio::test]
async fn the_cluster_requires_its_password_and_accepts_fleetds_analyst_verifier() {
    let dir = data_dir();
    let pg = start(dir.path()).await;
    let wrong = format!("postgres://fleetd:not-the-password@127.0.0.1:{}/postgres", pg.port());
    let refused = PgConnection::connect(&wrong).await.expect_err("wrong password refused");
    assert!(refused.to_string().contains("password authentication failed"), "{refused}");

    // the full start-up path on the embedded cluster: database, migrations, analyst login
    fleet_db::ensure_database(pg.url("postgres").expose(), "fleetd").await.expect("database");
    let cfg = fleet_config::DbConfig {
        max_connections: 2,
        statement_timeout: None,
        acquire_timeout: std::time::Duration::from_secs(30),
        application_name: "embedded-test".to_owned(),
    };
    let pool = fleet_db::connect(pg.url("fleetd").expose(), &cfg).await.expect("pool");
    fleet_db::migrate::run(&pool).await.expect("migrate");
    let pw = Secret::new("analyst-secret-42".to_owned());
    fleet_db::roles::apply_analyst_login(&pool, Some(&pw)).await.expect("enable analyst");

    let analyst = format!("postgres://fleet_ro:analyst-secret-42@127.0.0.1:{}/fleetd", pg.port());
    let mut conn = PgConnection::connect(&analyst)
        .await
        .expect("fleet_ro logs in with the configured password");
    let n: i64 = sqlx::query_scalar("select count(*) from reporting.v_devices")
        .fetch_one(&mut conn)
        .await
        .expect("read");
    assert_eq!(n, 0);
    conn.close().await.ok();

    fleet_db::roles::apply_analyst_login(&pool, None).await.expect("disable analyst");
    let refused = PgConnection::connect(&analyst).await.expect_err("login disabled");
    let text = refused.to_string();
    assert!(
        text.contains("not permitted to log in") || text.contains("password authentication failed"),
        "{text}"
    );
    pool.close().await;
    pg.stop().await.expect("stop");
}

#[tokio::test]
async fn a_second_start_adopts_the_running_cluster_and_leaves_it_running() {
    let dir = data_dir();
    let first = start(dir.path()).await;
    let second = start(dir.path()).await;
    assert!(!second.started_here());
    assert_eq!(second.port(), first.port());
    second.stop().await.expect("no-op");
    let mut conn = connect(&first.url("postgres")).await;
    let one: i32 = sqlx::query_scalar("select 1").fetch_one(&mut conn).await.expect("still up");
    assert_eq!(one, 1);
    conn.close().await.ok();
    first.stop().await.expect("stop");
}

#[test]
fn missing_server_binaries_are_one_clear_error() {
    let err = fleet_embedded_pg::locate_binaries(Some(Path::new("/nonexistent/bin")), None)
        .expect_err("no binaries");
    assert!(matches!(err, EmbeddedError::NoBinaries { .. }));
    let text = err.to_string();
    assert!(
        text.contains("apt-get install postgresql") && text.contains("FLEETD_PG_BINDIR"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
}
