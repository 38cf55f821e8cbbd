//! The audit's checks. Each reads catalogs or fleetd's tables and never changes anything.

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, Utc};
use md5::{Digest, Md5};
use sqlx::PgPool;

use super::{AuditContext, Check, Status};
use crate::{Context, OpsError};

/// Every check, in report order.
pub const ALL: [&str; 11] = [
    "migrations",
    "connections",
    "partitions",
    "retention",
    "read_only_roles",
    "passwords",
    "superuser",
    "sessions",
    "sizes",
    "ingest",
    "backups",
];

/// Sessions running one statement longer than this are reported.
const LONG_RUNNING_S: i64 = 300;
/// Retention runs every few hours; data this long past its period means it is not running.
const RETENTION_GRACE_DAYS: i64 = 1;
/// Passwords tried against every login role: the defaults of images, guides and this project.
const GUESSABLE: [&str; 12] = [
    "",
    "postgres",
    "password",
    "fleetd",
    "fleet",
    "fleet_ro",
    "changeme",
    "CHANGE-ME",
    "admin",
    "secret",
    "123456",
    "demo-password",
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
        "sessions" => sessions(pool).await,
        "sizes" => sizes(pool).await,
        "ingest" => ingest(pool).await,
        "backups" => backups(pool, ctx).await,
        other => Err(OpsError::Input(format!("unknown check {other}"))),
    }
}

async fn migrations(pool: &PgPool) -> Result<Check, OpsError> {
    let m = fleet_db::migrate::status(pool).await?;
    if m.is_current() {
        return Ok(Check::new(
            "migrations",
            Status::Ok,
            format!("{} applied, current", m.applied.len()),
        ));
    }
    Ok(Check::new(
        "migrations",
        Status::Fail,
        format!(
            "not current: {} pending, {} changed or failed, {} unknown to this fleetd (run fleetd migrate)",
            m.pending.len(),
            m.mismatched.len(),
            m.unknown.len()
        ),
    ))
}

