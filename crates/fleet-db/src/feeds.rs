//! The vendor's other feeds, stored as they arrive: heartbeats, session events, cell fixes,
//! sensor readings and the vendor's own trips. Each insert ignores a record already stored
//! (redelivery), and returns how many rows it added (0 or 1).

use fleet_core::record::{CellFix, DeviceEvent, Heartbeat, SensorReading, VendorTrip};
use sqlx::PgConnection;

pub async fn heartbeat(
    conn: &mut PgConnection,
    device_id: i32,
    h: &Heartbeat,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "insert into fleet.heartbeats (device_id, gate_time, power_level, gsm_signal, ignition, extra)
         values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
        device_id,
        h.gate_time,
        h.power_level,
        h.gsm_signal,
        h.ignition,
        h.extra.as_ref()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn event(
    conn: &mut PgConnection,
    device_id: i32,
    e: &DeviceEvent,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "insert into fleet.device_events (device_id, event_time, event_type, timezone, extra)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
        device_id,
        e.time,
        e.kind.as_str(),
        e.timezone.as_deref(),
        e.extra.as_ref()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn cell_fix(
    conn: &mut PgConnection,
    device_id: i32,
    c: &CellFix,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "insert into fleet.cell_fixes (device_id, gate_time, fix_kind, cells, extra)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
        device_id,
        c.gate_time,
        c.fix_kind.as_deref(),
        c.cells.as_ref(),
        c.extra.as_ref()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn sensor_reading(
    conn: &mut PgConnection,
    device_id: i32,
    s: &SensorReading,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "insert into fleet.sensor_readings (device_id, reading_time, kind, item)
         values ($1, $2, $3, $4) on conflict do nothing",
        device_id,
        s.time,
        s.kind.as_str(),
        &s.item
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A vendor trip; `pushed` tells a pushed trip report (source `push`) from a polled one.
pub async fn vendor_trip(
    conn: &mut PgConnection,
    device_id: i32,
    t: &VendorTrip,
    pushed: bool,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "insert into fleet.vendor_trips (device_id, start_time, end_time, start_lat, start_lon,
             end_lat, end_lon, distance_m, duration_s, avg_speed_kmh, max_speed_kmh, source, extra)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) on conflict do nothing",
        device_id,
        t.start_time,
        t.end_time,
        t.start.map(|l| l.lat()),
        t.start.map(|l| l.lon()),
        t.end.map(|l| l.lat()),
        t.end.map(|l| l.lon()),
        t.distance_m,
        t.duration_s.and_then(|d| i32::try_from(d).ok()),
        t.avg_speed_kmh,
        t.max_speed_kmh,
        if pushed { "push" } else { "poll" },
        t.extra.as_ref()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
