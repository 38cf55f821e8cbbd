//! Monthly partitions of `fleet.positions`.
//!
//! Writes never wait for a partition: fixes for a month without one land in the default
//! partition. [`maintain`] keeps partitions created ahead of time and moves anything the default
//! partition caught (a backfill of an old month, say) into its month's own partition.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sqlx::PgPool;

use crate::{Context, DbError};

/// First day of the month `months` after the month of `day` (UTC calendar).
pub fn month_start(day: NaiveDate, months: u32) -> NaiveDate {
    let first = day.with_day(1).unwrap_or(day);
    first.checked_add_months(Months::new(months)).unwrap_or(first)
}

/// Creates the partition for the month containing `day` if missing; returns its name.
pub async fn create_for_month(pool: &PgPool, day: NaiveDate) -> Result<String, DbError> {
    sqlx::query_scalar("select fleet.create_positions_partition($1)")
        .bind(day)
        .fetch_one(pool)
        .await
        .context("creating a positions partition")
}

/// Partitions for this month and `months_ahead` more, plus one for every month the default
/// partition holds rows of (those rows move into it). Returns the partitions that were checked.
pub async fn maintain(
    pool: &PgPool,
    today: NaiveDate,
    months_ahead: u32,
) -> Result<Vec<String>, DbError> {
    let mut months: Vec<NaiveDate> = (0..=months_ahead).map(|i| month_start(today, i)).collect();
    let stray: Vec<NaiveDate> = sqlx::query_scalar(
        "select distinct date_trunc('month', gps_time at time zone 'UTC')::date
         from fleet.positions_default",
    )
    .fetch_all(pool)
    .await
    .context("listing months in the default positions partition")?;
    if !stray.is_empty() {
        tracing::info!(months = stray.len(), "moving positions out of the default partition");
    }
    months.extend(stray);
    months.sort();
    months.dedup();
    let mut names = Vec::with_capacity(months.len());
    for m in months {
        names.push(create_for_month(pool, m).await?);
    }
    Ok(names)
}

/// One partition of `fleet.positions`.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInfo {
    pub name: String,
    /// `None` for the default partition.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub size_bytes: i64,
}

/// Every partition, oldest first, the default partition last.
pub async fn list(pool: &PgPool) -> Result<Vec<PartitionInfo>, DbError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "select c.relname::text, pg_get_expr(c.relpartbound, c.oid), pg_total_relation_size(c.oid)
         from pg_inherits i
         join pg_class c on c.oid = i.inhrelid
         where i.inhparent = 'fleet.positions'::regclass",
    )
    .fetch_all(pool)
    .await
    .context("listing positions partitions")?;
    let mut parts: Vec<PartitionInfo> = rows
        .into_iter()
        .map(|(name, bound, size_bytes)| {
            let (from, to) = parse_bound(&bound);
            PartitionInfo { name, from, to, size_bytes }
        })
        .collect();
    parts.sort_by_key(|p| (p.from.is_none(), p.from));
    Ok(parts)
}

/// Reads `FOR VALUES FROM ('…') TO ('…')`; `DEFAULT` gives `(None, None)`.
fn parse_bound(bound: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let quoted: Vec<&str> = bound.split('\'').skip(1).step_by(2).collect();
    let parse = |s: &&str| {
        DateTime::parse_from_str(&format!("{s}00"), "%Y-%m-%d %H:%M:%S%z")
            .ok()
            .map(|d| d.with_timezone(&Utc))
    };
    (quoted.first().and_then(parse), quoted.get(1).and_then(parse))
}

/// Rows in the default partition of `fleet.positions` (fixes of a month without its own
/// partition yet; they are moved out within the hour).
pub async fn default_rows(pool: &PgPool) -> Result<i64, DbError> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from fleet.positions_default"#)
        .fetch_one(pool)
        .await
        .context("counting the default partition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_start_rolls_over_the_year() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        assert_eq!(month_start(d, 0), NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"));
        assert_eq!(month_start(d, 2), NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"));
    }

    #[test]
    fn partition_bounds_are_read_back_as_utc_instants() {
        let (from, to) =
            parse_bound("FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')");
        assert_eq!(from.map(|d| d.to_rfc3339()), Some("2026-11-01T00:00:00+00:00".to_owned()));
        assert_eq!(to.map(|d| d.to_rfc3339()), Some("2026-12-01T00:00:00+00:00".to_owned()));
        assert_eq!(parse_bound("DEFAULT"), (None, None));
    }
}