async fn connections(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
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

async fn partitions(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    let parts = fleet_db::partitions::list(pool).await?;
    let months: Vec<NaiveDate> =
        parts.iter().filter_map(|p| p.from).map(|f| f.date_naive()).collect();
    let today = ctx.now.date_naive();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for i in 0..=ctx.partition_months_ahead.max(1) {
        let m = fleet_db::partitions::month_start(today, i);
        if !months.contains(&m) {
            let line = format!("no partition for {}", m.format("%Y-%m"));
            // this month's and next month's are needed now; the rest are margin
            if i <= 1 {
                fails.push(line)
            } else {
                warns.push(line)
            }
        }
    }
    // a hole between the oldest and the newest partition
    if let (Some(first), Some(last)) = (months.iter().min(), months.iter().max()) {
        let mut m = *first;
        while m < *last {
            if !months.contains(&m) {
                fails
                    .push(format!("partition for {} is missing between others", m.format("%Y-%m")));
            }
            m = fleet_db::partitions::month_start(m, 1);
        }
    }
    let stray: i64 = sqlx::query_scalar("select count(*) from fleet.positions_default")
        .fetch_one(pool)
        .await
        .context("counting the default partition")?;
    if stray > 0 {
        warns.push(format!(
            "{stray} rows in the default partition (fleetd moves them within the hour)"
        ));
    }
    let ahead = months.iter().filter(|m| **m > today).count();
    let summary = format!("{} monthly partitions, {ahead} ahead of this month", months.len());
    let status = if !fails.is_empty() {
        Status::Fail
    } else if !warns.is_empty() {
        Status::Warn
    } else {
        Status::Ok
    };
    fails.extend(warns);
    Ok(Check::new("partitions", status, summary).with(fails))
}

async fn retention(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    let r = &ctx.retention;
    let grace = TimeDelta::days(RETENTION_GRACE_DAYS);
    let cutoff = |days: Option<u32>| days.map(|d| ctx.now - TimeDelta::days(i64::from(d)) - grace);
    let mut late = Vec::new();
    if let Some(cut) = cutoff(r.positions_days) {
        for p in fleet_db::retention::expired_partitions(pool, cut).await? {
            late.push(format!(
                "positions partition {p} is past the {}-day period",
                r.positions_days.unwrap_or(0)
            ));
        }
    }
    let tables: [(&str, &str, Option<u32>); 3] = [
        ("fleet.trips", "start_time", r.trips_days),
        ("fleet.alarms", "alarm_time", r.alarms_days),
        ("fleet.kpi_daily", "local_date", r.kpi_days),
    ];
    for (table, column, days) in tables {
        let Some(cut) = cutoff(days) else { continue };
        let old: bool = sqlx::query_scalar(&format!(
            "select exists (select from {table} where {column} < $1::timestamptz)"
        ))
        .bind(cut)
        .fetch_one(pool)
        .await
        .context("looking for expired rows")?;
        if old {
            late.push(format!("{table} has rows past its {}-day period", days.unwrap_or(0)));
        }
    }
    let periods = format!(
        "positions {}, trips {}, alarms {}, KPIs {}",
        show_days(r.positions_days),
        show_days(r.trips_days),
        show_days(r.alarms_days),
        show_days(r.kpi_days)
    );
    Ok(if late.is_empty() {
        Check::new("retention", Status::Ok, format!("applied ({periods})"))
    } else {
        Check::new("retention", Status::Fail, format!("not applied ({periods})")).with(late)
    })
}

fn show_days(d: Option<u32>) -> String {
    d.map_or_else(|| "kept forever".to_owned(), |d| format!("{d} d"))
}

async fn read_only_roles(pool: &PgPool) -> Result<Check, OpsError> {
    // the analyst role, and every login role that is neither fleetd's own nor a superuser
    // (superusers are checked by `superuser` and `passwords`)
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "with roles as (
             select oid, rolname from pg_roles
             where rolname = 'fleet_ro'
                or (rolcanlogin and not rolsuper and rolname <> current_user)
         )
         select r.rolname::text, 'table ' || format('%I.%I', n.nspname, c.relname),
                concat_ws(', ',
                    case when has_table_privilege(r.oid, c.oid, 'INSERT') then 'INSERT' end,
                    case when has_table_privilege(r.oid, c.oid, 'UPDATE') then 'UPDATE' end,
                    case when has_table_privilege(r.oid, c.oid, 'DELETE') then 'DELETE' end,
                    case when has_table_privilege(r.oid, c.oid, 'TRUNCATE') then 'TRUNCATE' end)
         from roles r
         cross join pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting', 'public') and c.relkind in ('r', 'p', 'v', 'm')
           and has_table_privilege(r.oid, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE')
         union all
         select r.rolname::text, 'schema ' || quote_ident(s), 'CREATE'
         from roles r cross join unnest(array['fleet', 'reporting', 'public']) s
         where has_schema_privilege(r.oid, s, 'CREATE')
         order by 1, 2",
    )
    .fetch_all(pool)
    .await
    .context("reading privileges")?;
    if rows.is_empty() {
        return Ok(Check::new(
            "read_only_roles",
            Status::Ok,
            "fleet_ro and the other login roles have no write privilege",
        ));
    }
    let roles: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let details = rows.iter().map(|(r, obj, p)| format!("{r} may {p} on {obj}")).collect();
    Ok(Check::new(
        "read_only_roles",
        Status::Fail,
        format!("write privileges held by {}", roles.into_iter().collect::<Vec<_>>().join(", ")),
    )
    .with(details))
}

fn md5_verifier(password: &str, role: &str) -> String {
    let digest = Md5::digest(format!("{password}{role}").as_bytes());
    format!("md5{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn passwords(pool: &PgPool) -> Result<Check, OpsError> {
    let rows: Result<Vec<(String, Option<String>)>, sqlx::Error> = sqlx::query_as(
        "select rolname::text, rolpassword from pg_authid where rolcanlogin order by 1",
    )
    .fetch_all(pool)
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(_) => {
            return Ok(Check::new(
                "passwords",
                Status::Warn,
                "not checked: reading password verifiers (pg_authid) needs a superuser; run the audit as one to check",
            ))
        }
    };
    let mut guessable = Vec::new();
    let mut without = Vec::new();
    for (role, verifier) in &rows {
        let Some(v) = verifier else {
            without.push(role.clone());
            continue;
        };
        let own = role.as_str();
        let hit = GUESSABLE.iter().copied().chain(std::iter::once(own)).find(|pw| {
            if v.starts_with("md5") {
                *v == md5_verifier(pw, role)
            } else {
                fleet_db::roles::scram_matches(v, pw)
            }
        });
        if let Some(pw) = hit {
            let shown = if pw.is_empty() {
                "an empty password".to_owned()
            } else {
                format!("the default password {pw:?}")
            };
            guessable.push(format!("login role {role} has {shown}"));
        }
    }
    if !guessable.is_empty() {
        return Ok(Check::new(
            "passwords",
            Status::Fail,
            format!("{} login roles have a default or empty password", guessable.len()),
        )
        .with(guessable));
    }
    if !without.is_empty() {
        return Ok(Check::new(
            "passwords",
            Status::Warn,
            format!(
                "{} of {} login roles have no password: make sure pg_hba.conf admits them by peer or certificate, never trust",
                without.len(),
                rows.len()
            ),
        )
        .with(without.iter().map(|r| format!("{r}: no password")).collect()));
    }
    Ok(Check::new(
        "passwords",
        Status::Ok,
        format!("{} login roles, none with a default or empty password", rows.len()),
    ))
}

