//! fleetd's operations: backups taken with the machine's pg_dump and proven by restoring them
//! ([`backup`], [`verify`]), the pruning of scheduled backups ([`prune`]), the database audit
//! ([`audit`]), ops alerts with webhooks ([`alerts`]), and the background workers a serving
//! process runs: retention and the backup schedule ([`workers`], [`backup_schedule`]).

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod backup_schedule;
pub mod pgtools;
pub mod private;
pub mod prune;
pub mod verify;
pub mod workers;

use std::path::PathBuf;

/// Why an operation could not be done. Messages say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(
        "{program} not found{}: install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client) or set FLEETD_PG_BINDIR to their directory",
        bindir.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default()
    )]
    MissingTool { program: &'static str, bindir: Option<PathBuf> },
    #[error("{program} failed: {detail}")]
    Tool { program: String, detail: String },
    #[error("{0}")]
    Input(String),
    #[error("{what} {}: {cause}", path.display())]
    Io { what: &'static str, path: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    Db(#[from] fleet_db::DbError),
    #[error("{context}: {cause}")]
    Query { context: &'static str, cause: sqlx::Error },
}

/// Attaches what fleetd was doing to a sqlx error.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, OpsError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, OpsError> {
        self.map_err(|cause| OpsError::Query { context, cause })
    }
}

pub(crate) fn io_err(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> OpsError {
    let path = path.to_owned();
    move |cause| OpsError::Io { what, path, cause }
}
