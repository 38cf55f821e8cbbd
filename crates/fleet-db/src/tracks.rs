//! Reading a vehicle's path from `fleet.positions`: the fixes of a time range for track
//! downloads, the points of one trip for its map line, and the fixes the trip builder reads.
//! Cell-tower (LBS) fixes are left out of the builder's: their error of hundreds of metres
//! would make trips out of a parked vehicle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_core::{LatLon, TripPoint};
use futures_util::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

/// One position fix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fix {
    /// When the device took the fix.
    pub gps_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f32>,
    /// Heading, degrees clockwise from north.
    pub course_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    pub ignition: Option<bool>,
    pub satellites: Option<i16>,
    /// gps, lbs (cell tower), wifi or beacon.
    pub fix_kind: String,
}

/// A device's fixes in [from, to), oldest first, read as the stream is polled.
pub fn track(
    pool: &PgPool,
    device_id: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BoxStream<'_, Result<Fix, sqlx::Error>> {
    sqlx::query_as!(
        Fix,
        "select gps_time, lat, lon, speed_kmh, course_deg, altitude_m, ignition, satellites, fix_kind
         from fleet.positions
         where device_id = $1 and gps_time >= $2 and gps_time < $3
         order by gps_time",
        device_id,
        from,
        to
    )
    .fetch(pool)
    .boxed()
}

/// A point of a trip's line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackPoint {
    pub gps_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f32>,
}

/// A device's fixes in [from, to] (a trip's ends included), oldest first.
pub async fn trip_points(
    pool: &PgPool,
    device_id: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TrackPoint>, sqlx::Error> {
    sqlx::query_as!(
        TrackPoint,
        "select gps_time, lat, lon, speed_kmh from fleet.positions
         where device_id = $1 and gps_time >= $2 and gps_time <= $3
         order by gps_time",
        device_id,
        from,
        to
    )
    .fetch_all(pool)
    .await
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

/// Device, GPS time, latitude, longitude, speed and ignition of a fix.
type FixRow = (i32, DateTime<Utc>, f64, f64, Option<f32>, Option<bool>);

/// Fixes the trip builder uses, per device in time order.
pub async fn builder_fixes(
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
    // one ordered index range scan per device: rows come grouped by device and in time order
    // without a sort. Also for devices read from their first fix: a sequential scan would read
    // the whole table for each chunk of them (a full rebuild has its own scan, `fix_scan`)
    let rows: Vec<FixRow> = sqlx::query!(
        r#"select v.device_id as "device_id!", p.gps_time, p.lat, p.lon, p.speed_kmh, p.ignition
           from unnest($1::int[], $2::timestamptz[]) as v(device_id, since)
           cross join lateral (
               select gps_time, lat, lon, speed_kmh, ignition from fleet.positions p
               where p.device_id = v.device_id
                 and p.gps_time >= coalesce(v.since, '-infinity')
                 and p.fix_kind <> 'lbs'
               order by p.gps_time
           ) p"#,
        &ids,
        &times as &[Option<DateTime<Utc>>]
    )
    .map(|r| (r.device_id, r.gps_time, r.lat, r.lon, r.speed_kmh, r.ignition))
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i32, Vec<TripPoint>> = HashMap::new();
    for (id, time, lat, lon, speed_kmh, ignition) in rows {
        if exclusive.get(&id) == Some(&time) {
            continue;
        }
        // the table's checks guarantee a valid, non-null coordinate
        let Ok(location) = LatLon::new(lat, lon) else { continue };
        out.entry(id).or_default().push(TripPoint { time, location, speed_kmh, ignition });
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
    let rows = sqlx::query!(
        r#"select v.device_id as "device_id!", p.lat, p.lon
           from unnest($1::int[], $2::timestamptz[]) as v(device_id, t)
           cross join lateral (
               select lat, lon from fleet.positions p
               where p.device_id = v.device_id and p.gps_time < v.t and p.fix_kind <> 'lbs'
               order by p.gps_time desc limit 1
           ) p"#,
        &ids,
        &times
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.device_id, LatLon::new(r.lat, r.lon).ok()?)))
        .collect())
}
