//! Daily KPIs: the queue of device-days to recompute (`fleet.kpi_backlog`), their refresh
//! (`fleet.refresh_kpi_daily`), and the reads behind the KPI routes — rows of the reporting
//! layer of migration 0015 (docs/KPI_FRAMEWORK.md defines every figure), returned with the
//! columns of the views they come from so the API and SQL reports agree.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// A device whose local days in [from, to] need their KPIs recomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiClaim {
    pub device_id: i32,
    /// `None`: from the first day.
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    /// The queue row's version, cleared only if unchanged.
    pub version: i64,
}

/// Up to `limit` queued devices, in id order, after `after`.
pub async fn queued(pool: &PgPool, after: i32, limit: i64) -> Result<Vec<KpiClaim>, sqlx::Error> {
    // -infinity does not fit chrono: it reads as None
    sqlx::query_as!(
        KpiClaim,
        r#"select device_id, case when from_time <> '-infinity' then from_time end as "from",
                  to_time as "to", version
           from fleet.kpi_backlog where device_id > $1 order by device_id limit $2"#,
        after,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Queues the local days overlapping each device's [from, to] (`from` None: from the first
/// day) for a KPI refresh, merging with what is queued already. `fixes_from` is the earliest GPS
/// time of the fixes new since the last pass (`None`: none); it must be at or before every fix
/// stored since, so that a refresh can tell a day's new fixes from ones it has counted.
pub async fn queue(
    tx: &mut PgConnection,
    ids: &[i32],
    from: &[Option<DateTime<Utc>>],
    to: &[DateTime<Utc>],
    fixes_from: &[Option<DateTime<Utc>>],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    // a refresh from the first day recounts the fixes too (-infinity); least() skips nulls
    sqlx::query!(
        "insert into fleet.kpi_backlog (device_id, from_time, to_time, fixes_from)
         select d, coalesce(f, '-infinity'), t, case when f is null then '-infinity' else n end
         from unnest($1::int[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
             as u(d, f, t, n)
         order by d
         on conflict (device_id) do update set
             from_time = least(fleet.kpi_backlog.from_time, excluded.from_time),
             to_time = greatest(fleet.kpi_backlog.to_time, excluded.to_time),
             fixes_from = least(fleet.kpi_backlog.fixes_from, excluded.fixes_from),
             version = fleet.kpi_backlog.version + 1",
        ids,
        from as &[Option<DateTime<Utc>>],
        to,
        fixes_from as &[Option<DateTime<Utc>>]
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Recomputes the claimed device-days and clears their queue rows at the versions read
/// (locked in device order, like every writer of the queue); returns the rows written. Each
/// day's fix aggregates take only the fixes after its watermark unless the queue row's
/// `fixes_from` (read now: a mark made since the claim only moves it earlier) is at or before it.
pub async fn refresh(tx: &mut PgConnection, claims: &[KpiClaim]) -> Result<i32, sqlx::Error> {
    let ids: Vec<i32> = claims.iter().map(|c| c.device_id).collect();
    let from: Vec<Option<DateTime<Utc>>> = claims.iter().map(|c| c.from).collect();
    let to: Vec<DateTime<Utc>> = claims.iter().map(|c| c.to).collect();
    let versions: Vec<i64> = claims.iter().map(|c| c.version).collect();
    let rows = sqlx::query_scalar!(
        r#"select fleet.refresh_kpi_daily($1::int[],
               array(select coalesce(f, '-infinity') from unnest($2::timestamptz[])
                     with ordinality as u(f, n) order by n),
               $3::timestamptz[],
               array(select case when b.device_id is null then '-infinity' else b.fixes_from end
                     from unnest($1::int[]) with ordinality as u(d, n)
                     left join fleet.kpi_backlog b on b.device_id = u.d
                     order by u.n)) as "rows!""#,
        &ids,
        &from as &[Option<DateTime<Utc>>],
        &to
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "select device_id from fleet.kpi_backlog
         where device_id = any($1) order by device_id for update",
        &ids
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from fleet.kpi_backlog b
         using unnest($1::int[], $2::int8[]) as v(device_id, version)
         where b.device_id = v.device_id and b.version = v.version",
        &ids,
        &versions
    )
    .execute(&mut *tx)
    .await?;
    Ok(rows)
}

/// Which daily rows to read, by (local date, device id).
#[derive(Debug, Clone, Default)]
pub struct DailyFilter {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub device_id: Option<i32>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    /// Rows after this (local date, device id).
    pub after: Option<(NaiveDate, i32)>,
    pub limit: i64,
}

/// Rows of `reporting.v_kpi_daily` as JSON objects, with their (local date, device id).
pub async fn daily(
    pool: &PgPool,
    f: &DailyFilter,
) -> Result<Vec<(NaiveDate, i32, Value)>, sqlx::Error> {
    let (after_date, after_id) = f.after.unzip();
    let rows = sqlx::query!(
        r#"select v.local_date as "local_date!", v.device_id as "device_id!",
                  to_jsonb(v) as "row!"
           from reporting.v_kpi_daily v
           where v.local_date between $1 and $2
             and ($3::int is null or v.device_id = $3)
             and ($4::text is null or lower(v.cost_centre) = lower($4))
             and ($5::text is null or lower(v.city) = lower($5))
             and ($6::date is null or (v.local_date, v.device_id) > ($6, $7))
           order by v.local_date, v.device_id
           limit $8"#,
        f.from,
        f.to,
        f.device_id,
        f.cost_centre.as_deref().map(str::trim),
        f.city.as_deref().map(str::trim),
        after_date,
        after_id,
        f.limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.local_date, r.device_id, r.row)).collect())
}

/// Rows of `reporting.kpi_rollup(from, to, group_by, cost_centre, city)` as JSON objects.
pub async fn rollup(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    group_by: &str,
    cost_centre: Option<&str>,
    city: Option<&str>,
) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select to_jsonb(r) as "row!" from reporting.kpi_rollup($1, $2, $3, $4, $5) r
           order by r.group_key nulls last"#,
        from,
        to,
        group_by,
        cost_centre,
        city
    )
    .fetch_all(pool)
    .await
}

/// Rows of `reporting.v_distance_reconciliation` for the days `from..=to` as JSON objects:
/// flagged vehicle-days first, then the newest day, then device id; at most `limit`.
pub async fn reconciliation(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    cost_centre: Option<&str>,
    city: Option<&str>,
    flagged: Option<bool>,
    limit: i64,
) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select to_jsonb(r) as "row!" from reporting.v_distance_reconciliation r
           where r.local_date between $1 and $2
             and ($3::text is null or lower(r.cost_centre) = lower(btrim($3)))
             and ($4::text is null or lower(r.city) = lower(btrim($4)))
             and ($5::boolean is null or r.flagged = $5)
           order by r.flagged desc, r.local_date desc, r.device_id
           limit $6"#,
        from,
        to,
        cost_centre,
        city,
        flagged,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Rows of `reporting.v_vehicles_not_moved_today` as JSON objects, by device id.
pub async fn not_moved_today(pool: &PgPool) -> Result<Vec<Value>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select to_jsonb(v) as "row!" from reporting.v_vehicles_not_moved_today v
           order by v.device_id"#
    )
    .fetch_all(pool)
    .await
}

