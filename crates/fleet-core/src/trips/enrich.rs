//! A trip's and a stop's figures from their fixes.
//!
//! Each figure is a function of the segment's own fixes only: that is what lets a rebuild that
//! starts at a stop reproduce every later segment bit for bit.

use super::fix::{millis, seconds, Fix, Limits};
use super::{EndReason, Stop, StopKind, Trip, GAP_FACTOR};

/// Figures of the trip over `fixes` (its first to its last fix); `None` without fixes.
pub(crate) fn trip(fixes: &[Fix], end_reason: EndReason, limits: &Limits) -> Option<Trip> {
    let (first, last) = (fixes.first()?, fixes.last()?);
    let gap_over_ms = median_interval_ms(fixes).map(|m| m.saturating_mul(GAP_FACTOR));

    // The first fix's leg speed describes the leg before the trip, so only its reported speed
    // is the trip's.
    let speeds: Vec<Option<f64>> = fixes
        .iter()
        .enumerate()
        .map(|(i, f)| if i == 0 { f.speed_kmh } else { f.speed_kmh.or(f.leg_speed_kmh) })
        .collect();
    let above: Vec<bool> =
        speeds.iter().map(|s| s.is_some_and(|v| v > limits.speed_limit_kmh)).collect();

    let (mut distance_m, mut moving_ms, mut idle_ms, mut gap_ms, mut overspeed_ms) =
        (0.0, 0, 0, 0, 0);
    for (i, leg) in fixes.windows(2).enumerate() {
        let (a, b) = (&leg[0], &leg[1]);
        let dt = millis(a.time, b.time);
        // Trackers report less often once stationary, so only a long leg between two moving
        // fixes is lost coverage.
        let is_gap = a.moving && b.moving && gap_over_ms.is_some_and(|g| dt > g);
        if is_gap {
            gap_ms += dt;
        }
        if a.moving || b.moving {
            distance_m += a.location.distance_m(&b.location);
            moving_ms += dt;
        } else if a.engine_on {
            idle_ms += dt;
        }
        if above.get(i).copied().unwrap_or(false) && !is_gap {
            overspeed_ms += dt;
        }
    }
    let overspeed_count = above
        .iter()
        .enumerate()
        .filter(|&(i, &up)| up && (i == 0 || !above.get(i - 1).copied().unwrap_or(false)))
        .count();
    let max_speed_kmh = speeds.iter().flatten().copied().fold(0.0_f64, f64::max);
    let avg_speed_kmh = if moving_ms > 0 { distance_m / moving_ms as f64 * 3600.0 } else { 0.0 };

    Some(Trip {
        start: first.time,
        end: last.time,
        start_location: first.location,
        end_location: last.location,
        distance_m,
        duration_s: seconds(millis(first.time, last.time)),
        moving_s: seconds(moving_ms),
        idle_s: seconds(idle_ms),
        max_speed_kmh,
        avg_speed_kmh,
        overspeed_count: u32::try_from(overspeed_count).unwrap_or(u32::MAX),
        overspeed_s: seconds(overspeed_ms),
        point_count: u32::try_from(fixes.len()).unwrap_or(u32::MAX),
        gap_s: seconds(gap_ms),
        end_reason,
    })
}

/// Figures of the stop over `fixes` (its first to its last fix); `None` without fixes.
pub(crate) fn stop(fixes: &[Fix], limits: &Limits) -> Option<Stop> {
    let (first, last) = (fixes.first()?, fixes.last()?);
    let duration_ms = millis(first.time, last.time);
    // A long gap says nothing about the engine, so its time is not engine time.
    let idle_ms: i64 = fixes
        .windows(2)
        .map(|leg| (leg[0].engine_on, millis(leg[0].time, leg[1].time)))
        .filter(|(on, dt)| *on && *dt <= limits.long_gap_ms)
        .map(|(_, dt)| dt)
        .sum();
    let kind = if idle_ms >= limits.idle_min_ms && idle_ms > 0 && idle_ms * 2 > duration_ms {
        StopKind::Idling
    } else {
        StopKind::Parked
    };
    Some(Stop {
        start: first.time,
        end: last.time,
        location: first.location,
        kind,
        duration_s: seconds(duration_ms),
        idle_s: seconds(idle_ms),
    })
}

/// The median time between consecutive fixes, `None` with fewer than two fixes.
fn median_interval_ms(fixes: &[Fix]) -> Option<i64> {
    let mut intervals: Vec<i64> = fixes.windows(2).map(|l| millis(l[0].time, l[1].time)).collect();
    if intervals.is_empty() {
        return None;
    }
    intervals.sort_unstable();
    Some(intervals[intervals.len() / 2])
}
