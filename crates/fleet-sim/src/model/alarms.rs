//! Alarms a vehicle raises during a day, drawn from the vendor's documented codes and tied to
//! what the vehicle does: overspeed on fast legs, harsh driving for aggressive drivers, depot
//! geofence exit and entry, and occasional SOS, power-cut, vibration and low-battery alarms.

use chrono::Datelike;
use fleet_core::LatLon;
use rand::Rng;

use super::city::CITIES;
use super::plan::{Activity, DayPlan, PlannedAlarm};
use super::rng::{rng, tag, Draw};
use super::vehicle::Vehicle;

/// Speed above which a tracker raises its overspeed alarm, km/h.
pub const OVERSPEED_KMH: f64 = 80.0;

fn close(a: LatLon, b: LatLon) -> bool {
    a.distance_m(&b) < 5.0
}

/// The alarms of one planned day, in time order.
pub fn plan_alarms(seed: u64, v: &Vehicle, plan: &DayPlan) -> Vec<PlannedAlarm> {
    let mut r = rng(&[seed, tag::ALARMS, v.index as u64, plan.date.num_days_from_ce() as u64]);
    let home = CITIES[v.city].position(seed, v.city, v.home);
    let mut out = Vec::new();
    let mut alarm = |time: f64, code: &'static str, name: &'static str| {
        out.push(PlannedAlarm { time: time as i64, code, name });
    };
    for seg in &plan.segments {
        match &seg.activity {
            Activity::Drive(legs) => {
                if let Some(fast) = legs.iter().find(|l| l.cruise * 3.6 > OVERSPEED_KMH) {
                    alarm(fast.start + fast.travel_s() / 2.0, "6", "Overspeed alert(terminal)");
                }
                if v.aggressive && r.chance(0.35) {
                    alarm(seg.start as f64 + 4.0, "41", "Sudden Acceleration Alert");
                }
                if v.aggressive && r.chance(0.35) {
                    if let Some(stop) = legs.iter().find(|l| l.halt_s > 0.0) {
                        alarm(
                            stop.start + stop.travel_s() - 2.0,
                            "48",
                            "Sudden Deceleration Alert",
                        );
                    }
                }
                if v.depot_fence && close(seg.at, home) {
                    alarm(seg.start as f64 + 30.0, "out", "Exit geo-fence");
                }
                if v.depot_fence && legs.last().is_some_and(|l| close(l.to, home)) {
                    alarm(seg.end as f64 - 20.0, "in", "Enter geo-fence");
                }
                // a few a day across the demo's fleet, so its notifications have something to tell
                if r.chance(0.012) {
                    alarm(r.between(seg.start as f64, seg.end as f64), "1", "SOS alert");
                }
            }
            Activity::Parked => {
                let long = seg.end - seg.start > 4 * 3600;
                if long && r.chance(0.02) {
                    alarm(r.between(seg.start as f64, seg.end as f64), "3", "Vibration alert");
                }
                if r.chance(0.008) {
                    alarm(r.between(seg.start as f64, seg.end as f64), "2", "Power cut off alert");
                }
            }
            Activity::Idle => {}
        }
    }
    if r.chance(0.01) {
        let t = r.gen_range(plan.start..plan.end);
        alarm(t as f64, "90", "Low battery alert");
    }
    out.retain(|a| a.time >= plan.start && a.time < plan.end && !plan.is_silent(a.time));
    out.sort_by_key(|a| a.time);
    out.dedup_by_key(|a| (a.time, a.code));
    out
}
