//! Notification events the trip pass derives, stored and routed in the chunk's transaction:
//! geofence enter/exit (from the crossings written to `fleet.geofence_events`), after-hours
//! movement (a trip starting outside the vehicle's shift hours, judged by PostgreSQL in the
//! vehicle's timezone), sustained overspeed (a run of fixes above the vehicle's speed limit,
//! told when it has lasted each duration a rule asks for) and idling (a stop whose engine-on
//! time reaches each limit a rule asks for).
//!
//! Only what the pass read as *new* data is told: a cold re-derivation re-emits older segments
//! and crossings, which either were told already (same key, nothing happens) or happened before
//! any rule asked for them (and a rule never reaches back). A full rebuild tells nothing.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_core::{CrossingKind, Geofences, Segment, TripPoint};
use fleet_db::notifications::derive::{self, key_time};
use fleet_db::notifications::events;
use fleet_db::notifications::route::Rules;
use fleet_db::segments::DeviceOutput;
use sqlx::PgConnection;

/// Derives, stores and routes the chunk's events (with `found`, the overspeed events the pass
/// derived from its fixes); returns the in-app notifications written, for the change notice.
/// `new_from`: per device, where its new data starts (absent: tell nothing of it).
pub(crate) async fn record(
    conn: &mut PgConnection,
    rules: &Rules,
    outputs: &[DeviceOutput],
    new_from: &HashMap<i32, DateTime<Utc>>,
    fences: &Geofences,
    found: Vec<Event>,
    now: DateTime<Utc>,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = found;
    let idle = rules.idle_thresholds();
    if !idle.is_empty() {
        out.extend(idling_events(outputs, new_from, &idle));
    }
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
    Ok(events::record(conn, rules, &out, now).await?.routed.inbox)
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

/// Stops extended by the new data whose engine-on time reached a limit in `thresholds`: one
/// `idling` event per stop and limit (key `idling:<device>:<stop start>:<limit s>`), at the
/// moment the limit was reached if the engine ran from the start (at the latest, the stop's
/// end).
fn idling_events(
    outputs: &[DeviceOutput],
    new_from: &HashMap<i32, DateTime<Utc>>,
    thresholds: &[i64],
) -> Vec<Event> {
    let mut out = Vec::new();
    for o in outputs {
        let Some(from) = new_from.get(&o.device_id) else { continue };
        for stop in o.segments.iter().filter_map(Segment::as_stop).filter(|s| s.end >= *from) {
            for t in thresholds.iter().filter(|t| stop.idle_s >= **t) {
                out.push(Event {
                    key: format!("idling:{}:{}:{t}", o.device_id, key_time(stop.start)),
                    device_id: o.device_id,
                    time: (stop.start + TimeDelta::seconds(*t)).min(stop.end),
                    kind: EventKind::Idling,
                    facts: Facts {
                        lat: Some(stop.location.lat()),
                        lon: Some(stop.location.lon()),
                        duration_s: Some(stop.idle_s),
                        threshold_s: Some(*t),
                        ..Facts::default()
                    },
                });
            }
        }
    }
    out
}

/// A run of fixes above the speed limit still going at the end of the fixes read: carried in
/// the device's warm builder to the next pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Speeding {
    pub start: DateTime<Utc>,
    pub max_kmh: f64,
}

/// Sustained overspeed along `points` (in time order): a run of fixes above `limit_kmh`, told
/// once per duration in `thresholds` it reaches (key `overspeed:<device>:<run start>:<s>`), at
/// the fix where it reached it, if that fix is at or after `new_from` (`None`: tell nothing). `speeding` carries a run
/// over from the previous fixes and is left describing the run still going at the end.
pub(crate) fn overspeed_events(
    device_id: i32,
    points: &[TripPoint],
    limit_kmh: f64,
    thresholds: &[i64],
    new_from: Option<DateTime<Utc>>,
    speeding: &mut Option<Speeding>,
) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for p in points {
        let speed = p.speed_kmh.map(f64::from).filter(|v| v.is_finite() && *v >= 0.0);
        match speed {
            Some(v) if v > limit_kmh => {
                let run = speeding.get_or_insert(Speeding { start: p.time, max_kmh: v });
                run.max_kmh = run.max_kmh.max(v);
                let run = *run;
                let lasted = (p.time - run.start).num_seconds();
                if new_from.is_none_or(|f| p.time < f) {
                    continue;
                }
                for t in thresholds.iter().filter(|t| lasted >= **t) {
                    let key = format!("overspeed:{device_id}:{}:{t}", key_time(run.start));
                    if out.iter().any(|e| e.key == key) {
                        continue;
                    }
                    out.push(Event {
                        key,
                        device_id,
                        time: p.time,
                        kind: EventKind::Overspeed,
                        facts: Facts {
                            lat: Some(p.location.lat()),
                            lon: Some(p.location.lon()),
                            speed_kmh: Some(v),
                            duration_s: Some(lasted),
                            limit_kmh: Some(limit_kmh),
                            max_speed_kmh: Some(run.max_kmh),
                            threshold_s: Some(*t),
                            ..Facts::default()
                        },
                    });
                }
            }
            // a fix without a speed neither ends nor extends a run
            None => {}
            Some(_) => *speeding = None,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_core::LatLon;

    use super::*;

    fn fix(s: i64, kmh: f32) -> TripPoint {
        TripPoint {
            time: Utc.timestamp_opt(1_800_000_000 + s, 0).single().expect("time"),
            location: LatLon::new(-1.28, 36.82).expect("valid"),
            speed_kmh: Some(kmh),
            ignition: Some(true),
        }
    }

    #[test]
    fn a_run_above_the_limit_is_told_once_per_threshold_across_passes() {
        let first: Vec<TripPoint> =
            (0..4).map(|i| fix(i * 15, if i == 0 { 60.0 } else { 95.0 })).collect();
        let second: Vec<TripPoint> =
            (4..10).map(|i| fix(i * 15, if i < 8 { 110.0 } else { 70.0 })).collect();
        let mut speeding = None;
        let all = Some(fix(-1000, 0.0).time);
        let a = overspeed_events(7, &first, 80.0, &[30, 60], all, &mut speeding);
        // above from 15 s; 30 s later (at 45 s) the first threshold is reached
        assert_eq!(a.iter().map(|e| e.facts.threshold_s).collect::<Vec<_>>(), [Some(30)]);
        assert_eq!(a[0].facts.duration_s, Some(30));
        assert!(speeding.is_some(), "still speeding at the end of the pass");
        let b = overspeed_events(7, &second, 80.0, &[30, 60], all, &mut speeding);
        // the same run (same key start) reaches 60 s at 75 s; the 30 s event is repeated with
        // the same key (a no-op when stored)
        let keys: Vec<&str> = b.iter().map(|e| e.key.as_str()).collect();
        assert!(
            keys.iter()
                .all(|k| k.starts_with("overspeed:7:") && k.contains(&key_time(fix(15, 0.0).time))),
            "{keys:?}"
        );
        assert!(b
            .iter()
            .any(|e| e.facts.threshold_s == Some(60) && e.facts.max_speed_kmh == Some(110.0)));
        assert!(speeding.is_none(), "the run ended below the limit");
        // nothing before the new data is told
        let mut s = None;
        assert!(
            overspeed_events(7, &first, 80.0, &[30], Some(fix(1000, 0.0).time), &mut s).is_empty()
        );
    }
}
