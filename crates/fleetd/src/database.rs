//! The database a command works on: the configured server, or the embedded cluster when no
//! URL is configured. Also the start-up preparation every serving process does.

use anyhow::Context;
use fleet_config::{Config, Secret};
use fleet_db::PgPool;
use fleet_embedded_pg::{EmbeddedPostgres, StartOptions};

/// Name of fleetd's database inside the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "fleetd";

/// An open pool, and the embedded cluster behind it if there is one.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    /// The URL the pool connects with (the client tools of backups need it too).
    pub url: Secret<String>,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to the configured database, starting the embedded cluster first if needed.
    pub async fn open(cfg: &Config) -> anyhow::Result<Self> {
        let (url, embedded): (Secret<String>, Option<EmbeddedPostgres>) = match &cfg.database_url {
            Some(url) => (url.clone(), None),
            None => {
                tracing::info!(data_dir = %cfg.data_dir.display(), "no DATABASE_URL configured: using the embedded PostgreSQL");
                let pg = EmbeddedPostgres::start(StartOptions {
                    data_dir: cfg.data_dir.clone(),
                    bindir: cfg.pg_bindir.clone(),
                })
                .await
                .context("starting the embedded PostgreSQL")?;
                let created =
                    fleet_db::ensure_database(pg.url("postgres").expose(), EMBEDDED_DATABASE).await;
                if let Err(e) = created {
                    stop_quietly(pg).await;
                    return Err(e).context("creating fleetd's database in the embedded cluster");
                }
                (pg.url(EMBEDDED_DATABASE), Some(pg))
            }
        };
        match fleet_db::connect(url.expose(), &cfg.db).await {
            Ok(pool) => Ok(Self { pool, url, embedded }),
            Err(e) => {
                if let Some(pg) = embedded {
                    stop_quietly(pg).await;
                }
                Err(e).context("opening the database pool")
            }
        }
    }

    /// What a starting process does before its work: migrations, database privileges, the
    /// analyst role's login and positions partitions ahead. Returns how many migrations this
    /// process applied.
    pub async fn prepare(&self, cfg: &Config) -> anyhow::Result<usize> {
        let applied = fleet_db::migrate::run(&self.pool).await?;
        fleet_db::roles::harden_database(&self.pool).await?;
        fleet_db::roles::apply_analyst_login(&self.pool, cfg.analyst_password.as_ref()).await?;
        fleet_db::roles::apply_analyst_limits(&self.pool, &cfg.analyst).await?;
        let today = chrono::Utc::now().date_naive();
        let parts =
            fleet_db::partitions::maintain(&self.pool, today, cfg.partition_months_ahead).await?;
        tracing::debug!(partitions = parts.len(), "positions partitions in place");
        Ok(applied)
    }

    /// A second pool on the same database for the HTTP API, of `FLEETD_DB_API_CONNECTIONS`,
    /// apart from [`Database::pool`] so API reads can never take the connections of the writer,
    /// the leases and the workers.
    pub async fn api_pool(&self, cfg: &Config) -> anyhow::Result<PgPool> {
        fleet_db::pool::connect_sized(self.url.expose(), &cfg.db, cfg.api.db_connections)
            .await
            .context("opening the HTTP API's database pool")
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(pg) = self.embedded {
            pg.stop().await.context("stopping the embedded PostgreSQL")?;
        }
        Ok(())
    }
}

async fn stop_quietly(pg: EmbeddedPostgres) {
    if let Err(e) = pg.stop().await {
        tracing::warn!(error = %e, "stopping the embedded PostgreSQL failed");
    }
}
