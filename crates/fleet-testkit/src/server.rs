//! Which PostgreSQL server the tests use, and the migrated template database on it.

use std::sync::OnceLock;

use fleet_embedded_pg::{EmbeddedPostgres, StartOptions};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use tokio::sync::OnceCell;
use url::Url;

static SERVER: OnceCell<Url> = OnceCell::const_new();
static SERVER_SYNC: OnceLock<Url> = OnceLock::new();
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Arbitrary key serialising template builds across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x466c_6565_7464_5450;

/// The server's URL (its database part is not used): `DATABASE_URL`, or the harness's own
/// cluster, started on first use and left running for the next test run.
pub async fn server_url() -> Url {
    SERVER
        .get_or_init(|| async {
            let url = match std::env::var("DATABASE_URL") {
                Ok(url) if !url.is_empty() => url,
                _ => private_cluster().await,
            };
            let url = Url::parse(&url).unwrap_or_else(|e| panic!("DATABASE_URL is not a URL: {e}"));
            let _ = SERVER_SYNC.set(url.clone());
            url
        })
        .await
        .clone()
}

async fn private_cluster() -> String {
    let uid = nix_uid();
    let dir = std::env::temp_dir().join(format!("fleetd-test-pg-{uid}"));
    let pg = EmbeddedPostgres::start(StartOptions { data_dir: dir.clone(), bindir: None })
        .await
        .unwrap_or_else(|e| panic!("DATABASE_URL is not set and the harness could not start its own PostgreSQL in {}: {e}", dir.display()));
    let url = pg.url("postgres").expose().clone();
    // left running on purpose: later test binaries reuse it
    std::mem::forget(pg);
    url
}

fn nix_uid() -> u32 {
    nix::unistd::Uid::effective().as_raw()
}

fn with_database(base: &Url, db: &str) -> String {
    let mut u = base.clone();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// URL of the maintenance database `postgres` on the test server.
pub async fn admin_url() -> String {
    with_database(&server_url().await, "postgres")
}

/// URL of database `db` on the test server (after the server is known).
pub(crate) fn database_url(db: &str) -> String {
    let base = SERVER_SYNC
        .get()
        .unwrap_or_else(|| unreachable!("server_url() ran before any database was created"));
    with_database(base, db)
}

/// Name of the template holding the current migrations, building it if needed.
pub(crate) async fn template() -> String {
    TEMPLATE.get_or_init(build_template).await.clone()
}

async fn build_template() -> String {
    let mut hasher = Sha256::new();
    for m in fleet_db::migrate::MIGRATOR.iter() {
        hasher.update(m.version.to_le_bytes());
        hasher.update(&m.checksum);
    }
    let tag: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = format!("fleetd_tpl_{tag}");

    let mut admin = crate::admin_connection().await;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await
        .expect("template lock");
    let state: Option<bool> =
        sqlx::query_scalar("select datistemplate from pg_database where datname = $1")
            .bind(&name)
            .fetch_optional(&mut admin)
            .await
            .expect("template lookup");
    if state != Some(true) {
        // a half-built template from an interrupted run, or none yet
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut admin)
            .await
            .expect("drop stale template");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create template");
        let pool = fleet_db::connect(&database_url(&name), &crate::db_config())
            .await
            .expect("connect to template");
        fleet_db::migrate::run(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrating the template database: {e}"));
        pool.close().await;
        sqlx::query(&format!(
            "alter database {name} with is_template true allow_connections false"
        ))
        .execute(&mut admin)
        .await
        .expect("mark template");
        // Templates of other migration sets stay: another checkout (a branch with a migration
        // more or less) may be cloning them right now on this shared server, and dropping them
        // `with (force)` would break its tests. They are small; drop them by hand when needed.
    }
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await
        .expect("template unlock");
    admin.close().await.ok();
    name
}
