//! The fleetd binary as a user runs it: help, configuration errors, migrate.

mod support;

use std::process::{Command, Output};

use fleet_testkit::TestDb;
use support::fleetd;

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn run(c: &mut Command) -> Output {
    c.output().expect("fleetd runs")
}

#[test]
fn help_lists_every_subcommand_and_each_has_its_own_help() {
    let out = run(fleetd().arg("--help"));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in ["serve", "demo", "migrate", "db", "config", "sim", "ingest", "user", "token"] {
        assert!(help.contains(&format!("  {sub} ")), "--help lacks {sub}:\n{help}");
    }
    for args in [
        &["serve", "--help"][..],
        &["demo", "--help"],
        &["migrate", "--help"],
        &["db", "status", "--help"],
        &["user", "add", "--help"],
        &["token", "create", "--help"],
    ] {
        let out = run(fleetd().args(args));
        assert!(out.status.success(), "{args:?}");
        let h = text(&out.stdout);
        assert!(h.contains("--database-url") && h.contains("--data-dir"), "{args:?}:\n{h}");
    }
    assert!(text(&run(fleetd().args(["serve", "--help"])).stdout).contains("--listen"));
}

#[test]
fn a_bad_setting_stops_fleetd_at_start_with_a_message_naming_it() {
    let out = run(fleetd().arg("config").env("FLEETD_DB_MAX_CONNECTIONS", "0"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid setting db_max_connections (FLEETD_DB_MAX_CONNECTIONS, from the environment): 0 is outside the allowed range 1..=100"),
        "{err}"
    );
    let out = run(fleetd().args(["serve", "--listen", "nowhere"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("listen (FLEETD_LISTEN, from a command-line flag)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_prints_effective_values_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("fleetd.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:9090\"\ndb_max_connections = 6\n").expect("write");
    let out = run(fleetd()
        .arg("--config")
        .arg(&file)
        .arg("config")
        .env("FLEETD_DB_MAX_CONNECTIONS", "8")
        .env("DATABASE_URL", "postgres://fleet:pa55word-xyz@db.example:5432/fleet")
        .env("FLEETD_ANALYST_PASSWORD", "analyst-pa55word-xyz"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(!printed.contains("pa55word"), "{printed}");
    assert!(printed.contains("listen = \"0.0.0.0:9090\"  # config file"), "{printed}");
    assert!(
        printed.contains("db_max_connections = 8  # FLEETD_DB_MAX_CONNECTIONS in the environment"),
        "{printed}"
    );
    assert!(
        printed.contains("database_url = \"postgres://fleet:[redacted]@db.example:5432/fleet\""),
        "{printed}"
    );
}

#[test]
fn missing_postgres_binaries_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(fleetd()
        .arg("migrate")
        .arg("--data-dir")
        .arg(dir.path())
        .env("FLEETD_PG_BINDIR", "/nonexistent/bin"));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("fleetd: starting the embedded PostgreSQL: PostgreSQL server binaries"),
        "{err}"
    );
    assert!(last.contains("apt-get install postgresql"), "{err}");
}

#[test]
fn two_migrate_processes_started_together_both_succeed_and_apply_each_migration_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = rt.block_on(TestDb::empty());
    let spawn = || {
        fleetd()
            .args(["migrate", "--database-url", db.url()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
    assert!(a.status.success() && b.status.success(), "{}\n{}", text(&a.stderr), text(&b.stderr));
    let applied: Vec<usize> = [&a, &b]
        .iter()
        .map(|o| {
            let line = text(&o.stdout);
            line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("applied count")
        })
        .collect();
    let total = fleet_db::migrate::MIGRATOR.iter().count();
    assert_eq!(
        applied.iter().sum::<usize>(),
        total,
        "between them each migration applied once: {applied:?}"
    );
    let (rows, distinct): (i64, i64) = rt
        .block_on(
            sqlx::query_as("select count(*), count(distinct version) from _sqlx_migrations")
                .fetch_one(&db.pool),
        )
        .expect("history");
    assert_eq!((rows, distinct), (total as i64, total as i64));
    drop(db);
}
