//! Reading what the trip builder needs: the backlog, settings, stored spans and fixes.
//!
//! Every query covers a whole chunk of devices at once (arrays bound as parameters), so a pass
//! costs a handful of round trips whatever the number of devices.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_core::{AnalyticsSettings, LatLon, Span, TripPoint};
use sqlx::{PgConnection, Row};

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

type ClaimRow = (i32, bool, Option<DateTime<Utc>>, bool, Option<DateTime<Utc>>, i64);

/// Up to `limit` marked devices, in id order, after `after` (to walk the backlog in chunks).
pub async fn backlog(
    conn: &mut PgConnection,
    after: i32,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    // -infinity does not fit chrono; it is returned as a flag instead
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "select device_id,
                coalesce(positions_from = '-infinity', false),
                case when positions_from <> '-infinity' then positions_from end,
                coalesce(kpi_from = '-infinity', false),
                case when kpi_from <> '-infinity' then kpi_from end,
                version
         from fleet.analytics_backlog
         where device_id > $1
         order by device_id
         limit $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(device_id, full, positions_from, kpi_full, kpi_from, version)| Claim {
            device_id,
            full,
            positions_from,
            kpi_full,
            kpi_from,
            version: Some(version),
        })
        .collect())
}

/// Devices whose newest trip is still open although they have been silent for longer than
/// their long gap: the trip has ended (day end) and must be closed.
pub async fn silent_open_trips(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Claim>, sqlx::Error> {
    let ids: Vec<i32> = sqlx::query_scalar(
        "select t.device_id
         from fleet.trips t
         join reporting.v_device_analytics_settings s using (device_id)
         where t.end_reason = 'open'
           and t.end_time < now() - make_interval(secs => s.long_gap_s)
           and not exists (select from fleet.analytics_backlog b where b.device_id = t.device_id)
         order by t.device_id
         limit $1",
    )
    .bind(limit)
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
    let rows = sqlx::query(
        "select device_id, speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s,
                idle_min_s, min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m,
                offline_after_s, shift_start, shift_end, shift_weekdays, timezone,
                idle_fuel_l_per_h, fuel_price_per_l, currency
         from reporting.v_device_analytics_settings",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let s = AnalyticsSettings {
                speed_limit_kmh: r.try_get(1)?,
                moving_speed_kmh: r.try_get(2)?,
                work_stop_min_s: r.try_get(3)?,
                long_gap_s: r.try_get(4)?,
                idle_min_s: r.try_get(5)?,
                min_trip_distance_m: r.try_get(6)?,
                min_trip_duration_s: r.try_get(7)?,
                motion_confirm_distance_m: r.try_get(8)?,
                offline_after_s: r.try_get(9)?,
                shift_start: r.try_get(10)?,
                shift_end: r.try_get(11)?,
                shift_weekdays: r.try_get(12)?,
                timezone: r.try_get(13)?,
                idle_fuel_l_per_h: r.try_get(14)?,
                fuel_price_per_l: r.try_get(15)?,
                currency: r.try_get(16)?,
            };
            Ok((r.try_get(0)?, s))
        })
        .collect()
}

/// For each (device, late time), the last few stored segments ending at or before it, in time
/// order: enough for `restart_point_of` to find the latest safe stop in all but contrived
/// histories, and any earlier answer is also correct. `None` means "at the end of time".
pub async fn recent_spans(
    conn: &mut PgConnection,
    late: &[(i32, Option<DateTime<Utc>>)],
) -> Result<HashMap<i32, Vec<Span>>, sqlx::Error> {
    let ids: Vec<i32> = late.iter().map(|l| l.0).collect();
    let times: Vec<Option<DateTime<Utc>>> = late.iter().map(|l| l.1).collect();
    let rows: Vec<(i32, bool, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "select v.device_id, s.is_trip, s.start_time, s.end_time
         from unnest($1::int[], $2::timestamptz[]) as v(device_id, late)
         cross join lateral (
             (select true as is_trip, start_time, end_time from fleet.trips t
              where t.device_id = v.device_id and t.end_time <= coalesce(v.late, 'infinity')
              order by t.start_time desc limit 6)
             union all
             (select false, start_time, end_time from fleet.stops s
              where s.device_id = v.device_id and s.end_time <= coalesce(v.late, 'infinity')
              order by s.start_time desc limit 6)
         ) s
         order by v.device_id, s.start_time, s.is_trip",
    )
    .bind(&ids)
    .bind(&times)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i32, Vec<Span>> = HashMap::new();
    for (id, is_trip, start, end) in rows {
        out.entry(id).or_default().push(Span { is_trip, start, end });
    }
    Ok(out)
}

