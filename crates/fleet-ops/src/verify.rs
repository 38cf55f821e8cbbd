//! `fleetd backup verify` and `fleetd restore`: pg_restore a dump, then compare what the
//! database holds with the dump's manifest (row counts of every table, newest GPS time).
//!
//! Verification restores into a scratch database created for the purpose on the same server
//! and drops it afterwards, whatever the outcome; the result is recorded in `fleet.backups`.
//! A restore goes into the target database in one transaction (`--single-transaction`), so a
//! failed restore leaves the target as it was.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, PgPool};

use crate::backup::{read_checked, server_major, snapshot_counts, Manifest};
use crate::pgtools::{self, PgTarget, PgTools};
use crate::{Context, OpsError};

/// How a restored database compares with the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub tables: usize,
    pub rows: i64,
    /// (table, rows in the manifest, rows restored); `None` for a missing side.
    pub differences: Vec<(String, Option<i64>, Option<i64>)>,
    pub newest_gps_time: Option<DateTime<Utc>>,
    pub restored_newest_gps_time: Option<DateTime<Utc>>,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.differences.is_empty() && self.newest_gps_time == self.restored_newest_gps_time
    }

    fn compare(
        manifest: &Manifest,
        restored: &BTreeMap<String, i64>,
        newest: Option<DateTime<Utc>>,
    ) -> Self {
        let mut differences = Vec::new();
        for (t, n) in &manifest.tables {
            match restored.get(t) {
                Some(m) if m == n => {}
                other => differences.push((t.clone(), Some(*n), other.copied())),
            }
        }
        for (t, m) in restored {
            if !manifest.tables.contains_key(t) {
                differences.push((t.clone(), None, Some(*m)));
            }
        }
        Self {
            tables: manifest.tables.len(),
            rows: manifest.tables.values().sum(),
            differences,
            newest_gps_time: manifest.newest_gps_time,
            restored_newest_gps_time: newest,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let newest = |t: Option<DateTime<Utc>>| {
            t.map_or_else(|| "none".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        };
        if self.matches() {
            return write!(
                f,
                "{} tables and {} rows match the snapshot; newest GPS time {}",
                self.tables,
                self.rows,
                newest(self.newest_gps_time)
            );
        }
        let mut parts: Vec<String> = self
            .differences
            .iter()
            .map(|(t, a, b)| {
                let show =
                    |v: &Option<i64>| v.map_or_else(|| "missing".to_owned(), |n| n.to_string());
                format!("{t}: {} in the snapshot, {} restored", show(a), show(b))
            })
            .collect();
        if self.newest_gps_time != self.restored_newest_gps_time {
            parts.push(format!(
                "newest GPS time {} in the snapshot, {} restored",
                newest(self.newest_gps_time),
                newest(self.restored_newest_gps_time)
            ));
        }
        write!(f, "differs from the snapshot: {}", parts.join("; "))
    }
}

/// Counts what `url`'s database holds and compares it with `manifest`.
pub async fn compare_with(url: &str, manifest: &Manifest) -> Result<Comparison, OpsError> {
    let mut conn =
        PgConnection::connect(url).await.context("connecting to the restored database")?;
    let (counts, newest) = snapshot_counts(&mut conn).await?;
    conn.close().await.ok();
    Ok(Comparison::compare(manifest, &counts, newest))
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verification {
    pub manifest: Manifest,
    pub comparison: Comparison,
    pub seconds: f64,
}

/// Restores `dump` into a scratch database on the server of `pool`/`url`, compares it with the
/// manifest, drops the scratch database, and records the outcome in `fleet.backups`.
#[tracing::instrument(name = "backup_verify", skip_all, fields(dump = %dump.display()))]
pub async fn verify(
    pool: &PgPool,
    url: &str,
    dump: &Path,
    bindir: Option<&Path>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Verification, OpsError> {
    let started = std::time::Instant::now();
    progress("checking the checksum");
    let (manifest, sha256) = read_checked(dump)?;
    let source = PgTarget::from_url(url)?;
    let tools = PgTools::locate(bindir, Some(server_major(pool).await?))?;
    let scratch = format!("fleetd_verify_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("create database {scratch}"))
        .execute(pool)
        .await
        .map_err(|e| {
            OpsError::Input(format!(
                "cannot create the scratch database {scratch} to verify into (fleetd's role needs CREATEDB): {e}"
            ))
        })?;
    let target = source.with_database(&scratch);
    let outcome = async {
        let path = dump.to_string_lossy().into_owned();
        // ownership and grants do not matter for counting; leaving them out keeps verification
        // independent of which roles exist
        let args = [
            "--verbose",
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--no-password",
            "--dbname",
            scratch.as_str(),
            path.as_str(),
        ];
        pgtools::run(&tools.pg_restore, &args, &target, progress).await?;
        progress("comparing row counts");
        compare_with(&target.url_for(&scratch), &manifest).await
    }
    .await;
    let dropped =
        sqlx::query(&format!("drop database if exists {scratch} with (force)")).execute(pool).await;
    if let Err(e) = dropped {
        tracing::warn!(database = %scratch, error = %e, "could not drop the scratch database");
    }
    let file_name = dump.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (ok, detail) = match &outcome {
        Ok(c) => (c.matches(), c.to_string()),
        Err(e) => (false, e.to_string()),
    };
    // the source may predate fleet.backups; the verification stands without the record
    fleet_db::backups::record_verification(pool, &file_name, &sha256, ok, &detail)
        .await
        .context("recording the verification")?;
    let comparison = outcome?;
    Ok(Verification { manifest, comparison, seconds: started.elapsed().as_secs_f64() })
}

/// How to restore.
#[derive(Debug)]
pub struct RestoreRequest<'a> {
    pub dump: &'a Path,
    /// The database to restore into.
    pub url: &'a str,
    /// Replace fleetd's schemas already in the target: they are set aside under other names
    /// during the restore, dropped once it succeeded and put back if it failed.
    pub clean: bool,
    pub bindir: Option<&'a Path>,
}

/// Restores a dump into the target database in one transaction and compares the result with
/// the manifest. Refuses a target that already holds fleetd's schema unless `clean`.
pub async fn restore(
    req: RestoreRequest<'_>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Comparison, OpsError> {
    progress("checking the checksum");
    let (manifest, _) = read_checked(req.dump)?;
    let target = PgTarget::from_url(req.url)?;
    let url = target.url_for(&target.database);
    let mut conn = PgConnection::connect(&url).await.map_err(|e| {
        OpsError::Input(format!("cannot connect to the target database {}: {e}", target.database))
    })?;
    let (has_schema, server_num): (bool, String) = sqlx::query_as(
        "select to_regclass('fleet.devices') is not null, current_setting('server_version_num')",
    )
    .fetch_one(&mut conn)
    .await
    .context("inspecting the target database")?;
    if has_schema && !req.clean {
        return Err(OpsError::Input(format!(
            "database {} already holds fleetd's schema: restore into an empty database, or add --clean to replace what is there",
            target.database
        )));
    }
    // grants in the dump name the analyst role; roles are per server, so make sure it exists
    let role_ok: bool =
        sqlx::query_scalar("select exists (select from pg_roles where rolname = 'fleet_ro')")
            .fetch_one(&mut conn)
            .await
            .context("looking up the analyst role")?;
    let mut no_acl = false;
    if !role_ok {
        if let Err(e) = sqlx::query("create role fleet_ro nologin").execute(&mut conn).await {
            tracing::warn!(error = %e, "cannot create the analyst role fleet_ro; restoring without grants");
            no_acl = true;
        }
    }
    let major = server_num.parse::<u32>().ok().map(|n| n / 10_000);
    let tools = PgTools::locate(req.bindir, major)?;
    // pg_restore --clean cannot drop partitioned tables' inherited constraints, so the old
    // schemas are moved aside instead, in one transaction
    let aside = format!("{:x}", Utc::now().timestamp());
    if has_schema {
        progress("setting the existing schemas aside");
        set_aside(&mut conn, &aside, true).await?;
    }
    let path = req.dump.to_string_lossy().into_owned();
    let mut args =
        vec!["--verbose", "--no-owner", "--exit-on-error", "--single-transaction", "--no-password"];
    if no_acl {
        args.push("--no-acl");
    }
    args.extend(["--dbname", target.database.as_str(), path.as_str()]);
    let restored = pgtools::run(&tools.pg_restore, &args, &target, progress).await;
    if has_schema {
        // success: drop what was set aside; failure (nothing restored): put it back
        set_aside(&mut conn, &aside, restored.is_err()).await?;
    }
    conn.close().await.ok();
    restored?;
    progress("comparing row counts");
    compare_with(&url, &manifest).await
}

/// With `back` false after a set-aside, drops the set-aside schemas; with `back` true before
/// a restore, renames fleetd's schemas aside; with `back` true after a failed restore, renames
/// them back. The three cases share the names.
async fn set_aside(conn: &mut PgConnection, suffix: &str, back: bool) -> Result<(), OpsError> {
    let exists: bool = sqlx::query_scalar("select to_regnamespace($1) is not null")
        .bind(format!("fleet_before_restore_{suffix}"))
        .fetch_one(&mut *conn)
        .await
        .context("looking for set-aside schemas")?;
    let sql = match (exists, back) {
        (false, _) => format!(
            "alter schema fleet rename to fleet_before_restore_{suffix};
             alter schema reporting rename to reporting_before_restore_{suffix};
             alter table public._sqlx_migrations set schema fleet_before_restore_{suffix};"
        ),
        (true, true) => format!(
            "alter table fleet_before_restore_{suffix}._sqlx_migrations set schema public;
             alter schema fleet_before_restore_{suffix} rename to fleet;
             alter schema reporting_before_restore_{suffix} rename to reporting;"
        ),
        (true, false) => format!(
            "drop schema fleet_before_restore_{suffix} cascade;
             drop schema reporting_before_restore_{suffix} cascade;"
        ),
    };
    let mut tx = conn.begin().await.context("starting the schema swap")?;
    sqlx::raw_sql(&sql).execute(&mut *tx).await.context("swapping fleetd's schemas")?;
    tx.commit().await.context("committing the schema swap")?;
    Ok(())
}
