//! `fleetd audit`: checks of the database fleetd runs on, each ending ok, warn or fail. A
//! failure means something is wrong now (data at risk, a privilege leak, ingest stopped); a
//! warning means something to look at (a fresh install with no backup yet warns, it does not
//! fail). docs/OPERATIONS_MANUAL.md lists every check with its thresholds.

mod checks;

/// The identifiers of every check, in report order.
pub use checks::ALL as CHECKS;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_config::RetentionConfig;
use serde::Serialize;
use sqlx::PgPool;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `read_only_roles`.
    pub id: &'static str,
    pub status: Status,
    pub summary: String,
    /// The findings behind the summary, one per line.
    pub details: Vec<String>,
}

impl Check {
    fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Self { id, status, summary: summary.into(), details: Vec::new() }
    }

    fn with(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// Failed if anything failed, else a warning if anything warns; the failures are listed
    /// before the warnings.
    fn from_findings(
        id: &'static str,
        summary: impl Into<String>,
        mut fails: Vec<String>,
        warns: Vec<String>,
    ) -> Self {
        let status = if !fails.is_empty() {
            Status::Fail
        } else if !warns.is_empty() {
            Status::Warn
        } else {
            Status::Ok
        };
        fails.extend(warns);
        Self::new(id, status, summary).with(fails)
    }
}

/// What the audit knows about the process it checks for.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// fleetd's connection budget per process (both pools and the stream listener).
    pub fleetd_budget: u32,
    pub partition_months_ahead: u32,
    pub retention: RetentionConfig,
    /// The newest backup may be this old before the audit fails.
    pub backup_max_age: Duration,
    pub now: DateTime<Utc>,
    /// Files on this machine whose modes are checked.
    pub files: AuditFiles,
}

/// Where the private files of this installation are (each optional: an audit run from
/// another machine checks only the database).
#[derive(Debug, Clone, Default)]
pub struct AuditFiles {
    /// The backup directory; it and the files in it.
    pub backup_dir: Option<PathBuf>,
    /// The embedded cluster's server log, when fleetd runs one.
    pub embedded_log: Option<PathBuf>,
    /// The `.env` file settings are read from.
    pub env_file: Option<PathBuf>,
}

/// Every check's outcome, and the worst of them.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub database: String,
    pub checked_at: DateTime<Utc>,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| c.status == Status::Fail).count()
    }

    pub fn warnings(&self) -> usize {
        self.checks.iter().filter(|c| c.status == Status::Warn).count()
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Runs every check. A check that cannot run (say, too few privileges to read a catalog) is a
/// warning saying so, never an error of the whole audit.
pub async fn run(pool: &PgPool, ctx: &AuditContext) -> Result<Report, crate::OpsError> {
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(pool)
        .await
        .map_err(|cause| crate::OpsError::Query { context: "connecting for the audit", cause })?;
    let mut out = Vec::new();
    for id in checks::ALL {
        let check = match checks::run(id, pool, ctx).await {
            Ok(c) => c,
            Err(e) => Check::new(id, Status::Warn, format!("could not be checked: {e}")),
        };
        out.push(check);
    }
    let status = out.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
    Ok(Report { status, database, checked_at: ctx.now, checks: out })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audit of database {} at {}",
            self.database,
            self.checked_at.format("%Y-%m-%d %H:%M:%S UTC")
        )?;
        for c in &self.checks {
            writeln!(f, "  {:<5} {:<18} {}", c.status.label(), c.id, c.summary)?;
            for d in &c.details {
                writeln!(f, "  {:<5} {:<18}   {d}", "", "")?;
            }
        }
        writeln!(
            f,
            "result: {} ({} failed, {} warnings, {} checks)",
            match self.status {
                Status::Ok => "ok",
                Status::Warn => "ok with warnings",
                Status::Fail => "FAILED",
            },
            self.failures(),
            self.warnings(),
            self.checks.len()
        )
    }
}
