//! `fleetd backup`: a pg_dump in the custom format, with a checksum and a manifest beside it.
//!
//! The dump and the manifest describe the same instant: fleetd opens a repeatable-read
//! transaction, exports its snapshot, counts the rows of every table and reads the newest GPS
//! time in it, and has pg_dump dump that very snapshot (`--snapshot`). Verification later
//! restores the dump and expects exactly those counts.
//!
//! Files, for a backup taken at 2026-11-26 02:30:00 UTC of database `fleetd`:
//!
//! - `fleetd-fleetd-20261126T023000Z.dump` — the dump (`pg_restore` reads it)
//! - `….dump.sha256` — its SHA-256 in `sha256sum` format (`sha256sum -c` checks it)
//! - `….dump.manifest.json` — the snapshot's row counts, newest GPS time, schema version
//!
//! The dump is written under a `.partial` name and renamed once complete, so a file with the
//! final name is always a finished dump.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::pgtools::{self, PgTarget, PgTools};
use crate::{io_err, Context, OpsError};

/// Version of the manifest format.
const MANIFEST_FORMAT: u32 = 1;

/// What a backup held when it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub database: String,
    pub server_version: String,
    pub taken_at: DateTime<Utc>,
    /// Newest applied migration.
    pub schema_version: Option<i64>,
    /// Exact row count of every table (partitioned tables counted through their parent).
    pub tables: BTreeMap<String, i64>,
    /// Newest `fleet.positions.gps_time`; `None` without positions.
    pub newest_gps_time: Option<DateTime<Utc>>,
    pub scheduled: bool,
}

/// A finished backup.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sha256: String,
    pub manifest: Manifest,
    pub seconds: f64,
}

/// What to back up and where.
#[derive(Debug)]
pub struct BackupRequest<'a> {
    pub pool: &'a PgPool,
    /// URL of the same database, for pg_dump.
    pub url: &'a str,
    pub dir: &'a Path,
    pub bindir: Option<&'a Path>,
    pub scheduled: bool,
}

/// Paths of the checksum and manifest of the dump at `dump`.
pub fn sidecars(dump: &Path) -> (PathBuf, PathBuf) {
    let name = dump.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (
        dump.with_file_name(format!("{name}.sha256")),
        dump.with_file_name(format!("{name}.manifest.json")),
    )
}

/// The major version of the server `pool` talks to.
pub async fn server_major(pool: &PgPool) -> Result<u32, OpsError> {
    let num: String = sqlx::query_scalar("select current_setting('server_version_num')")
        .fetch_one(pool)
        .await
        .context("reading the server version")?;
    Ok(num.parse::<u32>().map(|n| n / 10_000).unwrap_or(0))
}

