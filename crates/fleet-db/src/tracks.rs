//! Reading a vehicle's path from `fleet.positions`: the fixes of a time range for track
//! downloads, and the points of one trip for its map line.

use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

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
