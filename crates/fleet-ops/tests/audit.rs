//! The audit passes on a clean install and fails on a seeded violation of each check.
//!
//! Roles are shared by every database on the server, so the tests that create a login role
//! and the clean-install test take turns (ROLES).

use std::time::Duration;

use chrono::Utc;
use fleet_config::RetentionConfig;
use fleet_ops::audit::{self, AuditContext, AuditFiles, Report, Status};
use fleet_testkit::TestDb;
use tokio::sync::Mutex;

static ROLES: Mutex<()> = Mutex::const_new(());

fn context() -> AuditContext {
    AuditContext {
        fleetd_budget: 10,
        partition_months_ahead: 3,
        retention: RetentionConfig {
            positions_days: Some(400),
            trips_days: Some(1100),
            alarms_days: Some(1100),
            kpi_days: Some(1830),
        },
        backup_max_age: Duration::from_secs(48 * 3600),
        now: Utc::now(),
        files: AuditFiles::default(),
    }
}

/// A migrated database as `fleetd serve` leaves it (partitions ahead created).
async fn installed() -> TestDb {
    let db = TestDb::migrated().await;
    fleet_db::partitions::maintain(&db.pool, Utc::now().date_naive(), 3).await.expect("partitions");
    db
}

async fn audit(db: &TestDb) -> Report {
    audit::run(&db.pool, &context()).await.expect("audit runs")
}

fn status_of(r: &Report, id: &str) -> Status {
    r.check(id).unwrap_or_else(|| panic!("no check {id}")).status
}

async fn exec(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn a_clean_install_passes_with_warnings_for_no_backup_and_no_ingest_yet() {
    let _roles = ROLES.lock().await;
    let db = installed().await;
    let r = audit(&db).await;
    let failed: Vec<_> = r.checks.iter().filter(|c| c.status == Status::Fail).collect();
    assert!(failed.is_empty(), "{r}");
    assert_ne!(r.status, Status::Fail);
    assert_eq!(status_of(&r, "backups"), Status::Warn, "no backup yet warns: {r}");
    assert_eq!(status_of(&r, "ingest"), Status::Warn, "no ingest yet warns: {r}");
    for id in ["migrations", "partitions", "retention", "read_only_roles", "sizes"] {
        assert_eq!(status_of(&r, id), Status::Ok, "{id}: {r}");
    }
    assert_eq!(r.checks.len(), 13);
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["checks"][0]["id"], "migrations");
    assert!(["ok", "warn"].contains(&json["status"].as_str().unwrap_or("")), "{json}");
}

#[tokio::test]
async fn a_writable_read_only_role_fails() {
    let db = installed().await;
    exec(&db, "grant insert, update on fleet.devices to fleet_ro").await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "read_only_roles"), Status::Fail, "{r}");
    assert_eq!(r.status, Status::Fail);
    let c = r.check("read_only_roles").expect("check");
    assert!(
        c.details.iter().any(|d| d == "fleet_ro may INSERT, UPDATE on table fleet.devices"),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_missing_partition_fails() {
    let db = installed().await;
    let next = fleet_db::partitions::month_start(Utc::now().date_naive(), 1);
    let name = format!("positions_y{}", next.format("%Ym%m"));
    exec(
        &db,
        &format!(
            "alter table fleet.positions detach partition fleet.{name}; drop table fleet.{name}"
        ),
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "partitions"), Status::Fail, "{r}");
    let c = r.check("partitions").expect("check");
    assert!(c.details.iter().any(|d| d.contains(&next.format("%Y-%m").to_string())), "{c:?}");
}

#[tokio::test]
async fn a_stale_ingest_job_fails() {
    let db = installed().await;
    exec(
        &db,
        r#"insert into fleet.ingestion_log (job, started_at, finished_at, status, detail)
           values ('poll.live', now() - interval '3 days', now() - interval '3 days', 'ok', '{"source": "poller"}')"#,
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "ingest"), Status::Fail, "{r}");
    assert!(r.check("ingest").expect("check").details[0].starts_with("poll.live: stale"), "{r}");
}

#[tokio::test]
async fn a_quiet_push_channel_only_warns() {
    let db = installed().await;
    exec(
        &db,
        r#"insert into fleet.ingestion_log (job, started_at, finished_at, status, rows_in, detail)
           values ('push.alarm', now() - interval '3 days', now() - interval '3 days', 'ok', 1, '"writer window"')"#,
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "ingest"), Status::Warn, "{r}");
}

#[tokio::test]
async fn a_failing_ingest_job_fails() {
    let db = installed().await;
    exec(
        &db,
        r#"insert into fleet.ingestion_log (job, started_at, finished_at, status, error, detail) values
           ('poll.live', now() - interval '2 minutes', now() - interval '2 minutes', 'ok', null, '{"source": "poller"}'),
           ('poll.live', now() - interval '1 minute', now() - interval '1 minute', 'failed', 'token expired', '{"source": "poller"}')"#,
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "ingest"), Status::Fail, "{r}");
}

