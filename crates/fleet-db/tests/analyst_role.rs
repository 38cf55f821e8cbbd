//! The read-only analyst role fleet_ro: reads the reporting layer, writes and creates nothing.

use fleet_config::Secret;
use fleet_db::roles::{self, AnalystLogin};
use fleet_testkit::TestDb;
use sqlx::PgPool;

/// Runs `sql` as fleet_ro inside a transaction that is rolled back.
async fn as_analyst(pool: &PgPool, sql: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("set local role fleet_ro").execute(&mut *tx).await?;
    let result = sqlx::query(sql).execute(&mut *tx).await.map(|_| ());
    tx.rollback().await?;
    result
}

fn is_permission_denied(result: &Result<(), sqlx::Error>) -> bool {
    matches!(result, Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501"))
}

async fn relations(pool: &PgPool, kinds: &str) -> Vec<(String, String)> {
    sqlx::query_as(&format!(
        "select format('%I.%I', n.nspname, c.relname),
                (select format('%I', attname) from pg_attribute
                  where attrelid = c.oid and attnum > 0 and not attisdropped and attidentity = '' order by attnum desc limit 1)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting') and c.relkind in ({kinds}) and not c.relispartition
         order by 1"
    ))
    .fetch_all(pool)
    .await
    .expect("catalog")
}

#[tokio::test]
async fn fleet_ro_can_select_from_every_reporting_view() {
    let db = TestDb::migrated().await;
    let views = relations(&db.pool, "'v', 'm'").await;
    let reporting: Vec<_> = views.iter().filter(|(v, _)| v.starts_with("reporting.")).collect();
    assert!(reporting.len() >= 4, "{views:?}");
    for (view, _) in reporting {
        as_analyst(&db.pool, &format!("select * from {view} limit 1"))
            .await
            .unwrap_or_else(|e| panic!("fleet_ro cannot read {view}: {e}"));
    }
    as_analyst(&db.pool, "select count(*) from fleet.positions")
        .await
        .expect("base tables are readable");
}

#[tokio::test]
async fn fleet_ro_cannot_read_credentials() {
    let db = TestDb::migrated().await;
    for table in [
        "fleet.users",
        "fleet.api_tokens",
        "fleet.sessions",
        "fleet.login_throttle",
        "fleet.notify_key",
    ] {
        let r = as_analyst(&db.pool, &format!("select * from {table}")).await;
        assert!(is_permission_denied(&r), "{table}: {r:?}");
    }
}

#[tokio::test]
async fn fleet_ro_reads_the_delivery_log_but_not_the_providers_answers() {
    let db = TestDb::migrated().await;
    let log = "select delivery_id, attempt, started_at, finished_at, latency_ms, outcome,
                      status_code from fleet.notify_attempts";
    as_analyst(&db.pool, log).await.expect("the delivery log without answers");
    // SMTP and gateway errors echo addresses
    let r = as_analyst(&db.pool, "select response from fleet.notify_attempts").await;
    assert!(is_permission_denied(&r), "{r:?}");
}

#[tokio::test]
async fn fleet_ro_cannot_insert_update_or_delete_anywhere() {
    let db = TestDb::migrated().await;
    let all = relations(&db.pool, "'r', 'p', 'v'").await;
    assert!(all.len() >= 15, "{all:?}");
    for (rel, col) in &all {
        for sql in [
            format!("insert into {rel} default values"),
            format!("update {rel} set {col} = {col}"),
            format!("delete from {rel}"),
            format!("truncate {rel}"),
        ] {
            if sql.starts_with("truncate") && rel.starts_with("reporting.") {
                continue; // views cannot be truncated by anyone
            }
            let r = as_analyst(&db.pool, &sql).await;
            // a view that is not auto-updatable refuses writes from anyone (55000) before
            // privileges are checked; that is a refusal too
            let not_updatable =
                rel.starts_with("reporting.") && sqlstate(&r) == Some("55000".to_owned());
            assert!(is_permission_denied(&r) || not_updatable, "`{sql}` as fleet_ro gave {r:?}");
        }
    }
}

fn sqlstate(result: &Result<(), sqlx::Error>) -> Option<String> {
    result.as_ref().err()?.as_database_error()?.code().map(|c| c.into_owned())
}

#[tokio::test]
async fn fleet_ro_cannot_create_anything() {
    let db = TestDb::migrated().await;
    for sql in [
        "create table fleet.scratch (x int)",
        "create table reporting.scratch (x int)",
        "create table public.scratch (x int)",
        "create view reporting.v_scratch as select 1",
        "create schema scratch",
        "create temporary table scratch (x int)",
        "create function public.f() returns int language sql as 'select 1'",
        "select fleet.create_positions_partition('2001-01-01')",
    ] {
        let r = as_analyst(&db.pool, sql).await;
        assert!(is_permission_denied(&r), "`{sql}` as fleet_ro gave {r:?}");
    }
}

#[tokio::test]
async fn analyst_login_is_disabled_without_a_password_and_enabled_with_one() {
    let db = TestDb::migrated().await;
    let state = || async {
        sqlx::query_as::<_, (bool, Option<String>)>(
            "select rolcanlogin, rolpassword from pg_authid where rolname = 'fleet_ro'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("pg_authid")
    };
    let pw = Secret::new("correct horse battery staple".to_owned());
    assert_eq!(
        roles::apply_analyst_login(&db.pool, Some(&pw)).await.expect("enable"),
        AnalystLogin::Enabled
    );
    let (can_login, verifier) = state().await;
    assert!(can_login);
    let verifier = verifier.expect("password set");
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(!verifier.contains("horse"));

    assert_eq!(
        roles::apply_analyst_login(&db.pool, None).await.expect("disable"),
        AnalystLogin::Disabled
    );
    assert_eq!(state().await, (false, None), "no login and no password without configuration");
}
