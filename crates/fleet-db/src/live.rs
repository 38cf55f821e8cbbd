//! The live fleet: each active vehicle's newest fix from `fleet.device_latest` (never the
//! positions history) with its status from `fleet.device_status` (migration 0025), read by the
//! live map and the live stream; and new alarms by key, for the stream's `alarm` events.
//!
//! Status is a string here (moving, idling, parked or offline); the API turns it into its enum.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::changes::AlarmKey;

/// Filters of the live map; `None` matches everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveFilter<'a> {
    /// Case does not matter.
    pub cost_centre: Option<&'a str>,
    /// Case does not matter.
    pub city: Option<&'a str>,
    pub ignition: Option<bool>,
}

/// A vehicle on the live map.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveVehicle {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub status: String,
    pub state_since: DateTime<Utc>,
    pub speed_kmh: Option<f32>,
    pub course_deg: Option<f32>,
    pub ignition: Option<bool>,
    pub gps_time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub fix_age_s: i64,
    pub fix_kind: String,
    pub battery_pct: Option<f32>,
    pub external_v: Option<f32>,
    /// Unacknowledged alarms younger than the window asked for.
    pub open_alarms: i64,
    pub lat: f64,
    pub lon: f64,
}

/// The live map at one instant.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// The database's clock at the snapshot (fix ages are relative to it).
    pub now: DateTime<Utc>,
    /// Matching active vehicles with a fix, by device id.
    pub vehicles: Vec<LiveVehicle>,
    /// Matching active vehicles that never reported a fix.
    pub no_fix: i64,
}

/// The clock, the vehicles with a fix and the count of those without, from one snapshot (a
/// repeatable-read transaction), alarms counted over the last `open_alarm_window_h` hours.
pub async fn snapshot(
    pool: &PgPool,
    filter: LiveFilter<'_>,
    open_alarm_window_h: i32,
) -> Result<LiveSnapshot, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let now = sqlx::query_scalar!(r#"select now() as "now!""#).fetch_one(&mut *tx).await?;
    let vehicles = vehicles(&mut tx, filter, open_alarm_window_h).await?;
    // a vehicle without a fix has no ignition either: an ignition filter excludes it
    let no_fix = sqlx::query_scalar!(
        r#"select count(*) as "n!" from fleet.devices d
         where d.active and $3::boolean is null
           and not exists (select from fleet.device_latest l where l.device_id = d.device_id)
           and ($1::text is null or lower(d.cost_centre) = lower($1))
           and ($2::text is null or lower(d.city) = lower($2))"#,
        filter.cost_centre,
        filter.city,
        filter.ignition,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(LiveSnapshot { now, vehicles, no_fix })
}

async fn vehicles(
    tx: &mut Transaction<'_, Postgres>,
    filter: LiveFilter<'_>,
    open_alarm_window_h: i32,
) -> Result<Vec<LiveVehicle>, sqlx::Error> {
    sqlx::query_as!(
        LiveVehicle,
        r#"select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
                fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) as "status!",
                l.state_since, l.speed_kmh, l.course_deg, l.ignition, l.gps_time,
                l.received_at, extract(epoch from now() - l.gps_time)::bigint as "fix_age_s!",
                l.fix_kind, l.battery_pct, l.external_v, coalesce(o.n, 0) as "open_alarms!",
                l.lat, l.lon
         from fleet.device_latest l
         join fleet.devices d using (device_id)
         join reporting.v_device_analytics_settings s using (device_id)
         left join (select a.device_id, count(*) as n from fleet.alarms a
                    where a.acknowledged_at is null
                      and a.alarm_time > now() - make_interval(hours => $4)
                    group by a.device_id) o using (device_id)
         where d.active
           and ($1::text is null or lower(d.cost_centre) = lower($1))
           and ($2::text is null or lower(d.city) = lower($2))
           and ($3::boolean is null or l.ignition = $3)
         order by d.device_id"#,
        filter.cost_centre,
        filter.city,
        filter.ignition,
        open_alarm_window_h,
    )
    .fetch_all(&mut **tx)
    .await
}

/// A vehicle's newest fix and status as the live stream announces it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestFix {
    pub device_id: i32,
    pub imei: String,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f32>,
    pub course_deg: Option<f32>,
    pub ignition: Option<bool>,
    pub gps_time: DateTime<Utc>,
    pub status: String,
    pub state_since: DateTime<Utc>,
}

