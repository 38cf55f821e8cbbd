//! fleetd's PostgreSQL layer: the connection pool, the schema migrations, monthly partitions of
//! `fleet.positions`, advisory-lock leases for single-writer jobs, the analyst role, retention, and the
//! status report behind `fleetd db status`; and the data layer, the one place a table is read
//! and written (`live`, `ingest_health`, …), with the change notice writer and stream share
//! (`changes`).

pub mod alarms;
pub mod analyst_limits;
pub mod analytics;
pub mod analytics_config;
pub mod backups;
pub mod changes;
pub mod day;
pub mod devices;
pub mod feeds;
pub mod fix_scan;
pub mod geofences;
pub mod housekeeping;
pub mod ingest_health;
pub mod ingest_log;
pub mod kpis;
pub mod lease;
pub mod live;
pub mod migrate;
pub mod notifications;
pub mod notify;
pub mod ops_alerts;
pub mod partitions;
pub mod pool;
pub mod positions;
pub mod retention;
pub mod roles;
pub mod segments;
pub mod status;
pub mod tracks;
pub mod trips;

pub use lease::{Lease, LeaseOptions};
pub use pool::{connect, connect_options, ensure_database};
pub use sqlx::PgPool;

/// A failure talking to PostgreSQL, with what fleetd was doing. The message includes the
/// cause, so the cause is deliberately not chained as a `source` (it would print twice).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    Url(sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error("{context}: {cause}")]
    Query { context: &'static str, cause: sqlx::Error },
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        DbError::Migrate(e)
    }
}

/// Attaches what fleetd was doing to a sqlx error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, DbError> {
        self.map_err(|cause| DbError::Query { context, cause })
    }
}