/// Fleet utilisation of one day.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UtilisationDay {
    pub local_date: NaiveDate,
    /// Σ shift_driving_s / Σ shift_s over the fleet; null on days without a shift.
    pub utilisation: Option<f64>,
    pub shift_s: i64,
    pub shift_driving_s: i64,
    pub vehicles: i32,
    pub vehicles_moved: i32,
    pub distance_m: f64,
    pub driving_s: i64,
}

/// `reporting.kpi_rollup` of each day of [from, to] that lies between the first and last day
/// with KPIs, over the vehicles matching the filters, by date.
pub async fn utilisation_trend(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    cost_centre: Option<&str>,
    city: Option<&str>,
) -> Result<Vec<UtilisationDay>, sqlx::Error> {
    sqlx::query_as!(
        UtilisationDay,
        r#"select g.d::date as "local_date!", r.utilisation, r.shift_s as "shift_s!",
                  r.shift_driving_s as "shift_driving_s!", r.vehicles as "vehicles!",
                  r.vehicles_moved as "vehicles_moved!", r.distance_m as "distance_m!",
                  r.driving_s as "driving_s!"
           from (select min(local_date) as lo, max(local_date) as hi from fleet.kpi_daily) b
           cross join generate_series(greatest($1::date, b.lo), least($2::date, b.hi), '1 day') g (d)
           cross join lateral reporting.kpi_rollup(g.d::date, g.d::date, 'fleet', $3, $4) r
           order by 1"#,
        from,
        to,
        cost_centre,
        city
    )
    .fetch_all(pool)
    .await
}

