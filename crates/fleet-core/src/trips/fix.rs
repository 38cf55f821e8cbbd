//! A fix as the trip rules see it, and the thresholds in the units the rules compare in.

use chrono::{DateTime, Utc};

use super::TripPoint;
use crate::{AnalyticsSettings, LatLon};

/// [`AnalyticsSettings`] in milliseconds and plain numbers. Negative values (which validation
/// rejects anyway) are read as zero so that no input can make the rules misbehave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Limits {
    pub speed_limit_kmh: f64,
    pub moving_speed_kmh: f64,
    pub work_stop_ms: i64,
    pub long_gap_ms: i64,
    pub idle_min_ms: i64,
    pub min_trip_distance_m: f64,
    pub min_trip_ms: i64,
    pub motion_confirm_m: f64,
}

fn ms(seconds: i32) -> i64 {
    i64::from(seconds.max(0)) * 1000
}

fn non_negative(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v
    } else {
        0.0
    }
}

impl Limits {
    pub fn new(s: &AnalyticsSettings) -> Self {
        Self {
            speed_limit_kmh: non_negative(s.speed_limit_kmh),
            moving_speed_kmh: non_negative(s.moving_speed_kmh),
            work_stop_ms: ms(s.work_stop_min_s),
            long_gap_ms: ms(s.long_gap_s),
            idle_min_ms: ms(s.idle_min_s),
            min_trip_distance_m: non_negative(s.min_trip_distance_m),
            min_trip_ms: ms(s.min_trip_duration_s),
            motion_confirm_m: non_negative(s.motion_confirm_distance_m),
        }
    }
}

/// One fix with what the rules derive from it and its predecessor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fix {
    pub time: DateTime<Utc>,
    pub location: LatLon,
    /// Reported speed, when usable.
    pub speed_kmh: Option<f64>,
    /// Speed implied by the leg from the previous fix; `None` for the first fix of the data or
    /// after a long gap.
    pub leg_speed_kmh: Option<f64>,
    pub engine_on: bool,
    pub moving: bool,
}

impl Fix {
    /// Derives a fix. `prev` is the previous fix unless a long gap separates them.
    pub fn new(p: &TripPoint, prev: Option<&Fix>, limits: &Limits) -> Self {
        let speed_kmh = p.speed_kmh.map(f64::from).filter(|v| v.is_finite() && *v >= 0.0);
        let leg_speed_kmh = prev.and_then(|q| {
            let dt = millis(q.time, p.time);
            (dt > 0).then(|| q.location.distance_m(&p.location) / dt as f64 * 3600.0)
        });
        let moving = speed_kmh.or(leg_speed_kmh).is_some_and(|v| v >= limits.moving_speed_kmh);
        Self {
            time: p.time,
            location: p.location,
            speed_kmh,
            leg_speed_kmh,
            engine_on: p.ignition == Some(true),
            moving,
        }
    }
}

/// Milliseconds from `a` to `b`.
pub(crate) fn millis(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_milliseconds()
}

/// Milliseconds as whole seconds, rounded half up (durations are never negative here).
pub(crate) fn seconds(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

/// The points in time order; of points sharing a time, the first given is kept.
pub(crate) fn sorted_unique(points: &[TripPoint]) -> Vec<TripPoint> {
    let mut sorted = points.to_vec();
    // stable, so equal times keep their input order and dedup keeps the first of them
    sorted.sort_by_key(|p| p.time);
    sorted.dedup_by_key(|p| p.time);
    sorted
}
