//! `fleetd backup`, `backup verify`, `restore` and `audit` as documented, and the backup
//! schedule of `fleetd serve` (each backup verified, old ones pruned).

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use fleet_testkit::TestDb;
use nix::sys::signal::Signal;
use support::{fleetd, spawn_until, stop};

fn run(args: &[&str]) -> Output {
    fleetd().args(args).env("FLEETD_LOG", "warn").output().expect("run fleetd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn seed(db: &TestDb) {
    sqlx::raw_sql(
        "insert into fleet.devices (imei) values ('359339075012345'), ('359339075012346');
         insert into fleet.positions (device_id, gps_time, lat, lon, source)
             select device_id, now() - m * interval '1 minute', -1.28, 36.82, 'push'
             from fleet.devices cross join generate_series(1, 500) m;",
    )
    .execute(&db.pool)
    .await
    .expect("seed");
}

async fn positions(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let n = sqlx::query_scalar("select count(*) from fleet.positions")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_verify_restore_and_audit_from_the_command_line() {
    let db = TestDb::migrated().await;
    seed(&db).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_s = dir.path().to_string_lossy().into_owned();

    let out = run(&["backup", "--database-url", db.url(), "--dir", &dir_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = PathBuf::from(text(&out.stdout).trim());
    assert!(path.is_file() && path.starts_with(dir.path()), "prints the file's path: {path:?}");
    assert!(text(&out.stderr).contains("backup of"), "{}", text(&out.stderr));

    let file = path.to_string_lossy().into_owned();
    let out = run(&["backup", "verify", "--database-url", db.url(), &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("match the snapshot"), "{}", text(&out.stdout));

    let target = TestDb::empty().await;
    let out = run(&["restore", "--database-url", target.url(), &file]);
    assert!(!out.status.success(), "a restore needs --yes");
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    let out = run(&["restore", "--database-url", target.url(), "--yes", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(positions(target.url()).await, 1000);

    // --create makes the database first
    let name = format!("{}_created", target.name());
    let created_url = target.url().replace(target.name(), &name);
    let out = run(&["restore", "--database-url", &created_url, "--create", "--yes", &file]);
    let created = positions(&created_url).await;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&db.pool)
        .await
        .expect("drop the created database");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(created, 1000);

    // a verified backup just taken: the audit passes; JSON is machine-readable
    let out = run(&["audit", "--database-url", db.url(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let backups =
        report["checks"].as_array().expect("checks").iter().find(|c| c["id"] == "backups").cloned();
    assert_eq!(backups.map(|c| c["status"].clone()), Some(serde_json::json!("ok")), "{report}");
    let failed: Vec<_> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(out.status.success(), failed.is_empty(), "exit code follows failures: {failed:?}");

    sqlx::query("grant delete on fleet.positions to fleet_ro")
        .execute(&db.pool)
        .await
        .expect("seed a violation");
    let out = run(&["audit", "--database-url", db.url()]);
    assert!(!out.status.success(), "a failed check fails the command");
    assert!(text(&out.stdout).contains("FAIL  read_only_roles"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("audit failed"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_verified_backups_on_its_schedule_and_prunes_old_ones() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = fleetd();
    cmd.args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        // every five seconds (croner takes an optional seconds field)
        .env("FLEETD_BACKUP_SCHEDULE", "*/5 * * * * *")
        .env("FLEETD_BACKUP_DIR", dir.path())
        .env("FLEETD_BACKUP_KEEP_DAILY", "1")
        .env("FLEETD_BACKUP_KEEP_WEEKLY", "0")
        .env("FLEETD_BACKUP_KEEP_MONTHLY", "0")
        .env("FLEETD_LOG", "warn");
    let (child, _) = spawn_until(&mut cmd, "fleetd listening on ", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut taken = 0i64;
    // two verified scheduled backups recorded over time, of which one is kept
    while Instant::now() < deadline {
        taken =
            sqlx::query_scalar("select count(*) from fleet.backups where scheduled and verify_ok")
                .fetch_one(&db.pool)
                .await
                .expect("count");
        let dumps = std::fs::read_dir(dir.path())
            .map(|d| {
                d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".dump")).count()
            })
            .unwrap_or(0);
        let identity: i64 =
            sqlx::query_scalar("select coalesce(max(backup_id), 0) from fleet.backups")
                .fetch_one(&db.pool)
                .await
                .expect("max id");
        if identity >= 2 && taken == 1 && dumps == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop(child, Signal::SIGTERM, Duration::from_secs(60));
    assert_eq!(taken, 1, "a later verified backup replaced the earlier one");
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".partial"))
        .collect();
    assert_eq!(files.len(), 3, "one dump with its checksum and manifest: {files:?}");
}
