//! `fleetd backup`, `fleetd backup verify`, `fleetd restore` and `fleetd audit`.

use anyhow::Context;
use fleet_config::Config;
use fleet_ops::audit::{self, AuditContext, AuditFiles};
use fleet_ops::backup::{self, BackupRequest};
use fleet_ops::pgtools::PgTarget;
use fleet_ops::verify::{self, RestoreRequest};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AuditArgs, BackupArgs, BackupCommand, RestoreArgs, VerifyArgs};
use crate::database::Database;

/// A spinner on stderr showing the client tool's current step; invisible when stderr is not a
/// terminal (scripts and logs get the summary lines only).
fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn step(bar: &ProgressBar) -> impl FnMut(&str) + Send + '_ {
    move |line: &str| {
        let line = line.trim_start_matches("pg_dump: ").trim_start_matches("pg_restore: ");
        bar.set_message(line.to_owned());
    }
}

pub async fn backup(cfg: Config, args: BackupArgs) -> anyhow::Result<()> {
    if let Some(BackupCommand::Verify(v)) = args.command {
        return verify_backup(cfg, v).await;
    }
    let dir = args.dir.clone().unwrap_or_else(|| cfg.backup.dir_in(&cfg.data_dir));
    let db = Database::open(&cfg).await?;
    let bar = spinner("backup");
    let result = backup::take(
        BackupRequest {
            pool: &db.pool,
            url: db.url.expose(),
            dir: &dir,
            bindir: cfg.pg_bindir.as_deref(),
            scheduled: false,
        },
        &mut step(&bar),
    )
    .await;
    bar.finish_and_clear();
    let closed = db.close().await;
    let b = result.context("backup failed")?;
    eprintln!(
        "backup of {} written: {} bytes, {} tables, {} rows, {:.1} s",
        b.manifest.database,
        b.size_bytes,
        b.manifest.tables.len(),
        b.manifest.tables.values().sum::<i64>(),
        b.seconds
    );
    println!("{}", b.path.display());
    closed
}

async fn verify_backup(cfg: Config, args: VerifyArgs) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let bar = spinner("verify");
    let result = verify::verify(
        &db.pool,
        db.url.expose(),
        &args.file,
        cfg.pg_bindir.as_deref(),
        &mut step(&bar),
    )
    .await;
    bar.finish_and_clear();
    let closed = db.close().await;
    let v = result.context("verification failed")?;
    if !v.comparison.matches() {
        anyhow::bail!("{} {}", args.file.display(), v.comparison);
    }
    println!("{} verified in {:.1} s: {}", args.file.display(), v.seconds, v.comparison);
    closed
}

pub async fn restore(cfg: Config, args: RestoreArgs) -> anyhow::Result<()> {
    if !args.yes {
        anyhow::bail!(
            "restoring writes {} into the target database; run again with --yes to confirm",
            args.file.display()
        );
    }
    if let (Some(url), true) = (&cfg.database_url, args.create) {
        let target = PgTarget::from_url(url.expose())?;
        fleet_db::ensure_database(&target.url_for("postgres"), &target.database)
            .await
            .context("creating the target database")?;
    }
    // opening the database starts the embedded cluster when no URL is configured
    let db = Database::open(&cfg).await?;
    db.pool.close().await;
    let bar = spinner("restore");
    let result = verify::restore(
        RestoreRequest {
            dump: &args.file,
            url: db.url.expose(),
            clean: args.clean,
            bindir: cfg.pg_bindir.as_deref(),
        },
        &mut step(&bar),
    )
    .await;
    bar.finish_and_clear();
    let closed = db.close().await;
    let c = result.context("restore failed")?;
    if !c.matches() {
        anyhow::bail!("restored, but the database {c}");
    }
    println!("restored {}: {c}", args.file.display());
    closed
}

pub async fn audit(cfg: Config, args: AuditArgs) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let ctx = AuditContext {
        // both pools, and the live stream's listener
        fleetd_budget: cfg.db.max_connections
            + cfg.api.db_connections
            + fleet_http::stream::LISTENER_CONNECTIONS,
        partition_months_ahead: cfg.partition_months_ahead,
        retention: cfg.retention,
        backup_max_age: cfg.backup.max_age,
        now: chrono::Utc::now(),
        files: AuditFiles {
            backup_dir: Some(cfg.backup.dir_in(&cfg.data_dir)),
            embedded_log: db.embedded.as_ref().map(|pg| pg.root().join("postgres.log")),
            env_file: Some(std::path::PathBuf::from(".env")),
        },
    };
    let result = audit::run(&db.pool, &ctx).await;
    let closed = db.close().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    closed?;
    if report.failures() > 0 {
        anyhow::bail!(
            "audit failed: {} of {} checks failed",
            report.failures(),
            report.checks.len()
        );
    }
    Ok(())
}
