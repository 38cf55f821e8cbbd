//! The audit's checks, by what they look at: the schema and its upkeep (`schema`), roles and
//! passwords (`security`), and what is going on (`activity`: connections, sessions, ingest,
//! backups), and the modes of private files on this machine (`files`). Each reads catalogs,
//! fleetd's tables or file metadata and never changes anything.

use sqlx::PgPool;

use super::{AuditContext, Check};
use crate::OpsError;
use activity::{backups, connections, ingest, sessions};
use files::file_modes;
use schema::{migrations, partitions, retention, sizes};
use security::{analyst_limits, passwords, read_only_roles, superuser};

mod activity;
mod files;
mod schema;
mod security;

/// Every check, in report order.
pub const ALL: [&str; 13] = [
    "migrations",
    "connections",
    "partitions",
    "retention",
    "read_only_roles",
    "passwords",
    "superuser",
    "analyst_limits",
    "sessions",
    "sizes",
    "ingest",
    "backups",
    "file_modes",
];

pub async fn run(id: &'static str, pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    match id {
        "migrations" => migrations(pool).await,
        "connections" => connections(pool, ctx).await,
        "partitions" => partitions(pool, ctx).await,
        "retention" => retention(pool, ctx).await,
        "read_only_roles" => read_only_roles(pool).await,
        "passwords" => passwords(pool).await,
        "superuser" => superuser(pool).await,
        "analyst_limits" => analyst_limits(pool).await,
        "sessions" => sessions(pool).await,
        "sizes" => sizes(pool).await,
        "ingest" => ingest(pool).await,
        "backups" => backups(pool, ctx).await,
        "file_modes" => file_modes(ctx).await,
        other => Err(OpsError::Input(format!("unknown check {other}"))),
    }
}