async fn superuser(pool: &PgPool) -> Result<Check, OpsError> {
    let (me, sup): (String, bool) = sqlx::query_as(
        "select current_user::text, rolsuper from pg_roles where rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("reading fleetd's role")?;
    Ok(if sup {
        Check::new(
            "superuser",
            Status::Warn,
            format!("fleetd connects as {me}, a superuser: give it a role that owns its database and nothing more (least privilege)"),
        )
    } else {
        Check::new("superuser", Status::Ok, format!("fleetd connects as {me}, not a superuser"))
    })
}

async fn sessions(pool: &PgPool) -> Result<Check, OpsError> {
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

async fn sizes(pool: &PgPool) -> Result<Check, OpsError> {
    let (db, tables, indexes): (i64, i64, i64) = sqlx::query_as(
        "select pg_database_size(current_database()),
                coalesce(sum(pg_table_size(c.oid)) filter (where c.relkind in ('r', 'm')), 0)::bigint,
                coalesce(sum(pg_relation_size(c.oid)) filter (where c.relkind = 'i'), 0)::bigint
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting')",
    )
    .fetch_one(pool)
    .await
    .context("reading sizes")?;
    let top: Vec<(String, i64, i64)> = sqlx::query_as(
        "select format('%I.%I', n.nspname, c.relname), pg_table_size(c.oid), pg_indexes_size(c.oid)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting') and c.relkind in ('r', 'm')
         order by pg_total_relation_size(c.oid) desc limit 8",
    )
    .fetch_all(pool)
    .await
    .context("reading table sizes")?;
    let details = top
        .iter()
        .map(|(t, d, i)| format!("{t}: {} data, {} indexes", human(*d), human(*i)))
        .collect();
    Ok(Check::new(
        "sizes",
        Status::Ok,
        format!("database {}: tables {}, indexes {}", human(db), human(tables), human(indexes)),
    )
    .with(details))
}

fn human(b: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A row of `reporting.v_ingest_health_jobs`: job, run kind, status, lag, last error.
type JobRow = (String, String, String, Option<i64>, Option<String>);

async fn ingest(pool: &PgPool) -> Result<Check, OpsError> {
    // poll jobs run on a schedule, so stale means broken; the writer's push channels only log
    // minutes with traffic, and a quiet channel (few alarms today) is not a failure
    let jobs: Vec<JobRow> = sqlx::query_as(
        "select job, run_kind, status, lag_s, last_error
         from reporting.v_ingest_health_jobs where job <> 'backfill'
         order by job",
    )
    .fetch_all(pool)
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
    for (job, kind, status, lag, error) in &jobs {
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
    let offline: i64 = sqlx::query_scalar(
        "select count(*) from reporting.v_ingest_health_devices where status = 'offline'",
    )
    .fetch_one(pool)
    .await
    .context("counting offline devices")?;
    let summary = format!(
        "{} jobs, {} failing or stale polls; {offline} devices offline",
        jobs.len(),
        fails.len()
    );
    let status = if !fails.is_empty() {
        Status::Fail
    } else if !warns.is_empty() {
        Status::Warn
    } else {
        Status::Ok
    };
    fails.extend(warns);
    Ok(Check::new("ingest", status, summary).with(fails))
}

/// A row of `fleet.backups`: file, finished, verified at, verified ok, verification detail.
type BackupRow = (String, DateTime<Utc>, Option<DateTime<Utc>>, Option<bool>, Option<String>);

async fn backups(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
    let newest: Option<BackupRow> = sqlx::query_as(
        "select file_name, finished_at, verified_at, verify_ok, verify_detail
             from fleet.backups order by finished_at desc limit 1",
    )
    .fetch_optional(pool)
    .await
    .context("reading fleet.backups")?;
    let Some((file, at, verified_at, ok, detail)) = newest else {
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
    let last_verify: Option<(String, DateTime<Utc>, bool, Option<String>)> = sqlx::query_as(
        "select file_name, verified_at, verify_ok, verify_detail from fleet.backups
         where verified_at is not null order by verified_at desc limit 1",
    )
    .fetch_optional(pool)
    .await
    .context("reading backup verifications")?;
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
