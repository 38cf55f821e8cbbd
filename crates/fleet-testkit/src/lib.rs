//! The test harness every fleetd crate uses: [`TestDb::migrated`] gives a test its own fresh
//! database, cloned from a template migrated once per migration set, and drops it afterwards.
//!
//! The server is the one `DATABASE_URL` points at when set; otherwise the harness starts (or
//! reuses) a private cluster of its own under the system temp directory. Without either, tests
//! fail with a message saying what to do; they never skip.

pub mod logs;
mod server;
mod wait;

pub use wait::eventually;

use std::sync::atomic::{AtomicU32, Ordering};

use fleet_config::DbConfig;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

pub use server::{admin_url, server_url};

/// A database of one test. Dropped with the test (connections are closed by force).
#[derive(Debug)]
pub struct TestDb {
    pub pool: PgPool,
    name: String,
    url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The pool settings tests use: fleetd's defaults.
pub fn db_config() -> DbConfig {
    DbConfig {
        max_connections: 10,
        statement_timeout: Some(std::time::Duration::from_secs(60)),
        acquire_timeout: std::time::Duration::from_secs(30),
        application_name: "fleetd-test".to_owned(),
    }
}

impl TestDb {
    /// A fresh database with every migration applied (as `fleetd migrate` leaves it).
    pub async fn migrated() -> TestDb {
        let template = server::template().await;
        Self::create(Some(&template)).await
    }

    /// A fresh, empty database: no migrations applied.
    pub async fn empty() -> TestDb {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> TestDb {
        let name = format!(
            "fleetd_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut admin = admin_connection().await;
        let sql = match template {
            Some(t) => format!("create database {name} template {t}"),
            None => format!("create database {name}"),
        };
        sqlx::query(&sql).execute(&mut admin).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        admin.close().await.ok();
        let url = server::database_url(&name);
        let pool = fleet_db::connect(&url, &db_config())
            .await
            .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
        if template.is_some() {
            // database-level privileges are not copied from the template
            fleet_db::roles::harden_database(&pool)
                .await
                .unwrap_or_else(|e| panic!("hardening {name}: {e}"));
        }
        TestDb { pool, name, url }
    }

    /// URL of this database (for starting a fleetd process against it).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A second, independent pool on the same database (another "process").
    pub async fn another_pool(&self) -> PgPool {
        fleet_db::connect(&self.url, &db_config()).await.expect("second pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be shutting down: use a thread with
        // its own runtime. WITH (FORCE) ends the pool's sessions.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut admin = admin_connection().await;
                sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        });
        let _ = handle.join();
    }
}

/// A connection to the server's maintenance database.
pub async fn admin_connection() -> PgConnection {
    let url = admin_url().await;
    let opts: PgConnectOptions = url.parse().unwrap_or_else(|e| panic!("bad admin URL: {e}"));
    PgConnection::connect_with(&opts).await.unwrap_or_else(|e| {
        panic!("cannot connect to the test PostgreSQL server: {e}. Set DATABASE_URL to a server the tests may create databases on, or install the PostgreSQL server binaries.")
    })
}
