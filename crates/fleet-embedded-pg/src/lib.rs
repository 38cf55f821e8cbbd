//! A private PostgreSQL cluster for `fleetd demo`, `fleetd serve` without a database URL, and
//! the test harness: initialised with the machine's PostgreSQL server binaries inside fleetd's
//! data directory, listening on a private loopback port with password authentication, reused on
//! the next start, and stopped cleanly on shutdown.
//!
//! PostgreSQL refuses to run as root, so when fleetd runs as root the cluster runs as the
//! unprivileged `postgres` system user.

mod binaries;
mod cluster;
mod os_user;

use std::path::PathBuf;

pub use binaries::{
    locate as locate_binaries, locate_client_tool, major_version, tool_major_version,
};
pub use cluster::{EmbeddedPostgres, StartOptions};

/// Why the embedded cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them \
         (Debian/Ubuntu: apt-get install postgresql) or set FLEETD_PG_BINDIR to their directory"
    )]
    NoBinaries { looked: Vec<PathBuf> },
    #[error(
        "fleetd runs as root and PostgreSQL refuses to; the embedded cluster runs as the \
         'postgres' system user, which does not exist (apt-get install postgresql creates it)"
    )]
    NoUnprivilegedUser,
    #[error(
        "the cluster in {dir} was made by PostgreSQL {cluster}, the binaries in {bindir} are \
         PostgreSQL {binaries}: install version {cluster} or set FLEETD_PG_BINDIR"
    )]
    VersionMismatch { dir: PathBuf, bindir: PathBuf, cluster: u32, binaries: u32 },
    #[error("{what} failed: {detail}")]
    Command { what: &'static str, detail: String },
    #[error("{what} {path}: {cause}")]
    Io { what: &'static str, path: PathBuf, cause: std::io::Error },
}
