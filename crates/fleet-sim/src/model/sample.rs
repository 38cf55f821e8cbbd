//! The fixes a tracker reports: samples of the day plan at the tracker's interval (every few
//! seconds while driving, each minute while idling, every 20 minutes while parked), with GPS
//! noise, none inside silent windows. The latest fix at any instant is computed directly, so it
//! always equals the last fix of the history up to that instant.

use fleet_core::LatLon;

use super::plan::{Activity, DayPlan, Segment};
use super::rng::{hash, mix, tag, unit};
use super::vehicle::Vehicle;

/// Seconds between fixes while idling.
pub const IDLE_INTERVAL_S: i64 = 60;
/// Seconds between fixes while parked.
pub const PARKED_INTERVAL_S: i64 = 1200;

/// One reported fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// Unix seconds (GPS time).
    pub time: i64,
    pub position: LatLon,
    pub speed_kmh: f64,
    pub course_deg: f64,
    /// `None` when the tracker's ACC input is not wired.
    pub ignition: Option<bool>,
    pub satellites: u8,
}

fn interval(v: &Vehicle, seg: &Segment) -> i64 {
    match seg.activity {
        Activity::Drive(_) => v.interval_s,
        Activity::Idle => IDLE_INTERVAL_S,
        Activity::Parked => PARKED_INTERVAL_S,
    }
}

/// The fix at sample time `t` of segment `seg`.
fn fix_at(seed: u64, v: &Vehicle, seg: &Segment, t: i64) -> Fix {
    let (pos, speed, course) = seg.state_at(t as f64);
    let h = hash(&[seed, tag::NOISE, v.index as u64, t as u64]);
    let parked = !matches!(seg.activity, Activity::Drive(_));
    // GPS jitter: a few metres while moving, more while standing (multipath, no averaging)
    let jitter_m = if parked { 8.0 } else { 2.5 };
    let dlat = (unit(h) - 0.5) * 2.0 * jitter_m / 111_320.0;
    let dlon = (unit(mix(h)) - 0.5) * 2.0 * jitter_m / (111_320.0 * pos.lat().to_radians().cos());
    let position = LatLon::new(pos.lat() + dlat, pos.lon() + dlon).unwrap_or(pos);
    let noise = unit(mix(mix(h)));
    let speed_kmh = if parked {
        // a parked tracker now and then reports a small phantom speed
        if noise < 0.1 {
            1.0 + noise * 30.0
        } else {
            0.0
        }
    } else {
        (speed + (noise - 0.5) * 2.0).max(0.0)
    };
    Fix {
        time: t,
        position,
        speed_kmh: (speed_kmh * 10.0).round() / 10.0,
        course_deg: (course * 10.0).round() / 10.0 % 360.0,
        ignition: v.has_acc.then(|| seg.ignition()),
        satellites: 5 + (mix(h ^ 0xA5) % 9) as u8,
    }
}

/// The fixes of the day with `from <= time <= to`, in time order. Only the segments that
/// overlap the range are sampled.
pub fn fixes_between(seed: u64, v: &Vehicle, plan: &DayPlan, from: i64, to: i64) -> Vec<Fix> {
    if !v.reports_gps || to < from {
        return Vec::new();
    }
    let mut out = Vec::new();
    let first = plan.segments.partition_point(|s| s.end <= from);
    for seg in plan.segments[first..].iter().take_while(|s| s.start <= to) {
        let step = interval(v, seg);
        // first sample time of the segment at or after `from`
        let skip = (from - seg.start).max(0);
        let mut t = seg.start + (skip + step - 1) / step * step;
        while t < seg.end && t <= to {
            if !plan.is_silent(t) {
                out.push(fix_at(seed, v, seg, t));
            }
            t += step;
        }
    }
    out
}

/// The newest fix at or before `t` within this day, if there is one.
pub fn last_fix_in_day(seed: u64, v: &Vehicle, plan: &DayPlan, t: i64) -> Option<Fix> {
    if !v.reports_gps || t < plan.start {
        return None;
    }
    let mut limit = t.min(plan.end - 1);
    let mut idx = plan.segments.partition_point(|s| s.end <= limit);
    idx = idx.min(plan.segments.len().checked_sub(1)?);
    loop {
        let seg = &plan.segments[idx];
        let step = interval(v, seg);
        if limit >= seg.start {
            let mut cand = seg.start + (limit - seg.start) / step * step;
            loop {
                match plan.silent.iter().find(|&&(a, b)| cand >= a && cand < b) {
                    None => return Some(fix_at(seed, v, seg, cand)),
                    Some(&(a, _)) if a > seg.start => {
                        cand = seg.start + (a - 1 - seg.start) / step * step
                    }
                    Some(_) => break,
                }
            }
        }
        idx = idx.checked_sub(1)?;
        limit = plan.segments[idx].end - 1;
    }
}
