//! The trip builder's bookkeeping: `fleet.analytics_backlog` (devices marked for processing by
//! the ingest writer, a rebuild or a settings change) and each device's resolved analytics
//! settings (`reporting.v_device_analytics_settings`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_core::AnalyticsSettings;
use sqlx::{PgConnection, PgPool};

/// A device due for processing.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub device_id: i32,
    /// Re-derive from the device's first fix (settings changed, or a rebuild was asked for).
    pub full: bool,
    /// Earliest GPS time of fixes stored since the last pass.
    pub positions_from: Option<DateTime<Utc>>,
    /// Recompute daily KPIs from the first day.
    pub kpi_full: bool,
    /// Earliest time of other new data that changes daily KPIs.
    pub kpi_from: Option<DateTime<Utc>>,
    /// The backlog row's version, cleared only if unchanged; `None` for devices visited
    /// without a mark (open trips of silent devices).
    pub version: Option<i64>,
}

/// Up to `limit` marked devices, in id order, after `after` (to walk the backlog in chunks).
pub async fn backlog(
    conn: &mut PgConnection,
    after: i32,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    // -infinity does not fit chrono; it is returned as a flag instead
    sqlx::query!(
        r#"select device_id,
                  coalesce(positions_from = '-infinity', false) as "full!",
                  case when positions_from <> '-infinity' then positions_from end as positions_from,
                  coalesce(kpi_from = '-infinity', false) as "kpi_full!",
                  case when kpi_from <> '-infinity' then kpi_from end as kpi_from,
                  version
           from fleet.analytics_backlog
           where device_id > $1
           order by device_id
           limit $2"#,
        after,
        limit
    )
    .map(|r| Claim {
        device_id: r.device_id,
        full: r.full,
        positions_from: r.positions_from,
        kpi_full: r.kpi_full,
        kpi_from: r.kpi_from,
        version: Some(r.version),
    })
    .fetch_all(&mut *conn)
    .await
}

/// Devices whose newest trip is still open although they have been silent for longer than
/// their long gap: the trip has ended (day end) and must be closed.
pub async fn silent_open_trips(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        "select t.device_id
         from fleet.trips t
         join reporting.v_device_analytics_settings s using (device_id)
         where t.end_reason = 'open'
           and t.end_time < now() - make_interval(secs => s.long_gap_s)
           and not exists (select from fleet.analytics_backlog b where b.device_id = t.device_id)
         order by t.device_id
         limit $1",
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids
        .into_iter()
        .map(|device_id| Claim {
            device_id,
            full: false,
            positions_from: None,
            kpi_full: false,
            kpi_from: None,
            version: None,
        })
        .collect())
}

/// Every device's resolved analytics settings.
pub async fn settings(
    conn: &mut PgConnection,
) -> Result<HashMap<i32, AnalyticsSettings>, sqlx::Error> {
    // the view's columns are never null: every setting falls back to the global row
    let rows = sqlx::query!(
        r#"select device_id as "device_id!", speed_limit_kmh as "speed_limit_kmh!",
                  moving_speed_kmh as "moving_speed_kmh!", work_stop_min_s as "work_stop_min_s!",
                  long_gap_s as "long_gap_s!", idle_min_s as "idle_min_s!",
                  min_trip_distance_m as "min_trip_distance_m!",
                  min_trip_duration_s as "min_trip_duration_s!",
                  motion_confirm_distance_m as "motion_confirm_distance_m!",
                  offline_after_s as "offline_after_s!", shift_start as "shift_start!",
                  shift_end as "shift_end!", shift_weekdays as "shift_weekdays!",
                  timezone as "timezone!", idle_fuel_l_per_h as "idle_fuel_l_per_h!",
                  fuel_price_per_l as "fuel_price_per_l!", currency as "currency!"
           from reporting.v_device_analytics_settings"#
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let s = AnalyticsSettings {
                speed_limit_kmh: r.speed_limit_kmh,
                moving_speed_kmh: r.moving_speed_kmh,
                work_stop_min_s: r.work_stop_min_s,
                long_gap_s: r.long_gap_s,
                idle_min_s: r.idle_min_s,
                min_trip_distance_m: r.min_trip_distance_m,
                min_trip_duration_s: r.min_trip_duration_s,
                motion_confirm_distance_m: r.motion_confirm_distance_m,
                offline_after_s: r.offline_after_s,
                shift_start: r.shift_start,
                shift_end: r.shift_end,
                shift_weekdays: r.shift_weekdays,
                timezone: r.timezone,
                idle_fuel_l_per_h: r.idle_fuel_l_per_h,
                fuel_price_per_l: r.fuel_price_per_l,
                currency: r.currency,
            };
            (r.device_id, s)
        })
        .collect())
}