/// Every active vehicle's newest fix and status (the stream's snapshot and offline sweep).
pub async fn latest_all(pool: &PgPool) -> Result<Vec<LatestFix>, sqlx::Error> {
    sqlx::query_as!(
        LatestFix,
        r#"select d.device_id, d.imei, d.cost_centre, d.city, l.lat, l.lon, l.speed_kmh,
                l.course_deg, l.ignition, l.gps_time,
                fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) as "status!",
                l.state_since
         from fleet.device_latest l
         join fleet.devices d using (device_id)
         join reporting.v_device_analytics_settings s using (device_id)
         where d.active"#
    )
    .fetch_all(pool)
    .await
}

/// The newest fix and status of the active vehicles among `device_ids` (a statement of its
/// own rather than a filter on [`latest_all`], so each keeps a fitting plan).
pub async fn latest_of(pool: &PgPool, device_ids: &[i32]) -> Result<Vec<LatestFix>, sqlx::Error> {
    sqlx::query_as!(
        LatestFix,
        r#"select d.device_id, d.imei, d.cost_centre, d.city, l.lat, l.lon, l.speed_kmh,
                l.course_deg, l.ignition, l.gps_time,
                fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) as "status!",
                l.state_since
         from fleet.device_latest l
         join fleet.devices d using (device_id)
         join reporting.v_device_analytics_settings s using (device_id)
         where d.active and l.device_id = any($1)"#,
        device_ids,
    )
    .fetch_all(pool)
    .await
}

/// An alarm as the live stream announces it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlarm {
    pub device_id: i32,
    pub imei: String,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub alarm_time: DateTime<Utc>,
    pub alarm_type: String,
    pub alarm_class: String,
    pub alarm_name: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// The alarms with these keys, oldest first.
pub async fn alarms_by_key(pool: &PgPool, keys: &[AlarmKey]) -> Result<Vec<NewAlarm>, sqlx::Error> {
    let ids: Vec<i32> = keys.iter().map(|a| a.0).collect();
    let times: Vec<DateTime<Utc>> = keys.iter().map(|a| a.1).collect();
    let types: Vec<String> = keys.iter().map(|a| a.2.clone()).collect();
    sqlx::query_as!(
        NewAlarm,
        r#"select a.device_id, d.imei, d.cost_centre, d.city, a.alarm_time, a.alarm_type,
                a.alarm_class, a.alarm_name, a.lat, a.lon
         from unnest($1::int[], $2::timestamptz[], $3::text[]) k(device_id, alarm_time, alarm_type)
         join fleet.alarms a using (device_id, alarm_time, alarm_type)
         join fleet.devices d on d.device_id = a.device_id
         order by a.alarm_time, a.device_id"#,
        &ids,
        &times,
        &types,
    )
    .fetch_all(pool)
    .await
}

/// When fleetd stored the newest fix of any active vehicle, and its age in seconds; `None`
/// when no active vehicle ever reported.
pub async fn newest_fix(pool: &PgPool) -> Result<Option<(DateTime<Utc>, i64)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select max(received_at) as "at!", extract(epoch from now() - max(received_at))::bigint as "age_s!"
         from fleet.device_latest l join fleet.devices d using (device_id)
         where d.active having count(*) > 0"#
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.at, r.age_s)))
}

/// An active vehicle idling now (its status by `fleet.device_status` is idling).
#[derive(Debug, Clone, PartialEq)]
pub struct IdleRecord {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub gps_time: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub duration_s: i64,
}

/// The vehicles idling now, longest idling first.
pub async fn idling(pool: &PgPool) -> Result<Vec<IdleRecord>, sqlx::Error> {
    sqlx::query_as!(
        IdleRecord,
        r#"select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
                l.lat, l.lon, l.gps_time, l.state_since as since,
                greatest(0, extract(epoch from now() - l.state_since))::bigint as "duration_s!"
         from fleet.device_latest l
         join fleet.devices d on d.device_id = l.device_id
         join reporting.v_device_analytics_settings s on s.device_id = l.device_id
         where d.active
           and fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) = 'idling'
         order by l.state_since, d.device_id"#
    )
    .fetch_all(pool)
    .await
}