#[tokio::test]
async fn an_old_backup_fails_and_a_failed_verification_fails() {
    let db = installed().await;
    exec(
        &db,
        "insert into fleet.backups (file_name, path, started_at, finished_at, size_bytes, sha256, verified_at, verify_ok)
         values ('fleetd-x-old.dump', '/b/fleetd-x-old.dump', now() - interval '5 days', now() - interval '5 days', 10, 'ab', now() - interval '5 days', true)",
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "backups"), Status::Fail, "{r}");
    assert!(r.check("backups").expect("check").summary.contains("older than"), "{r}");

    exec(
        &db,
        "insert into fleet.backups (file_name, path, started_at, finished_at, size_bytes, sha256, verified_at, verify_ok, verify_detail)
         values ('fleetd-x-new.dump', '/b/fleetd-x-new.dump', now(), now(), 10, 'cd', now(), false, 'fleet.devices: 3 in the snapshot, 2 restored')",
    )
    .await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "backups"), Status::Fail, "{r}");
    assert!(r.check("backups").expect("check").summary.contains("FAILED"), "{r}");

    exec(&db, "update fleet.backups set verify_ok = true where file_name = 'fleetd-x-new.dump'")
        .await;
    assert_eq!(status_of(&audit(&db).await, "backups"), Status::Ok);
}

#[tokio::test]
async fn pending_migrations_fail() {
    let db = installed().await;
    exec(&db, "delete from public._sqlx_migrations where version = (select max(version) from public._sqlx_migrations)").await;
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "migrations"), Status::Fail, "{r}");
}

#[tokio::test]
async fn data_past_its_retention_period_fails() {
    let db = installed().await;
    fleet_db::partitions::create_for_month(
        &db.pool,
        chrono::NaiveDate::from_ymd_opt(2019, 1, 1).expect("date"),
    )
    .await
    .expect("old partition");
    let r = audit(&db).await;
    assert_eq!(status_of(&r, "retention"), Status::Fail, "{r}");
    assert!(r.check("retention").expect("check").details[0].contains("positions_y2019m01"), "{r}");
}

#[tokio::test]
async fn a_login_role_with_a_default_password_fails() {
    let _roles = ROLES.lock().await;
    let db = installed().await;
    let role = format!("fleet_audit_test_{:08x}", rand_suffix());
    exec(&db, &format!("create role {role} login password 'changeme'")).await;
    let r = audit(&db).await;
    exec(&db, &format!("drop role {role}")).await;
    assert_eq!(status_of(&r, "passwords"), Status::Fail, "{r}");
    let c = r.check("passwords").expect("check");
    assert!(
        c.details
            .iter()
            .any(|d| d == &format!("login role {role} has the default password \"changeme\"")),
        "{c:?}"
    );
}

fn rand_suffix() -> u32 {
    std::process::id() ^ (Utc::now().timestamp_subsec_nanos())
}

#[tokio::test]
async fn backups_and_secrets_readable_by_others_warn() {
    use std::os::unix::fs::PermissionsExt;
    let db = installed().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = dir.path().join("backups");
    fleet_ops::private::create_dir(&backups).expect("dir");
    let dump = backups.join("fleetd-x-20261204T000000Z.dump");
    fleet_ops::private::write(&dump, b"dump").expect("dump");
    let env = dir.path().join(".env");
    fleet_ops::private::write(&env, b"FLEETD_PUSH_TOKEN=x").expect("env");
    let files = AuditFiles {
        backup_dir: Some(backups.clone()),
        embedded_log: None,
        env_file: Some(env.clone()),
    };
    let ctx = AuditContext { files: files.clone(), ..context() };
    let r = audit::run(&db.pool, &ctx).await.expect("audit");
    assert_eq!(status_of(&r, "file_modes"), Status::Ok, "{r}");

    for (path, mode) in [(&dump, 0o644), (&backups, 0o755), (&env, 0o640)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let r = audit::run(&db.pool, &ctx).await.expect("audit");
    let c = r.check("file_modes").expect("check");
    assert_eq!(c.status, Status::Warn, "{r}");
    assert!(c.summary.starts_with("3 of 3"), "{c:?}");
    assert!(c.details.iter().any(|d| d.contains(".dump is 644")), "{c:?}");
    assert!(c.details.iter().any(|d| d.contains("backups is 755")), "{c:?}");
    assert!(c.details.iter().any(|d| d.contains(".env is 640")), "{c:?}");
}

#[tokio::test]
async fn an_analyst_role_without_its_limits_warns() {
    let _roles = ROLES.lock().await;
    let db = installed().await;
    let limits = fleet_config::AnalystLimits {
        statement_timeout: Duration::from_secs(300),
        connection_limit: 5,
    };
    assert!(fleet_db::analyst_limits::apply_analyst_limits(&db.pool, &limits).await.expect("set"));
    let r = audit(&db).await;
    let c = r.check("analyst_limits").expect("check");
    assert_eq!(c.status, Status::Ok, "{c:?}");
    assert!(c.summary.contains("connection limit 5") && c.summary.contains("300000"), "{c:?}");

    exec(&db, "alter role fleet_ro reset all").await;
    exec(&db, "alter role fleet_ro connection limit -1").await;
    let r = audit(&db).await;
    let c = r.check("analyst_limits").expect("check").clone();
    // put them back for the other tests on this server before asserting
    fleet_db::analyst_limits::apply_analyst_limits(&db.pool, &limits).await.expect("restore");
    assert_eq!(c.status, Status::Warn, "{c:?}");
    for missing in ["no connection limit", "no statement_timeout", "no work_mem"] {
        assert!(c.details.iter().any(|d| d.contains(missing)), "{missing}: {c:?}");
    }
}
