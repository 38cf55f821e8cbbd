//! Migrations, positions partitions, retention and sizes.

use chrono::{Duration as TimeDelta, NaiveDate};
use fleet_db::status::human_bytes;
use sqlx::PgPool;

use crate::audit::{AuditContext, Check, Status};
use crate::{Context, OpsError};

/// Retention runs every few hours; data this long past its period means it is not running.
const RETENTION_GRACE_DAYS: i64 = 1;

pub(super) async fn migrations(pool: &PgPool) -> Result<Check, OpsError> {
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

pub(super) async fn partitions(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
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
    let stray = fleet_db::partitions::default_rows(pool).await?;
    if stray > 0 {
        warns.push(format!(
            "{stray} rows in the default partition (fleetd moves them within the hour)"
        ));
    }
    let ahead = months.iter().filter(|m| **m > today).count();
    let summary = format!("{} monthly partitions, {ahead} ahead of this month", months.len());
    Ok(Check::from_findings("partitions", summary, fails, warns))
}

pub(super) async fn retention(pool: &PgPool, ctx: &AuditContext) -> Result<Check, OpsError> {
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
    // in the order the periods are listed: trips, alarms, KPIs
    let expired = [
        ("fleet.trips", r.trips_days, cutoff(r.trips_days)),
        ("fleet.alarms", r.alarms_days, cutoff(r.alarms_days)),
        ("fleet.kpi_daily", r.kpi_days, cutoff(r.kpi_days)),
    ];
    for (table, days, cut) in expired {
        let Some(cut) = cut else { continue };
        let old = match table {
            "fleet.trips" => fleet_db::trips::any_before(pool, cut).await,
            "fleet.kpi_daily" => fleet_db::kpis::any_before(pool, cut).await,
            _ => fleet_db::alarms::any_before(pool, cut).await,
        }
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

pub(super) async fn sizes(pool: &PgPool) -> Result<Check, OpsError> {
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
        .map(|(t, d, i)| format!("{t}: {} data, {} indexes", human_bytes(*d), human_bytes(*i)))
        .collect();
    Ok(Check::new(
        "sizes",
        Status::Ok,
        format!(
            "database {}: tables {}, indexes {}",
            human_bytes(db),
            human_bytes(tables),
            human_bytes(indexes)
        ),
    )
    .with(details))
}
