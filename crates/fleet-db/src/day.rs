//! A vehicle's local day: the device in its time zone, the day's bounds, and its totals —
//! from `fleet.kpi_daily` when the KPI step has computed the day, else computed from the
//! trips, stops and fixes that overlap it.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

/// The device a day report is about, in its time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySubject {
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub timezone: String,
    /// Today in that time zone.
    pub today: NaiveDate,
}

/// A day's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTotals {
    /// Trips started in the day.
    pub trips: i32,
    pub distance_m: f64,
    pub driving_s: f64,
    /// `None` without ignition data.
    pub idle_s: Option<f64>,
    pub parked_s: f64,
    /// The first fix with the ignition on.
    pub reporting_time: Option<DateTime<Utc>>,
}

/// The device with its time zone; `None` when there is no such device.
pub async fn subject(
    db: &mut PgConnection,
    device_id: i32,
) -> Result<Option<DaySubject>, sqlx::Error> {
    sqlx::query_as!(
        DaySubject,
        r#"select d.imei, d.name, d.plate, d.driver_name, s.timezone as "timezone!",
                  (now() at time zone s.timezone)::date as "today!"
           from fleet.devices d
           join reporting.v_device_analytics_settings s on s.device_id = d.device_id
           where d.device_id = $1"#,
        device_id
    )
    .fetch_optional(db)
    .await
}

/// The instants the local day `date` starts and ends at in `timezone`.
pub async fn bounds(
    db: &mut PgConnection,
    date: NaiveDate,
    timezone: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), sqlx::Error> {
    let r = sqlx::query!(
        r#"select $1::date::timestamp at time zone $2 as "from!",
                  ($1::date + 1)::timestamp at time zone $2 as "to!""#,
        date,
        timezone
    )
    .fetch_one(db)
    .await?;
    Ok((r.from, r.to))
}

/// The day's row of `fleet.kpi_daily`, when the KPI step has computed it.
pub async fn kpi_totals(
    db: &mut PgConnection,
    device_id: i32,
    date: NaiveDate,
) -> Result<Option<DayTotals>, sqlx::Error> {
    sqlx::query_as!(
        DayTotals,
        r#"select trips, distance_m, driving_s::float8 as "driving_s!", idle_s::float8 as idle_s,
                  parked_s::float8 as "parked_s!", reporting_time
           from fleet.kpi_daily where device_id = $1 and local_date = $2"#,
        device_id,
        date
    )
    .fetch_optional(db)
    .await
}

/// The totals of [from, to) from its trips and stops, each crossing a boundary counted by
/// the share of its time inside; idle is null when no fix in it had ignition data.
pub async fn computed_totals(
    db: &mut PgConnection,
    device_id: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<DayTotals, sqlx::Error> {
    sqlx::query_as!(
        DayTotals,
        r#"with tr as (
             select t.*, case when t.duration_s > 0
                 then greatest(0, extract(epoch from least(t.end_time, $3) - greatest(t.start_time, $2)))::float8 / t.duration_s
                 else (t.start_time >= $2)::int::float8 end as share
             from fleet.trips t
             where t.device_id = $1 and t.start_time < $3 and t.end_time >= $2),
         st as (
             select s.*, greatest(0, extract(epoch from least(s.end_time, $3) - greatest(s.start_time, $2)))::float8 as inside_s,
                    case when s.duration_s > 0
                 then greatest(0, extract(epoch from least(s.end_time, $3) - greatest(s.start_time, $2)))::float8 / s.duration_s
                 else 0 end as share
             from fleet.stops s
             where s.device_id = $1 and s.start_time < $3 and s.end_time > $2),
         acc as (
             select bool_or(p.ignition is not null) as has_acc,
                    min(p.gps_time) filter (where p.ignition) as reporting_time
             from fleet.positions p
             where p.device_id = $1 and p.gps_time >= $2 and p.gps_time < $3)
         select (select count(*) from tr where tr.start_time >= $2)::int as "trips!",
                coalesce((select sum(distance_m * share) from tr), 0)::float8 as "distance_m!",
                coalesce((select sum(moving_s * share) from tr), 0)::float8 as "driving_s!",
                case when (select has_acc from acc) then
                    coalesce((select sum(idle_s * share) from tr), 0)::float8
                    + coalesce((select sum(idle_s * share) from st), 0)::float8 end as idle_s,
                coalesce((select sum(greatest(0, inside_s - idle_s * share)) from st), 0)::float8
                    as "parked_s!",
                (select reporting_time from acc) as reporting_time"#,
        device_id,
        from,
        to
    )
    .fetch_one(db)
    .await
}
