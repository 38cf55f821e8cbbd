//! fleetd's PostgreSQL layer: the connection pool, the schema migrations, monthly partitions of
//! `fleet.positions`, advisory-lock leases for single-writer jobs, the analyst role, and the
//! status report behind `fleetd db status`.

pub mod lease;
pub mod migrate;
pub mod partitions;
pub mod pool;
pub mod roles;
pub mod status;

pub use lease::{Lease, LeaseOptions};
pub use pool::{connect, connect_options, ensure_database};
pub use sqlx::PgPool;

/// A failure talking to PostgreSQL, with what fleetd was doing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    Url(#[source] sqlx::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{context}: {source}")]
    Query { context: &'static str, source: sqlx::Error },
}

/// Attaches what fleetd was doing to a sqlx error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError::Query { context, source })
    }
}