/// A vehicle's driving figures over a range, ranked.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaderboardRow {
    /// 1 = best driving score; vehicles without a score (under 1 km) rank last.
    pub rank: i64,
    pub device_id: i32,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub days: i64,
    pub distance_m: f64,
    pub driving_s: i64,
    pub overspeed_count: i64,
    pub overspeed_s: i64,
    pub harsh_events: i64,
    /// Overspeed runs per 100 km; null without distance.
    pub overspeed_per_100km: Option<f64>,
    /// Harsh events per 100 km; null without distance.
    pub harsh_per_100km: Option<f64>,
    /// fleet.kpi_driving_score of the summed figures (0-100); null under 1 km.
    pub driving_score: Option<f64>,
}

/// Every vehicle with KPI rows in [from, to], its figures summed and the score and rates
/// recomputed from the sums; ranked by driving score (best first), then distance.
pub async fn leaderboard(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    cost_centre: Option<&str>,
    city: Option<&str>,
) -> Result<Vec<LeaderboardRow>, sqlx::Error> {
    sqlx::query_as!(
        LeaderboardRow,
        r#"with s as (
               select k.device_id, count(*) as days, sum(k.distance_m) as distance_m,
                      sum(k.driving_s)::bigint as driving_s,
                      sum(k.overspeed_count)::bigint as overspeed_count,
                      sum(k.overspeed_s)::bigint as overspeed_s,
                      sum(k.harsh_events)::bigint as harsh_events
               from fleet.kpi_daily k
               join fleet.devices d on d.device_id = k.device_id
               where k.local_date between $1 and $2
                 and ($3::text is null or lower(d.cost_centre) = lower(btrim($3)))
                 and ($4::text is null or lower(d.city) = lower(btrim($4)))
               group by k.device_id
           ), scored as (
               select s.*,
                      fleet.kpi_per_100km(s.overspeed_count, s.distance_m) as overspeed_per_100km,
                      fleet.kpi_per_100km(s.harsh_events, s.distance_m) as harsh_per_100km,
                      fleet.kpi_driving_score(s.overspeed_count, s.harsh_events, s.distance_m,
                                              s.overspeed_s, s.driving_s) as driving_score
               from s
           )
           select rank() over (order by sc.driving_score desc nulls last, sc.distance_m desc)
                      as "rank!",
                  sc.device_id as "device_id!", d.name, d.plate, d.driver_name, d.cost_centre,
                  d.city, sc.days as "days!", sc.distance_m as "distance_m!",
                  sc.driving_s as "driving_s!", sc.overspeed_count as "overspeed_count!",
                  sc.overspeed_s as "overspeed_s!", sc.harsh_events as "harsh_events!",
                  sc.overspeed_per_100km, sc.harsh_per_100km, sc.driving_score
           from scored sc
           join fleet.devices d on d.device_id = sc.device_id
           order by 1, 2"#,
        from,
        to,
        cost_centre,
        city
    )
    .fetch_all(pool)
    .await
}

/// Whether any daily KPI row is of a day before `cut` (retention should have removed it).
pub async fn any_before(pool: &PgPool, cut: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select from fleet.kpi_daily where local_date < $1::timestamptz)
               as "found!""#,
        cut
    )
    .fetch_one(pool)
    .await
}
