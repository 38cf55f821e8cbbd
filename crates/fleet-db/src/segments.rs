//! The trip builder's segments: the recent spans it restarts from, and writing what it
//! derived (`fleet.trips`, `fleet.stops`, `fleet.geofence_events`), one chunk of devices per
//! transaction.
//!
//! Each device's segments are replaced from the time its re-derivation started, its geofence
//! events from its first re-read fix, the local days touched are queued for a KPI refresh, and
//! its backlog mark is cleared if no new mark came meanwhile — all in the transaction, so readers see
//! either the old or the new derivation, and a failure leaves the mark for the next pass.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use fleet_core::{GeofenceEvent, Geofences, Segment, Span};
use sqlx::{PgConnection, Postgres, Transaction};

/// For each (device, late time), the last few stored segments ending at or before it, in time
/// order: enough for `restart_point_of` to find the latest safe stop in all but contrived
/// histories, and any earlier answer is also correct. `None` means "at the end of time".
pub async fn recent_spans(
    conn: &mut PgConnection,
    late: &[(i32, Option<DateTime<Utc>>)],
) -> Result<HashMap<i32, Vec<Span>>, sqlx::Error> {
    let ids: Vec<i32> = late.iter().map(|l| l.0).collect();
    let times: Vec<Option<DateTime<Utc>>> = late.iter().map(|l| l.1).collect();
    let rows = sqlx::query!(
        r#"select v.device_id as "device_id!", s.is_trip as "is_trip!",
                  s.start_time as "start_time!", s.end_time as "end_time!"
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
           order by v.device_id, s.start_time, s.is_trip"#,
        &ids,
        &times as &[Option<DateTime<Utc>>]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i32, Vec<Span>> = HashMap::new();
    for r in rows {
        out.entry(r.device_id).or_default().push(Span {
            is_trip: r.is_trip,
            start: r.start_time,
            end: r.end_time,
        });
    }
    Ok(out)
}

/// One device's re-derivation.
#[derive(Debug, Clone)]
pub struct DeviceOutput {
    pub device_id: i32,
    /// Stored segments starting at or after this are replaced (`None`: all of them).
    pub segments_from: Option<DateTime<Utc>>,
    pub segments: Vec<Segment>,
    /// Stored geofence events at or after this are replaced (`None`: nothing re-read).
    pub events_from: Option<DateTime<Utc>>,
    pub events: Vec<GeofenceEvent>,
    /// Local days overlapping [kpi_from, kpi_to] are queued for a KPI refresh (`None`: from the
    /// first day).
    pub kpi_from: Option<DateTime<Utc>>,
    pub kpi_to: DateTime<Utc>,
    /// Earliest GPS time of the fixes new to this pass (`None`: no new fixes): the KPI step
    /// adds fixes to a day's aggregates incrementally only when they are all after what the day
    /// has counted.
    pub fixes_from: Option<DateTime<Utc>>,
    /// Backlog version to clear.
    pub version: Option<i64>,
}

impl DeviceOutput {
    /// Segments of a device and nothing else (no events, KPI days or mark), as a full rebuild
    /// inserts them while it goes.
    pub fn segments_only(device_id: i32, segments: Vec<Segment>) -> Self {
        DeviceOutput {
            device_id,
            segments_from: None,
            segments,
            events_from: None,
            events: Vec::new(),
            kpi_from: None,
            kpi_to: DateTime::<Utc>::MIN_UTC,
            fixes_from: None,
            version: None,
        }
    }
}

/// Columns of `fleet.trips` as arrays, one element per trip.
#[derive(Debug, Default)]
struct TripColumns {
    device_id: Vec<i32>,
    start: Vec<DateTime<Utc>>,
    end: Vec<DateTime<Utc>>,
    start_lat: Vec<f64>,
    start_lon: Vec<f64>,
    end_lat: Vec<f64>,
    end_lon: Vec<f64>,
    distance_m: Vec<f64>,
    duration_s: Vec<i32>,
    moving_s: Vec<i32>,
    idle_s: Vec<i32>,
    max_speed: Vec<f32>,
    avg_speed: Vec<f32>,
    overspeed_count: Vec<i32>,
    overspeed_s: Vec<i32>,
    point_count: Vec<i32>,
    gap_s: Vec<i32>,
    end_reason: Vec<&'static str>,
    start_geofence: Vec<Option<String>>,
    end_geofence: Vec<Option<String>>,
}

#[derive(Debug, Default)]
struct StopColumns {
    device_id: Vec<i32>,
    start: Vec<DateTime<Utc>>,
    end: Vec<DateTime<Utc>>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    kind: Vec<&'static str>,
    duration_s: Vec<i32>,
    idle_s: Vec<i32>,
    geofence: Vec<Option<String>>,
}

fn secs(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Writes a chunk's outputs in one transaction. Returns the number of trips written.
pub async fn write_chunk(
    tx: &mut Transaction<'static, Postgres>,
    outputs: &[DeviceOutput],
    fences: &Geofences,
) -> Result<usize, sqlx::Error> {
    delete_segments(tx, outputs).await?;
    write_rest(tx, outputs, fences).await
}

/// Deletes every stored segment of `ids`: the start of a full rebuild, which then inserts the
/// segments as they become final ([`insert_segments`]) and ends with [`write_rest`].
pub async fn delete_all(tx: &mut PgConnection, ids: &[i32]) -> Result<(), sqlx::Error> {
    let outputs: Vec<DeviceOutput> =
        ids.iter().map(|&device_id| DeviceOutput::segments_only(device_id, Vec::new())).collect();
    delete_segments(tx, &outputs).await
}

/// [`write_chunk`] after the deletion of the segments it replaces: inserts the outputs'
/// segments, replaces their geofence events, queues their KPI days and clears their marks.
/// Returns the number of trips written.
pub async fn write_rest(
    tx: &mut PgConnection,
    outputs: &[DeviceOutput],
    fences: &Geofences,
) -> Result<usize, sqlx::Error> {
    let trips = insert_segments(tx, outputs, fences).await?;
    replace_events(tx, outputs).await?;
    let ids: Vec<i32> = outputs.iter().map(|o| o.device_id).collect();
    let kpi_from: Vec<Option<DateTime<Utc>>> = outputs.iter().map(|o| o.kpi_from).collect();
    let kpi_to: Vec<DateTime<Utc>> = outputs.iter().map(|o| o.kpi_to).collect();
    let fixes_from: Vec<Option<DateTime<Utc>>> = outputs.iter().map(|o| o.fixes_from).collect();
    crate::kpis::queue(tx, &ids, &kpi_from, &kpi_to, &fixes_from).await?;
    clear_backlog(tx, outputs).await?;
    Ok(trips)
}

/// Inserts the outputs' segments (nothing else of them); returns the number of trips.
pub async fn insert_segments(
    tx: &mut PgConnection,
    outputs: &[DeviceOutput],
    fences: &Geofences,
) -> Result<usize, sqlx::Error> {
    let mut trips = TripColumns::default();
    let mut stops = StopColumns::default();
    for out in outputs {
        for segment in &out.segments {
            match segment {
                Segment::Trip(t) => {
                    trips.device_id.push(out.device_id);
                    trips.start.push(t.start);
                    trips.end.push(t.end);
                    trips.start_lat.push(t.start_location.lat());
                    trips.start_lon.push(t.start_location.lon());
                    trips.end_lat.push(t.end_location.lat());
                    trips.end_lon.push(t.end_location.lon());
                    trips.distance_m.push(t.distance_m);
                    trips.duration_s.push(secs(t.duration_s));
                    trips.moving_s.push(secs(t.moving_s));
                    trips.idle_s.push(secs(t.idle_s));
                    trips.max_speed.push(t.max_speed_kmh as f32);
                    trips.avg_speed.push(t.avg_speed_kmh as f32);
                    trips
                        .overspeed_count
                        .push(i32::try_from(t.overspeed_count).unwrap_or(i32::MAX));
                    trips.overspeed_s.push(secs(t.overspeed_s));
                    trips.point_count.push(i32::try_from(t.point_count).unwrap_or(i32::MAX));
                    trips.gap_s.push(secs(t.gap_s));
                    trips.end_reason.push(t.end_reason.as_str());
                    trips.start_geofence.push(fences.name_at(&t.start_location).map(str::to_owned));
                    trips.end_geofence.push(fences.name_at(&t.end_location).map(str::to_owned));
                }
                Segment::Stop(s) => {
                    stops.device_id.push(out.device_id);
                    stops.start.push(s.start);
                    stops.end.push(s.end);
                    stops.lat.push(s.location.lat());
                    stops.lon.push(s.location.lon());
                    stops.kind.push(s.kind.as_str());
                    stops.duration_s.push(secs(s.duration_s));
                    stops.idle_s.push(secs(s.idle_s));
                    stops.geofence.push(fences.name_at(&s.location).map(str::to_owned));
                }
            }
        }
    }
    insert_trips(tx, &trips).await?;
    insert_stops(tx, &stops).await?;
    Ok(trips.device_id.len())
}

async fn delete_segments(
    tx: &mut PgConnection,
    outputs: &[DeviceOutput],
) -> Result<(), sqlx::Error> {
    let ids: Vec<i32> = outputs.iter().map(|o| o.device_id).collect();
    let from: Vec<Option<DateTime<Utc>>> = outputs.iter().map(|o| o.segments_from).collect();
    // the rows are found with one index range scan per device and deleted by ctid: a join
    // against the array would make the planner scan the whole table (`offset 0` keeps the
    // lateral subquery from being flattened into such a join)
    sqlx::query!(
        "delete from fleet.trips where ctid = any(array(
             select x.ctid from unnest($1::int[], $2::timestamptz[]) as v(device_id, since)
             cross join lateral (
                 select ctid from fleet.trips x
                 where x.device_id = v.device_id and x.start_time >= coalesce(v.since, '-infinity')
                 offset 0
             ) x))",
        &ids,
        &from as &[Option<DateTime<Utc>>]
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from fleet.stops where ctid = any(array(
             select x.ctid from unnest($1::int[], $2::timestamptz[]) as v(device_id, since)
             cross join lateral (
                 select ctid from fleet.stops x
                 where x.device_id = v.device_id and x.start_time >= coalesce(v.since, '-infinity')
                 offset 0
             ) x))",
        &ids,
        &from as &[Option<DateTime<Utc>>]
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_trips(tx: &mut PgConnection, t: &TripColumns) -> Result<(), sqlx::Error> {
    if t.device_id.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, moving_s, idle_s, max_speed_kmh, avg_speed_kmh,
             overspeed_count, overspeed_s, point_count, gap_s, end_reason, start_geofence,
             end_geofence)
         select * from unnest($1::int[], $2::timestamptz[], $3::timestamptz[], $4::float8[],
             $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::int[], $10::int[],
             $11::int[], $12::real[], $13::real[], $14::int[], $15::int[], $16::int[],
             $17::int[], $18::text[], $19::text[], $20::text[])",
        &t.device_id,
        &t.start,
        &t.end,
        &t.start_lat,
        &t.start_lon,
        &t.end_lat,
        &t.end_lon,
        &t.distance_m,
        &t.duration_s,
        &t.moving_s,
        &t.idle_s,
        &t.max_speed,
        &t.avg_speed,
        &t.overspeed_count,
        &t.overspeed_s,
        &t.point_count,
        &t.gap_s,
        &t.end_reason as &[&str],
        &t.start_geofence as &[Option<String>],
        &t.end_geofence as &[Option<String>],
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_stops(tx: &mut PgConnection, s: &StopColumns) -> Result<(), sqlx::Error> {
    if s.device_id.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into fleet.stops (device_id, start_time, end_time, lat, lon, kind, duration_s,
             idle_s, geofence)
         select * from unnest($1::int[], $2::timestamptz[], $3::timestamptz[], $4::float8[],
             $5::float8[], $6::text[], $7::int[], $8::int[], $9::text[])",
        &s.device_id,
        &s.start,
        &s.end,
        &s.lat,
        &s.lon,
        &s.kind as &[&str],
        &s.duration_s,
        &s.idle_s,
        &s.geofence as &[Option<String>],
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn replace_events(
    tx: &mut PgConnection,
    outputs: &[DeviceOutput],
) -> Result<(), sqlx::Error> {
    let replaced: Vec<&DeviceOutput> = outputs.iter().filter(|o| o.events_from.is_some()).collect();
    if replaced.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = replaced.iter().map(|o| o.device_id).collect();
    let from: Vec<Option<DateTime<Utc>>> = replaced.iter().map(|o| o.events_from).collect();
    sqlx::query!(
        "delete from fleet.geofence_events where ctid = any(array(
             select e.ctid from unnest($1::int[], $2::timestamptz[]) as v(device_id, since)
             cross join lateral (
                 select ctid from fleet.geofence_events e
                 where e.device_id = v.device_id and e.event_time >= v.since
                 offset 0
             ) e))",
        &ids,
        &from as &[Option<DateTime<Utc>>]
    )
    .execute(&mut *tx)
    .await?;
    let events: Vec<(i32, &GeofenceEvent)> =
        replaced.iter().flat_map(|o| o.events.iter().map(|e| (o.device_id, e))).collect();
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into fleet.geofence_events (device_id, event_time, geofence_id, event, lat, lon)
         select * from unnest($1::int[], $2::timestamptz[], $3::int[], $4::text[], $5::float8[],
             $6::float8[])
         on conflict do nothing",
        &events.iter().map(|e| e.0).collect::<Vec<_>>(),
        &events.iter().map(|e| e.1.time).collect::<Vec<_>>(),
        &events.iter().map(|e| e.1.geofence_id).collect::<Vec<_>>(),
        &events.iter().map(|e| e.1.kind.as_str()).collect::<Vec<_>>() as &[&str],
        &events.iter().map(|e| e.1.location.lat()).collect::<Vec<_>>(),
        &events.iter().map(|e| e.1.location.lon()).collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Clears the marks processed, locking them in device order first like the writer does, so the
/// two never deadlock; a mark whose version moved stays for the next pass.
async fn clear_backlog(tx: &mut PgConnection, outputs: &[DeviceOutput]) -> Result<(), sqlx::Error> {
    let marked: Vec<(i32, i64)> =
        outputs.iter().filter_map(|o| Some((o.device_id, o.version?))).collect();
    if marked.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = marked.iter().map(|m| m.0).collect();
    let versions: Vec<i64> = marked.iter().map(|m| m.1).collect();
    crate::analytics::clear_backlog(tx, &ids, &versions).await?;
    Ok(())
}
