//! Notification events the trip pass derives, stored and routed in the chunk's transaction:
//! geofence enter/exit (from the crossings written to `fleet.geofence_events`) and after-hours
//! movement (a trip starting outside the vehicle's shift hours, judged by PostgreSQL in the
//! vehicle's timezone).
//!
//! Only what the pass read as *new* data is told: a cold re-derivation re-emits older segments
//! and crossings, which either were told already (same key, nothing happens) or happened before
//! any rule asked for them (and a rule never reaches back). A full rebuild tells nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_core::{CrossingKind, Geofences, Segment};
use fleet_db::notifications::derive::{self, key_time};
use fleet_db::notifications::events;
use fleet_db::notifications::route::Rules;
use fleet_db::segments::DeviceOutput;
use sqlx::PgConnection;

/// Derives, stores and routes the chunk's events; returns the in-app notifications written,
/// for the change notice. `new_from`: per device, where its new data starts (absent: tell
/// nothing of it).
pub(crate) async fn record(
    conn: &mut PgConnection,
    outputs: &[DeviceOutput],
    new_from: &HashMap<i32, DateTime<Utc>>,
    fences: &Geofences,
    now: DateTime<Utc>,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    let rules = Rules::load(conn).await?;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    if rules.wants(EventKind::GeofenceEnter) || rules.wants(EventKind::GeofenceExit) {
        out.extend(geofence_events(outputs, new_from, fences));
    }
    if rules.wants(EventKind::AfterHours) {
        let starts = trip_starts(outputs, new_from);
        out.extend(derive::after_hours(conn, &starts).await?);
    }
    if out.is_empty() {
        return Ok(Vec::new());
    }
    Ok(events::record(conn, &rules, &out, now).await?.routed.inbox)
}

/// Crossings at or after each device's new data, as `geofence.enter` / `geofence.exit` events
/// (key `geofence:<device>:<geofence>:<enter|exit>:<time>`).
fn geofence_events(
    outputs: &[DeviceOutput],
    new_from: &HashMap<i32, DateTime<Utc>>,
    fences: &Geofences,
) -> Vec<Event> {
    let mut out = Vec::new();
    for o in outputs {
        let Some(from) = new_from.get(&o.device_id) else { continue };
        for e in o.events.iter().filter(|e| e.time >= *from) {
            let kind = match e.kind {
                CrossingKind::Enter => EventKind::GeofenceEnter,
                CrossingKind::Exit => EventKind::GeofenceExit,
            };
            out.push(Event {
                key: format!(
                    "geofence:{}:{}:{}:{}",
                    o.device_id,
                    e.geofence_id,
                    e.kind.as_str(),
                    key_time(e.time)
                ),
                device_id: o.device_id,
                time: e.time,
                kind,
                facts: Facts {
                    lat: Some(e.location.lat()),
                    lon: Some(e.location.lon()),
                    geofence_id: Some(e.geofence_id),
                    geofence_name: fences.name_of(e.geofence_id).map(str::to_owned),
                    ..Facts::default()
                },
            });
        }
    }
    out
}

/// A trip is confirmed some fixes after it started, so trips starting this long before the new
/// data are still considered (their keys make a second look a no-op).
const TRIP_CONFIRM_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Trips (the open one included, so movement is told while it happens) starting at or after
/// each device's new data, less [`TRIP_CONFIRM_MARGIN`]: (device, start, lat, lon).
fn trip_starts(
    outputs: &[DeviceOutput],
    new_from: &HashMap<i32, DateTime<Utc>>,
) -> Vec<derive::TripStart> {
    let mut out = Vec::new();
    for o in outputs {
        let Some(from) = new_from.get(&o.device_id) else { continue };
        for t in o
            .segments
            .iter()
            .filter_map(Segment::as_trip)
            .filter(|t| t.start >= *from - TRIP_CONFIRM_MARGIN)
        {
            out.push((o.device_id, t.start, t.start_location.lat(), t.start_location.lon()));
        }
    }
    out
}