/// Counts every table and reads the newest GPS time, on `conn` (inside the snapshot).
pub async fn snapshot_counts(
    conn: &mut PgConnection,
) -> Result<(BTreeMap<String, i64>, Option<DateTime<Utc>>), OpsError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting', 'public')
           and c.relkind in ('r', 'p') and not c.relispartition
         order by 1",
    )
    .fetch_all(&mut *conn)
    .await
    .context("listing tables")?;
    let mut counts = BTreeMap::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {t}"))
            .fetch_one(&mut *conn)
            .await
            .context("counting rows")?;
        counts.insert(t, n);
    }
    let has_positions: bool =
        sqlx::query_scalar("select to_regclass('fleet.positions') is not null")
            .fetch_one(&mut *conn)
            .await
            .context("checking for positions")?;
    let newest = if has_positions {
        sqlx::query_scalar("select max(gps_time) from fleet.positions")
            .fetch_one(&mut *conn)
            .await
            .context("reading the newest GPS time")?
    } else {
        None
    };
    Ok((counts, newest))
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, OpsError> {
    let mut f = std::fs::File::open(path).map_err(io_err("reading", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err("reading", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Takes a backup; `progress` sees pg_dump's progress lines. Records it in `fleet.backups`.
#[tracing::instrument(
    name = "backup",
    skip_all,
    fields(dir = %req.dir.display(), scheduled = req.scheduled)
)]
pub async fn take(
    req: BackupRequest<'_>,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Backup, OpsError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let target = PgTarget::from_url(req.url)?;
    let tools = PgTools::locate(req.bindir, Some(server_major(req.pool).await?))?;
    crate::private::create_dir(req.dir)
        .map_err(io_err("creating the backup directory", req.dir))?;
    let stamp = started_at.format("%Y%m%dT%H%M%SZ");
    let safe_db: String = target
        .database
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    let path = req.dir.join(format!("fleetd-{safe_db}-{stamp}.dump"));
    if path.exists() {
        return Err(OpsError::Input(format!(
            "{} already exists (two backups in the same second?)",
            path.display()
        )));
    }
    let partial = path.with_extension("dump.partial");

    // the snapshot the counts and the dump share; held until pg_dump is done
    let mut conn = req.pool.acquire().await.context("taking a connection for the backup")?;
    sqlx::query("begin isolation level repeatable read read only")
        .execute(&mut *conn)
        .await
        .context("starting the backup snapshot")?;
    let result = async {
        sqlx::query("set local statement_timeout = 0")
            .execute(&mut *conn)
            .await
            .context("lifting the statement timeout for the backup")?;
        let snapshot: String = sqlx::query_scalar("select pg_export_snapshot()")
            .fetch_one(&mut *conn)
            .await
            .context("exporting the backup snapshot")?;
        let (server_version, schema_version): (String, Option<i64>) = sqlx::query_as(
            "select current_setting('server_version'),
                    (select max(version) from public._sqlx_migrations where success)",
        )
        .fetch_one(&mut *conn)
        .await
        .context("reading the server and schema version")?;
        progress("counting rows of every table");
        let (tables, newest_gps_time) = snapshot_counts(&mut conn).await?;
        // pg_dump creates its file with the umask's mode; one that exists keeps its 0600
        crate::private::create_empty(&partial).map_err(io_err("creating", &partial))?;
        let partial_s = partial.to_string_lossy().into_owned();
        let args = [
            "--format=custom",
            "--verbose",
            "--no-password",
            "--snapshot",
            snapshot.as_str(),
            "--file",
            partial_s.as_str(),
        ];
        pgtools::run(&tools.pg_dump, &args, &target, progress).await?;
        Ok::<_, OpsError>(Manifest {
            format: MANIFEST_FORMAT,
            database: target.database.clone(),
            server_version,
            taken_at: started_at,
            schema_version,
            tables,
            newest_gps_time,
            scheduled: req.scheduled,
        })
    }
    .await;
    let ended = sqlx::query("commit").execute(&mut *conn).await;
    if ended.is_err() {
        conn.close_on_drop();
    }
    drop(conn);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };

    progress("computing the checksum");
    let sha256 = sha256_file(&partial)?;
    let size_bytes = std::fs::metadata(&partial).map_err(io_err("reading", &partial))?.len();
    let (sum_path, manifest_path) = sidecars(&path);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    crate::private::restrict(&partial).map_err(io_err("restricting", &partial))?;
    crate::private::write(&sum_path, format!("{sha256}  {file_name}\n").as_bytes())
        .map_err(io_err("writing", &sum_path))?;
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| OpsError::Input(format!("manifest: {e}")))?;
    crate::private::write(&manifest_path, &json).map_err(io_err("writing", &manifest_path))?;
    match crate::private::tighten_backups(req.dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "earlier backups made readable by their owner only"),
        Err(e) => tracing::warn!(error = %e, "could not restrict earlier backups"),
    }
    std::fs::rename(&partial, &path).map_err(io_err("renaming the finished dump", &partial))?;

    // a database not yet migrated to fleet.backups (a backup before an upgrade) is backed up
    // all the same; only the record is missing
    let recorded =
        fleet_db::backups::table_exists(req.pool).await.context("checking for fleet.backups")?;
    if recorded {
        let path_text = path.to_string_lossy();
        let record = fleet_db::backups::NewBackup {
            file_name: &file_name,
            path: &path_text,
            started_at,
            size_bytes: i64::try_from(size_bytes).unwrap_or(i64::MAX),
            sha256: &sha256,
            scheduled: req.scheduled,
        };
        fleet_db::backups::record(req.pool, &record).await.context("recording the backup")?;
    } else {
        tracing::warn!(
            "fleet.backups does not exist yet (run fleetd migrate); backup not recorded"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(path = %path.display(), bytes = size_bytes, seconds, "backup written");
    Ok(Backup { path, size_bytes, sha256, manifest, seconds })
}

/// Reads the manifest beside `dump` and checks the dump against its checksum file.
pub fn read_checked(dump: &Path) -> Result<(Manifest, String), OpsError> {
    if !dump.is_file() {
        return Err(OpsError::Input(format!("{} is not a file", dump.display())));
    }
    let (sum_path, manifest_path) = sidecars(dump);
    let text = std::fs::read_to_string(&manifest_path).map_err(io_err(
        "reading the manifest (a fleetd backup has one beside the dump)",
        &manifest_path,
    ))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        OpsError::Input(format!("{} is not a fleetd backup manifest: {e}", manifest_path.display()))
    })?;
    let expected = std::fs::read_to_string(&sum_path)
        .map_err(io_err("reading the checksum", &sum_path))?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let actual = sha256_file(dump)?;
    if actual != expected {
        return Err(OpsError::Input(format!(
            "{} does not match its checksum (SHA-256 {actual}, expected {expected}): the file is damaged or incomplete",
            dump.display()
        )));
    }
    Ok((manifest, actual))
}