/// Where to read each device's fixes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Since {
    pub device_id: i32,
    /// `None`: from the first fix.
    pub time: Option<DateTime<Utc>>,
    /// Whether a fix exactly at `time` is wanted (a restart point) or not (the newest fix a
    /// warm builder has read).
    pub inclusive: bool,
}

type FixRow = (i32, DateTime<Utc>, f64, f64, Option<f32>, Option<bool>);

/// Fixes the trip builder uses, per device in time order. Cell-tower (LBS) fixes are left out:
/// their error of hundreds of metres would make trips out of a parked vehicle.
pub async fn fixes(
    conn: &mut PgConnection,
    since: &[Since],
) -> Result<HashMap<i32, Vec<TripPoint>>, sqlx::Error> {
    let ids: Vec<i32> = since.iter().map(|s| s.device_id).collect();
    let times: Vec<Option<DateTime<Utc>>> = since.iter().map(|s| s.time).collect();
    let exclusive: HashMap<i32, DateTime<Utc>> = since
        .iter()
        .filter(|s| !s.inclusive)
        .filter_map(|s| Some((s.device_id, s.time?)))
        .collect();
    let whole_history = since.iter().all(|s| s.time.is_none());
    let rows: Vec<FixRow> = if whole_history {
        // rebuilding devices from scratch: one sequential scan beats an index scan per device
        // (rows of one device are scattered over the heap in arrival order); sorted below
        sqlx::query_as(
            "select device_id, gps_time, lat, lon, speed_kmh, ignition from fleet.positions
             where device_id = any($1) and fix_kind <> 'lbs'",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query_as(
            // one ordered index range scan per device: rows come grouped by device and in
            // time order without a sort of the whole result
            "select v.device_id, p.gps_time, p.lat, p.lon, p.speed_kmh, p.ignition
             from unnest($1::int[], $2::timestamptz[]) as v(device_id, since)
             cross join lateral (
                 select gps_time, lat, lon, speed_kmh, ignition from fleet.positions p
                 where p.device_id = v.device_id and p.gps_time >= coalesce(v.since, '-infinity')
                   and p.fix_kind <> 'lbs'
                 order by p.gps_time
             ) p",
        )
        .bind(&ids)
        .bind(&times)
        .fetch_all(&mut *conn)
        .await?
    };
    let mut out: HashMap<i32, Vec<TripPoint>> = HashMap::new();
    for (id, time, lat, lon, speed_kmh, ignition) in rows {
        if exclusive.get(&id) == Some(&time) {
            continue;
        }
        // the table's checks guarantee a valid, non-null coordinate
        let Ok(location) = LatLon::new(lat, lon) else { continue };
        out.entry(id).or_default().push(TripPoint { time, location, speed_kmh, ignition });
    }
    if whole_history {
        for points in out.values_mut() {
            points.sort_by_key(|p| p.time);
        }
    }
    Ok(out)
}

/// Each device's last usable fix before a time: where it stood when re-derivation starts, for
/// geofence crossings.
pub async fn fix_before(
    conn: &mut PgConnection,
    before: &[(i32, DateTime<Utc>)],
) -> Result<HashMap<i32, LatLon>, sqlx::Error> {
    let ids: Vec<i32> = before.iter().map(|b| b.0).collect();
    let times: Vec<DateTime<Utc>> = before.iter().map(|b| b.1).collect();
    let rows: Vec<(i32, f64, f64)> = sqlx::query_as(
        "select v.device_id, p.lat, p.lon
         from unnest($1::int[], $2::timestamptz[]) as v(device_id, t)
         cross join lateral (
             select lat, lon from fleet.positions p
             where p.device_id = v.device_id and p.gps_time < v.t and p.fix_kind <> 'lbs'
             order by p.gps_time desc limit 1
         ) p",
    )
    .bind(&ids)
    .bind(&times)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, lat, lon)| Some((id, LatLon::new(lat, lon).ok()?)))
        .collect())
}
