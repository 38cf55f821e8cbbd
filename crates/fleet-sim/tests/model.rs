//! The simulated fleet: deterministic, self-consistent and plausible.

use chrono::{NaiveDate, TimeZone, Utc};
use fleet_sim::model::plan::{local_midnight, Activity};
use fleet_sim::Fleet;

fn ts(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid time").timestamp()
}

fn history_text(fleet: &Fleet, from: i64, to: i64) -> String {
    let mut out = String::new();
    for v in fleet.vehicles() {
        for f in fleet.history(v.index, from, to) {
            out.push_str(&format!("{} {:?}\n", v.imei, f));
        }
        for a in fleet.alarms(v.index, from, to) {
            out.push_str(&format!("{} {:?}\n", v.imei, a));
        }
    }
    out
}

#[test]
fn the_same_seed_gives_byte_identical_histories_and_another_seed_does_not() {
    let (from, to) = (ts(2026, 11, 23, 0, 0), ts(2026, 11, 25, 0, 0));
    let a = history_text(&Fleet::new(7, 12), from, to);
    let b = history_text(&Fleet::new(7, 12), from, to);
    assert!(a.len() > 10_000, "a working day produces plenty of fixes");
    assert_eq!(a, b);
    assert_ne!(a, history_text(&Fleet::new(8, 12), from, to));
}

#[test]
fn a_day_generated_alone_equals_the_same_day_inside_a_longer_range() {
    let fleet = Fleet::new(3, 5);
    let day = (ts(2026, 11, 24, 0, 0), ts(2026, 11, 24, 23, 59));
    for v in fleet.vehicles() {
        let alone = fleet.history(v.index, day.0, day.1);
        let fresh = Fleet::new(3, 5);
        let within: Vec<_> = fresh
            .history(v.index, day.0 - 3 * 86_400, day.1 + 86_400)
            .into_iter()
            .filter(|f| f.time >= day.0 && f.time <= day.1)
            .collect();
        assert_eq!(alone, within);
    }
}

#[test]
fn the_live_location_at_any_instant_is_the_last_fix_of_the_history_up_to_it() {
    let fleet = Fleet::new(11, 15);
    let start = ts(2026, 11, 24, 0, 0);
    for v in fleet.vehicles() {
        for k in 0..40 {
            let at = start + k * 2_137 + v.index as i64 * 61;
            let history = fleet.history(v.index, at - 3 * 86_400, at);
            assert_eq!(
                fleet.latest(v.index, at),
                history.last().cloned(),
                "vehicle {} at {at}",
                v.index
            );
        }
    }
}

#[test]
fn vehicles_drive_on_workdays_at_road_speeds_and_spend_the_night_parked_at_home() {
    let fleet = Fleet::new(5, 30);
    let tuesday = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
    let mut drivers = 0;
    for v in fleet.vehicles() {
        let plan = fleet.plan(v.index, tuesday);
        assert_eq!(plan.segments.first().map(|s| s.start), Some(local_midnight(tuesday)));
        assert_eq!(plan.segments.last().map(|s| s.end), Some(local_midnight(tuesday) + 86_400));
        for w in plan.segments.windows(2) {
            assert_eq!(w[0].end, w[1].start, "segments tile the day");
        }
        let first = &plan.segments[0];
        let last = &plan.segments[plan.segments.len() - 1];
        assert!(
            matches!(first.activity, Activity::Parked) && matches!(last.activity, Activity::Parked)
        );
        assert!(first.at.distance_m(&last.at) < 1.0, "ends the day where it started: home");
        let drives =
            plan.segments.iter().filter(|s| matches!(s.activity, Activity::Drive(_))).count();
        if drives >= 2 {
            drivers += 1;
        }
        for f in fleet.history(v.index, plan.start, plan.end - 1) {
            assert!(f.speed_kmh >= 0.0 && f.speed_kmh < 140.0, "{f:?}");
            assert!(f.satellites >= 5);
        }
    }
    assert!(drivers >= 27, "nearly every vehicle works on a Tuesday: {drivers}");
}

#[test]
fn parked_fixes_jitter_by_metres_and_some_devices_lack_ignition_or_gps() {
    let fleet = Fleet::new(9, 200);
    let night = (ts(2026, 11, 24, 0, 0), ts(2026, 11, 24, 3, 0));
    let v = fleet.vehicles().iter().find(|v| v.reports_gps).expect("a reporting vehicle");
    let fixes = fleet.history(v.index, night.0, night.1);
    assert!(fixes.len() >= 8, "a parked tracker still reports: {}", fixes.len());
    let spread =
        fixes.iter().map(|f| f.position.distance_m(&fixes[0].position)).fold(0.0, f64::max);
    assert!(spread > 0.5 && spread < 30.0, "jitter of a few metres: {spread}");
    assert!(fleet.vehicles().iter().any(|v| !v.has_acc), "some trackers have no ignition wire");
    assert!(fleet.vehicles().iter().any(|v| !v.reports_gps), "some trackers never get a fix");
    let silent = fleet.vehicles().iter().find(|v| !v.reports_gps).expect("silent vehicle");
    assert!(fleet.history(silent.index, night.0, night.0 + 86_400).is_empty());
    let cities: std::collections::HashSet<usize> =
        fleet.vehicles().iter().map(|v| v.city).collect();
    assert_eq!(cities.len(), 3);
    let nairobi = fleet.vehicles().iter().filter(|v| v.city == 0).count();
    assert!(nairobi > 90, "most vehicles are in Nairobi: {nairobi}");
}

#[test]
fn alarms_come_from_the_documented_codes_and_overspeed_matches_fast_driving() {
    let fleet = Fleet::new(21, 40);
    let (from, to) = (ts(2026, 11, 16, 0, 0), ts(2026, 11, 22, 0, 0));
    let known = ["1", "2", "3", "6", "41", "48", "90", "in", "out"];
    let mut codes = std::collections::HashSet::new();
    for v in fleet.vehicles() {
        for a in fleet.alarms(v.index, from, to) {
            assert!(known.contains(&a.code), "{a:?}");
            if a.code == "6" {
                assert!(a.speed_kmh > 60.0, "overspeed raised while driving fast: {a:?}");
            }
            codes.insert(a.code);
        }
    }
    // SOS and power cut now and then: the demo's default notification rule tells of them
    for expected in ["6", "in", "out", "1", "2"] {
        assert!(codes.contains(expected), "a week of 40 vehicles raises {expected}: {codes:?}");
    }
}