/// Of `imeis`, those no registered device has, in order.
pub async fn unknown_imeis(pool: &PgPool, imeis: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select i as "i!" from unnest($1::text[]) as i
           where not exists (select from fleet.devices d where d.imei = i) order by i"#,
        imeis
    )
    .fetch_all(pool)
    .await
}

/// Marks every device (or those with the given IMEIs) for a re-derivation from `since`
/// (`None`: from the first fix); returns how many devices were marked.
pub async fn mark_rebuild(
    pool: &PgPool,
    imeis: Option<&[String]>,
    since: Option<DateTime<Utc>>,
) -> Result<u64, sqlx::Error> {
    let marked = sqlx::query!(
        "insert into fleet.analytics_backlog (device_id, positions_from, kpi_from)
         select device_id, coalesce($2::timestamptz, '-infinity'), coalesce($2, '-infinity')
         from fleet.devices where $1::text[] is null or imei = any($1)
         order by device_id
         on conflict (device_id) do update set
             positions_from = least(fleet.analytics_backlog.positions_from, excluded.positions_from),
             kpi_from = least(fleet.analytics_backlog.kpi_from, excluded.kpi_from),
             version = fleet.analytics_backlog.version + 1",
        imeis,
        since
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(marked)
}

/// How long the oldest device in the backlog has waited, in seconds (0 when it is empty): the
/// trip builder's lag.
pub async fn backlog_lag_s(pool: &PgPool) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select coalesce(extract(epoch from now() - min(marked_at)), 0)::float8 as "lag!"
           from fleet.analytics_backlog"#
    )
    .fetch_one(pool)
    .await
}

/// Devices waiting in the backlog.
pub async fn backlog_size(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from fleet.analytics_backlog"#)
        .fetch_one(pool)
        .await
}

/// Deletes the marks processed, at the versions read, locking the rows in device order first —
/// the order the writer and the trip builder lock them in, so the two never deadlock. A mark
/// whose version moved meanwhile stays for the next pass.
pub async fn clear_backlog(
    tx: &mut PgConnection,
    ids: &[i32],
    versions: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select device_id from fleet.analytics_backlog
         where device_id = any($1) order by device_id for update",
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from fleet.analytics_backlog b
         using unnest($1::int[], $2::int8[]) as v(device_id, version)
         where b.device_id = v.device_id and b.version = v.version",
        ids,
        versions
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks devices with newly stored data, in the transaction that stores it: the earliest new
/// fix (`positions`) and the earliest other data that changes daily KPIs (`kpi`), one element
/// per device of `ids` (in id order, so concurrent writers lock backlog rows in one order).
pub async fn mark_new_data(
    tx: &mut PgConnection,
    ids: &[i32],
    positions: &[Option<DateTime<Utc>>],
    kpi: &[Option<DateTime<Utc>>],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.analytics_backlog (device_id, positions_from, kpi_from)
         select * from unnest($1::int[], $2::timestamptz[], $3::timestamptz[])
         on conflict (device_id) do update set
             positions_from = least(fleet.analytics_backlog.positions_from, excluded.positions_from),
             kpi_from = least(fleet.analytics_backlog.kpi_from, excluded.kpi_from),
             version = fleet.analytics_backlog.version + 1",
        ids,
        positions as &[Option<DateTime<Utc>>],
        kpi as &[Option<DateTime<Utc>>]
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
