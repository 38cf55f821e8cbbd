//! fleetd's connection pools: a fixed budget each, a statement timeout and an application_name
//! so fleetd's sessions are recognisable in pg_stat_activity. A serving process opens two: one
//! for the writer, the leases and the background workers, and one for the HTTP API, so that
//! however many readers the API has (slow exports, many requests) ingest keeps its connections.
//!
//! JIT compilation is off for fleetd's sessions: its queries are short and run often, and the
//! planner's cost estimates for array-driven lateral scans over the partitioned positions table
//! exceed `jit_above_cost`, so JIT spent ~100 ms compiling a query that runs in a few
//! milliseconds. Analysts' own sessions keep the server's setting.

use std::str::FromStr;

use fleet_config::DbConfig;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::{Context, DbError};

/// Connection options for `url` with fleetd's session settings applied.
pub fn connect_options(url: &str, cfg: &DbConfig) -> Result<PgConnectOptions, DbError> {
    let timeout_ms = cfg.statement_timeout.map_or(0, |d| d.as_millis());
    let opts = PgConnectOptions::from_str(url)
        .map_err(DbError::Url)?
        .application_name(&cfg.application_name)
        .options([
            ("statement_timeout", timeout_ms.to_string()),
            ("TimeZone", "UTC".to_owned()),
            ("jit", "off".to_owned()),
        ])
        .log_statements(tracing::log::LevelFilter::Debug);
    Ok(opts)
}

/// Opens the process's pool (`cfg.max_connections`) and checks the server answers.
pub async fn connect(url: &str, cfg: &DbConfig) -> Result<PgPool, DbError> {
    connect_sized(url, cfg, cfg.max_connections).await
}

/// Opens a pool of `max_connections` with `cfg`'s session settings (the HTTP API's pool).
pub async fn connect_sized(
    url: &str,
    cfg: &DbConfig,
    max_connections: u32,
) -> Result<PgPool, DbError> {
    let opts = connect_options(url, cfg)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(cfg.acquire_timeout)
        .connect_with(opts)
        .await
        .map_err(DbError::Connect)
}

/// Creates database `name` on the server `admin_url` points at, unless it exists. Used for the
/// embedded cluster and the test harness, whose servers start with only `postgres`.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<(), DbError> {
    let opts = PgConnectOptions::from_str(admin_url).map_err(DbError::Url)?;
    let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(DbError::Connect)?;
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .context("looking up the database")?;
    if !exists {
        let sql = format!("create database {}", quote_ident(name));
        match sqlx::query(&sql).execute(&mut conn).await {
            Ok(_) => tracing::info!(database = name, "created database"),
            // another process created it between the check and the create
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(DbError::Query { context: "creating the database", cause: e }),
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// Quotes an SQL identifier (doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
