//! Notification events the trip pass derives, stored and routed in the chunk's transaction:
//! geofence enter/exit (from the crossings written to `fleet.geofence_events`), after-hours
//! movement (a trip starting outside the vehicle's shift hours, judged by PostgreSQL in the
//! vehicle's timezone), sustained overspeed (a run of fixes above the vehicle's speed limit, or
//! the speed a rule asks for if higher, told when it has lasted each duration a rule asks for) and idling (a stop whose engine-on
//! time reaches each limit a rule asks for).
//!
//! Only what the pass read as *new* data is told: a cold re-derivation re-emits older segments
//! and crossings, which either were told already (same key, nothing happens) or happened before
//! any rule asked for them (and a rule never reaches back). A full rebuild tells nothing.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::notification::rule::same_kmh;
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

/// A run of fixes above a speed still going at the end of the fixes read: carried in the
/// device's warm builder to the next pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Speeding {
    pub start: DateTime<Utc>,
    pub max_kmh: f64,
}

/// The runs going on at the newest fix read, one per speed rules ask for (`None`: the
/// configured limit alone).
pub(crate) type SpeedingRuns = Vec<(Option<f64>, Speeding)>;

/// The key part naming the speed asked: none for the configured limit (`overspeed:<device>:
/// <run start>:<s>`), else `:<km/h>`.
fn kmh_key(asked: Option<f64>) -> String {
    asked.map(|k| format!(":{k}")).unwrap_or_default()
}

