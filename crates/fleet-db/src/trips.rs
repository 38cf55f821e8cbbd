//! Reading `fleet.trips` and `fleet.stops` with the vehicle that made them: one filtered query
//! per table (vehicle, cost centre, city, time, end reason or kind, keyset cursor), which
//! serves the lists, their CSV exports, a single trip and a vehicle's day. Rows come back as
//! the API shows them, with the stored names turned into `fleet_core` enums.

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::{EndReason, StopKind};
use futures_util::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// A trip with the vehicle that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trip {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub start_lat: f64,
    pub start_lon: f64,
    pub end_lat: f64,
    pub end_lon: f64,
    /// Distance over consecutive fixes while moving, metres.
    pub distance_m: f64,
    /// end_time - start_time, seconds.
    pub duration_s: i32,
    /// Seconds above the moving speed threshold.
    pub moving_s: i32,
    /// Seconds with the ignition on and stationary inside the trip.
    pub idle_s: i32,
    pub max_speed_kmh: Option<f32>,
    /// distance_m / moving_s, km/h.
    pub avg_speed_kmh: Option<f32>,
    /// Times the speed went above the configured limit.
    pub overspeed_count: i32,
    /// Seconds above the configured limit.
    pub overspeed_s: i32,
    /// Fixes the trip was built from.
    pub point_count: i32,
    /// Seconds inside the trip not covered by fixes.
    pub gap_s: i32,
    /// work_stop, long_gap, day_end or open (still going).
    pub end_reason: EndReason,
    pub start_geofence: Option<String>,
    pub end_geofence: Option<String>,
}

/// A stop (the time between trips) with the vehicle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stop {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    /// When the vehicle halted.
    pub start_time: DateTime<Utc>,
    /// When the next trip started, or the newest fix for the current stop.
    pub end_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// parked, or idling when the engine ran for most of the stop.
    pub kind: StopKind,
    pub duration_s: i32,
    /// Seconds with the ignition on.
    pub idle_s: i32,
    /// Geofence the vehicle stood in, if any.
    pub geofence: Option<String>,
}

/// Which trips (`K` = [`EndReason`]) or stops (`K` = [`StopKind`]) to read. Rows come newest
/// first, ordered by (start time descending, device id); `None` filters nothing.
#[derive(Debug, Clone)]
pub struct SegmentFilter<K> {
    pub device_ids: Option<Vec<i32>>,
    /// Case-insensitive.
    pub cost_centre: Option<String>,
    /// Case-insensitive.
    pub city: Option<String>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
    /// Ending after (stops overlapping a range; trips ignore it).
    pub ends_after: Option<DateTime<Utc>>,
    /// End reasons of trips, kinds of stops.
    pub kinds: Option<Vec<K>>,
    /// Keyset cursor: rows after this (start time, device id) in the order above.
    pub after: Option<(DateTime<Utc>, i32)>,
    pub limit: Option<i64>,
}

impl<K> Default for SegmentFilter<K> {
    fn default() -> Self {
        Self {
            device_ids: None,
            cost_centre: None,
            city: None,
            from: None,
            to: None,
            ends_after: None,
            kinds: None,
            after: None,
            limit: None,
        }
    }
}

impl<K> SegmentFilter<K> {
    /// One device's segments starting at exactly `start`.
    pub fn at(device_id: i32, start: DateTime<Utc>) -> Self {
        Self {
            device_ids: Some(vec![device_id]),
            from: Some(start),
            // PostgreSQL keeps microseconds: nothing starts between
            to: Some(start + TimeDelta::microseconds(1)),
            ..Self::default()
        }
    }
}

pub type TripFilter = SegmentFilter<EndReason>;
pub type StopFilter = SegmentFilter<StopKind>;

fn names<K>(kinds: &Option<Vec<K>>, name: fn(&K) -> &'static str) -> Option<Vec<String>> {
    kinds.as_ref().map(|k| k.iter().map(|k| name(k).to_owned()).collect())
}

fn stored<T>(value: Option<T>, column: &str, text: &str) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} {text:?}").into()))
}

