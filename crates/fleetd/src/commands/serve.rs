//! `fleetd serve` and `fleetd demo`: prepare the database, then serve HTTP until a signal.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use fleet_config::Config;
use fleet_db::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::database::{Database, EMBEDDED_DATABASE};
use crate::shutdown;

/// How often positions partitions are checked ahead (and the default partition emptied).
const PARTITION_CHECK_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Demo,
}

pub async fn run(cfg: Config, mode: Mode) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal()?;
    let db = Database::open(&cfg).await?;
    let result = serve(&db, &cfg, mode, shutdown).await;
    let closed = db.close().await;
    result.and(closed)
}

async fn serve(
    db: &Database,
    cfg: &Config,
    mode: Mode,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if shutdown.is_cancelled() {
        return Ok(());
    }
    db.prepare(cfg).await?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (FLEETD_LISTEN / --listen)", cfg.listen))?;
    let addr = listener.local_addr()?;
    let maintenance = tokio::spawn(partition_maintenance(
        db.pool.clone(),
        cfg.partition_months_ahead,
        shutdown.clone(),
    ));
    announce(mode, addr, db, cfg);
    let app = fleet_http::router(fleet_http::AppState { pool: db.pool.clone() });
    let served = fleet_http::serve(listener, app, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = maintenance.await;
    served.context("HTTP server failed")
}

async fn partition_maintenance(pool: PgPool, months_ahead: u32, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(PARTITION_CHECK_EVERY);
    every.tick().await; // start-up already did it
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let today = chrono::Utc::now().date_naive();
                if let Err(e) = fleet_db::partitions::maintain(&pool, today, months_ahead).await {
                    tracing::error!(error = %e, "positions partition maintenance failed");
                }
            }
        }
    }
}

/// Tells the person at the terminal what runs where. The `listening on` line is also what
/// scripts and tests wait for.
fn announce(mode: Mode, addr: SocketAddr, db: &Database, cfg: &Config) {
    println!("fleetd listening on http://{addr}");
    if mode == Mode::Serve {
        return;
    }
    let database = match &db.embedded {
        Some(pg) => format!(
            "embedded PostgreSQL in {} (127.0.0.1:{}, database {EMBEDDED_DATABASE})",
            pg.root().display(),
            pg.port()
        ),
        None => "the server at DATABASE_URL".to_owned(),
    };
    let analyst = if cfg.analyst_password.is_some() {
        "fleet_ro can log in with FLEETD_ANALYST_PASSWORD"
    } else {
        "fleet_ro login disabled (set FLEETD_ANALYST_PASSWORD to enable it)"
    };
    println!(
        "\nfleetd demo is running\n  \
         database   {database}, schema migrated\n  \
         health     http://{addr}/healthz  and  http://{addr}/readyz\n  \
         analysts   {analyst}\n  \
         this build serves the database and health checks; the Tracksolid simulator, ingest,\n  \
         API and web apps join as they land.\n\
         Press Ctrl-C to stop (the embedded database stops with it).\n"
    );
}