/// Sustained overspeed along `points` (in time order). For each distinct speed in `asks`
/// (pairs of duration in seconds and speed asked, `None`: the configured limit), a run of fixes
/// above the greater of `limit_kmh` and that speed is told once per duration of that speed it
/// reaches (key `overspeed:<device>:<run start>:<s>[:<km/h>]`, facts `limit_kmh` the speed
/// measured above, `asked_kmh` the speed asked), at the fix where it reached it, if that fix is
/// at or after `new_from` (`None`: tell nothing). "Above 100 km/h for 30 s" is thus told when
/// the vehicle has been above 100 km/h for 30 s, not when a run above the configured limit
/// that once touched 100 km/h lasts 30 s. `speeding` carries the runs over from the previous
/// fixes and is left describing the runs still going at the end.
pub(crate) fn overspeed_events(
    device_id: i32,
    points: &[TripPoint],
    limit_kmh: f64,
    asks: &[(i64, Option<f64>)],
    new_from: Option<DateTime<Utc>>,
    speeding: &mut SpeedingRuns,
) -> Vec<Event> {
    let mut speeds: Vec<Option<f64>> = Vec::new();
    for (_, k) in asks {
        if !speeds.iter().any(|s| same_kmh(*s, *k)) {
            speeds.push(*k);
        }
    }
    // runs of speeds no rule asks for any more end
    speeding.retain(|(k, _)| speeds.iter().any(|s| same_kmh(*s, *k)));
    let mut out: Vec<Event> = Vec::new();
    for asked in speeds {
        let above = asked.map_or(limit_kmh, |k| k.max(limit_kmh));
        let durations: Vec<i64> =
            asks.iter().filter(|(_, k)| same_kmh(*k, asked)).map(|(s, _)| *s).collect();
        let mut run =
            speeding.iter().position(|(k, _)| same_kmh(*k, asked)).map(|i| speeding.remove(i).1);
        for p in points {
            let speed = p.speed_kmh.map(f64::from).filter(|v| v.is_finite() && *v >= 0.0);
            match speed {
                Some(v) if v > above => {
                    let r = run.get_or_insert(Speeding { start: p.time, max_kmh: v });
                    r.max_kmh = r.max_kmh.max(v);
                    let r = *r;
                    let lasted = (p.time - r.start).num_seconds();
                    if new_from.is_none_or(|f| p.time < f) {
                        continue;
                    }
                    for t in durations.iter().filter(|t| lasted >= **t) {
                        let key = format!(
                            "overspeed:{device_id}:{}:{t}{}",
                            key_time(r.start),
                            kmh_key(asked)
                        );
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
                                limit_kmh: Some(above),
                                asked_kmh: asked,
                                max_speed_kmh: Some(r.max_kmh),
                                threshold_s: Some(*t),
                                ..Facts::default()
                            },
                        });
                    }
                }
                // a fix without a speed neither ends nor extends a run
                None => {}
                Some(_) => run = None,
            }
        }
        if let Some(r) = run {
            speeding.push((asked, r));
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
        let mut speeding = Vec::new();
        let all = Some(fix(-1000, 0.0).time);
        let asks = [(30, None), (60, None)];
        let a = overspeed_events(7, &first, 80.0, &asks, all, &mut speeding);
        // above from 15 s; 30 s later (at 45 s) the first threshold is reached
        assert_eq!(a.iter().map(|e| e.facts.threshold_s).collect::<Vec<_>>(), [Some(30)]);
        assert_eq!(a[0].facts.duration_s, Some(30));
        assert!(!speeding.is_empty(), "still speeding at the end of the pass");
        let b = overspeed_events(7, &second, 80.0, &asks, all, &mut speeding);
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
        assert!(speeding.is_empty(), "the run ended below the limit");
        // nothing before the new data is told
        let mut s = Vec::new();
        let late = Some(fix(1000, 0.0).time);
        assert!(overspeed_events(7, &first, 80.0, &[(30, None)], late, &mut s).is_empty());
    }

    #[test]
    fn a_rule_asking_for_a_speed_is_told_of_the_run_above_that_speed() {
        // above the limit (80) from 0 s; above 100 from 30 s to 75 s (top 130 at 15 s)
        let kmh = [95.0, 130.0, 90.0, 105.0, 110.0, 120.0, 115.0, 108.0, 101.0, 85.0];
        let points: Vec<TripPoint> =
            kmh.iter().enumerate().map(|(i, v)| fix(i as i64 * 15, *v)).collect();
        let all = Some(fix(-1000, 0.0).time);
        let asks = [(30, None), (30, Some(100.0)), (60, Some(100.0)), (30, Some(60.0))];
        let mut speeding = Vec::new();
        let events = overspeed_events(7, &points, 80.0, &asks, all, &mut speeding);
        let above_100: Vec<&Event> =
            events.iter().filter(|e| e.facts.asked_kmh == Some(100.0)).collect();
        // the 130 km/h peak at 15 s is no run above 100 for 30 s: the run starts at 45 s
        // (105 km/h) and reaches 30 s at 75 s, 60 s at 105 s
        let run_start = key_time(fix(45, 0.0).time);
        assert_eq!(
            above_100.iter().map(|e| (e.facts.threshold_s, e.time)).collect::<Vec<_>>(),
            [(Some(30), fix(75, 0.0).time), (Some(60), fix(105, 0.0).time)],
            "{events:#?}"
        );
        assert_eq!(above_100[0].key, format!("overspeed:7:{run_start}:30:100"));
        assert_eq!(above_100[0].facts.limit_kmh, Some(100.0));
        assert_eq!(above_100[1].facts.max_speed_kmh, Some(120.0));
        // above the configured limit alone: from 0 s (until 30 s), told at 30 s
        let limit: Vec<&Event> = events.iter().filter(|e| e.facts.asked_kmh.is_none()).collect();
        assert_eq!(limit.len(), 1);
        assert_eq!(limit[0].time, fix(30, 0.0).time);
        assert_eq!(limit[0].facts.limit_kmh, Some(80.0));
        // a speed below the configured limit is measured above the limit
        let low: Vec<&Event> = events.iter().filter(|e| e.facts.asked_kmh == Some(60.0)).collect();
        assert_eq!(low.len(), 1);
        assert_eq!(low[0].facts.limit_kmh, Some(80.0));
        assert_eq!(limit[0].key, format!("overspeed:7:{}:30", key_time(fix(0, 0.0).time)));
        // the runs above 80 km/h go on at 85 km/h; the run above 100 ended
        assert_eq!(speeding.len(), 2, "{speeding:?}");
        assert!(speeding.iter().all(|(k, _)| *k != Some(100.0)));
    }
}