// The one column list of each table: every reader goes through these two queries.
macro_rules! trips_query {
    ($f:expr) => {{
        let f = $f;
        let (after_time, after_id) = f.after.unzip();
        let kinds = names(&f.kinds, EndReason::as_str);
        sqlx::query!(
            "select t.device_id, d.imei, d.name, d.plate, d.driver_name, t.start_time,
                    t.end_time, t.start_lat, t.start_lon, t.end_lat, t.end_lon, t.distance_m,
                    t.duration_s, t.moving_s, t.idle_s, t.max_speed_kmh, t.avg_speed_kmh,
                    t.overspeed_count, t.overspeed_s, t.point_count, t.gap_s, t.end_reason,
                    t.start_geofence, t.end_geofence
             from fleet.trips t join fleet.devices d using (device_id)
             where ($1::int[] is null or t.device_id = any($1))
               and ($2::text is null or lower(d.cost_centre) = lower($2))
               and ($3::text is null or lower(d.city) = lower($3))
               and ($4::timestamptz is null or t.start_time >= $4)
               and ($5::timestamptz is null or t.start_time < $5)
               and ($6::text[] is null or t.end_reason = any($6))
               and ($7::timestamptz is null or t.start_time < $7
                    or (t.start_time = $7 and t.device_id > $8))
             order by t.start_time desc, t.device_id
             limit $9",
            f.device_ids.as_deref(),
            f.cost_centre.as_deref(),
            f.city.as_deref(),
            f.from,
            f.to,
            kinds.as_deref(),
            after_time,
            after_id,
            f.limit,
        )
        .try_map(|r| {
            Ok(Trip {
                end_reason: stored(
                    EndReason::from_name(&r.end_reason),
                    "end_reason",
                    &r.end_reason,
                )?,
                device_id: r.device_id,
                imei: r.imei,
                name: r.name,
                plate: r.plate,
                driver_name: r.driver_name,
                start_time: r.start_time,
                end_time: r.end_time,
                start_lat: r.start_lat,
                start_lon: r.start_lon,
                end_lat: r.end_lat,
                end_lon: r.end_lon,
                distance_m: r.distance_m,
                duration_s: r.duration_s,
                moving_s: r.moving_s,
                idle_s: r.idle_s,
                max_speed_kmh: r.max_speed_kmh,
                avg_speed_kmh: r.avg_speed_kmh,
                overspeed_count: r.overspeed_count,
                overspeed_s: r.overspeed_s,
                point_count: r.point_count,
                gap_s: r.gap_s,
                start_geofence: r.start_geofence,
                end_geofence: r.end_geofence,
            })
        })
    }};
}

macro_rules! stops_query {
    ($f:expr) => {{
        let f = $f;
        let (after_time, after_id) = f.after.unzip();
        let kinds = names(&f.kinds, StopKind::as_str);
        sqlx::query!(
            "select s.device_id, d.imei, d.name, d.plate, d.driver_name, s.start_time,
                    s.end_time, s.lat, s.lon, s.kind, s.duration_s, s.idle_s, s.geofence
             from fleet.stops s join fleet.devices d using (device_id)
             where ($1::int[] is null or s.device_id = any($1))
               and ($2::text is null or lower(d.cost_centre) = lower($2))
               and ($3::text is null or lower(d.city) = lower($3))
               and ($4::timestamptz is null or s.start_time >= $4)
               and ($5::timestamptz is null or s.start_time < $5)
               and ($6::timestamptz is null or s.end_time > $6)
               and ($7::text[] is null or s.kind = any($7))
               and ($8::timestamptz is null or s.start_time < $8
                    or (s.start_time = $8 and s.device_id > $9))
             order by s.start_time desc, s.device_id
             limit $10",
            f.device_ids.as_deref(),
            f.cost_centre.as_deref(),
            f.city.as_deref(),
            f.from,
            f.to,
            f.ends_after,
            kinds.as_deref(),
            after_time,
            after_id,
            f.limit,
        )
        .try_map(|r| {
            Ok(Stop {
                kind: stored(StopKind::from_name(&r.kind), "stop kind", &r.kind)?,
                device_id: r.device_id,
                imei: r.imei,
                name: r.name,
                plate: r.plate,
                driver_name: r.driver_name,
                start_time: r.start_time,
                end_time: r.end_time,
                lat: r.lat,
                lon: r.lon,
                duration_s: r.duration_s,
                idle_s: r.idle_s,
                geofence: r.geofence,
            })
        })
    }};
}

/// The trips matching `f`.
pub async fn trips<'c>(
    db: impl sqlx::PgExecutor<'c>,
    f: &TripFilter,
) -> Result<Vec<Trip>, sqlx::Error> {
    trips_query!(f).fetch_all(db).await
}

/// The trips matching `f`, read as the stream is polled (exports).
pub fn trip_stream(pool: &PgPool, f: TripFilter) -> BoxStream<'_, Result<Trip, sqlx::Error>> {
    trips_query!(&f).fetch(pool).boxed()
}

/// A device's trip starting at exactly `start`.
pub async fn trip<'c>(
    db: impl sqlx::PgExecutor<'c>,
    device_id: i32,
    start: DateTime<Utc>,
) -> Result<Option<Trip>, sqlx::Error> {
    trips_query!(&TripFilter::at(device_id, start)).fetch_optional(db).await
}

/// The stops matching `f`.
pub async fn stops<'c>(
    db: impl sqlx::PgExecutor<'c>,
    f: &StopFilter,
) -> Result<Vec<Stop>, sqlx::Error> {
    stops_query!(f).fetch_all(db).await
}

/// The stops matching `f`, read as the stream is polled (exports).
pub fn stop_stream(pool: &PgPool, f: StopFilter) -> BoxStream<'_, Result<Stop, sqlx::Error>> {
    stops_query!(&f).fetch(pool).boxed()
}

/// Whether any trip started before `cut` (retention should have removed it).
pub async fn any_before(pool: &PgPool, cut: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select from fleet.trips where start_time < $1) as "found!""#,
        cut
    )
    .fetch_one(pool)
    .await
}
