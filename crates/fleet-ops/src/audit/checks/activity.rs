//! Connections, sessions, ingest freshness and backups.

use sqlx::PgPool;

use crate::audit::{AuditContext, Check, Status};
use crate::{Context, OpsError};

/// Sessions running one statement longer than this are reported.
const LONG_RUNNING_S: i64 = 300;

pub(super) async fn connections(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    let (used, max, reserved, fleetd): (i64, i32, i32, i64) = sqlx::query_as(
        "select count(*) filter (where backend_type = 'client backend'),
                current_setting('max_connections')::int,
                current_setting('superuser_reserved_connections')::int,
                count(*) filter (where backend_type = 'client backend'
                                   and application_name = current_setting('application_name'))
         from pg_stat_activity",
    )
    .fetch_one(pool)
    .await
    .context("reading connections")?;
    let usable = i64::from(max - reserved).max(1);
    let free = usable - used;
    let budget = i64::from(ctx.fleetd_budget);
    let summary = format!(
        "{used} of {usable} usable connections in use (max_connections {max}, {reserved} reserved), {fleetd} by fleetd; budget {budget} per fleetd process"
    );
    let status = if used * 10 >= usable * 9 {
        Status::Fail
    } else if used * 4 >= usable * 3 || budget > free + fleetd {
        Status::Warn
    } else {
        Status::Ok
    };
    let mut details = Vec::new();
    if budget > free + fleetd {
        details.push(format!(
            "another fleetd process at its full budget of {budget} would not fit ({free} free)"
        ));
    }
    Ok(Check::new("connections", status, summary).with(details))
}

pub(super) async fn sessions(pool: &PgPool) -> Result<Check, OpsError> {
    let rows: Vec<(i32, String, String, String, i64)> = sqlx::query_as(
        "select pid, coalesce(usename::text, ''), coalesce(application_name, ''), state,
                extract(epoch from now() - coalesce(case when state = 'active' then query_start else state_change end, now()))::bigint
         from pg_stat_activity
         where backend_type = 'client backend' and pid <> pg_backend_pid()
           and ((state = 'active' and now() - query_start > make_interval(secs => $1))
             or (state like 'idle in transaction%' and now() - state_change > make_interval(secs => $1)))
         order by 5 desc",
    )
    .bind(LONG_RUNNING_S as f64)
    .fetch_all(pool)
    .await
    .context("reading sessions")?;
    if rows.is_empty() {
        return Ok(Check::new(
            "sessions",
            Status::Ok,
            format!("no statement running and no transaction idle longer than {LONG_RUNNING_S} s"),
        ));
    }
    let details = rows
        .iter()
        .map(|(pid, user, app, state, s)| format!("pid {pid} ({user}, {app:?}) {state} for {s} s"))
        .collect();
    Ok(Check::new(
        "sessions",
        Status::Warn,
        format!(
            "{} sessions long-running or idle in a transaction (they hold locks and stop vacuum)",
            rows.len()
        ),
    )
    .with(details))
}

pub(super) async fn ingest(pool: &PgPool) -> Result<Check, OpsError> {
    // poll jobs run on a schedule, so stale means broken; the writer's push channels only log
    // minutes with traffic, and a quiet channel (few alarms today) is not a failure
    let jobs = fleet_db::ingest_health::scheduled_jobs(pool)
        .await
        .context("reading reporting.v_ingest_health_jobs")?;
    if jobs.is_empty() {
        return Ok(Check::new(
            "ingest",
            Status::Warn,
            "no ingest job has run yet (fresh install?)",
        ));
    }
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for j in &jobs {
        let (job, kind, status, lag, error) =
            (&j.job, &j.run_kind, &j.status, j.lag_s, &j.last_error);
        let lag =
            lag.map_or_else(|| "never succeeded".to_owned(), |s| format!("last success {s} s ago"));
        let line = format!(
            "{job}: {status}, {lag}{}",
            error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
        match (kind.as_str(), status.as_str()) {
            ("poll", "failing" | "stale") | (_, "failing") => fails.push(line),
            (_, "stale" | "never") => warns.push(line),
            _ => {}
        }
    }
    let offline =
        fleet_db::ingest_health::offline_devices(pool).await.context("counting offline devices")?;
    let summary = format!(
        "{} jobs, {} failing or stale polls; {offline} devices offline",
        jobs.len(),
        fails.len()
    );
    Ok(Check::from_findings("ingest", summary, fails, warns))
}

pub(super) async fn backups(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    let newest = fleet_db::backups::newest(pool).await.context("reading fleet.backups")?;
    let Some(fleet_db::backups::BackupRecord {
        file_name: file,
        finished_at: at,
        verified_at,
        verify_ok: ok,
        verify_detail: detail,
    }) = newest
    else {
        return Ok(Check::new(
            "backups",
            Status::Warn,
            "no backup yet: run fleetd backup, or set FLEETD_BACKUP_SCHEDULE",
        ));
    };
    let age_h = (ctx.now - at).num_minutes() as f64 / 60.0;
    let max_h = ctx.backup_max_age.as_secs() as f64 / 3600.0;
    let summary = format!("newest {file}, {age_h:.1} h old");
    if age_h > max_h {
        return Ok(Check::new(
            "backups",
            Status::Fail,
            format!("{summary}: older than FLEETD_BACKUP_MAX_AGE_H ({max_h:.0} h)"),
        ));
    }
    // the newest verification of any backup tells whether restores work
    let last_verify = fleet_db::backups::newest_verification(pool)
        .await
        .context("reading backup verifications")?
        .map(|r| {
            let at = r.verified_at.unwrap_or(r.finished_at);
            (r.file_name, at, r.verify_ok.unwrap_or(false), r.verify_detail)
        });
    match (verified_at, ok, last_verify) {
        (Some(v), Some(true), _) => Ok(Check::new(
            "backups",
            Status::Ok,
            format!("{summary}; verified {}", v.format("%Y-%m-%d %H:%M UTC")),
        )),
        (Some(_), _, _) => Ok(Check::new(
            "backups",
            Status::Fail,
            format!("{summary}; its verification FAILED: {}", detail.unwrap_or_default()),
        )),
        (None, _, Some((vf, v, false, d))) => Ok(Check::new(
            "backups",
            Status::Fail,
            format!(
                "{summary}, not verified; the last verification ({vf}, {}) FAILED: {}",
                v.format("%Y-%m-%d %H:%M UTC"),
                d.unwrap_or_default()
            ),
        )),
        (None, _, Some((vf, v, true, _))) => Ok(Check::new(
            "backups",
            Status::Warn,
            format!(
                "{summary}, not verified yet; {vf} verified {}",
                v.format("%Y-%m-%d %H:%M UTC")
            ),
        )),
        (None, _, None) => Ok(Check::new(
            "backups",
            Status::Warn,
            format!("{summary}; no backup has been verified yet: run fleetd backup verify FILE"),
        )),
    }
}
