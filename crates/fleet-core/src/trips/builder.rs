//! The incremental trip builder: a fold over one device's fixes in time order.
//!
//! The builder is either *stopped* (the vehicle stands; motion is a candidate until confirmed) or
//! *moving* (a confirmed trip, possibly halted for less than a work stop). It keeps the fixes
//! from the start of the first segment it has not emitted yet, because trip starts and ends are
//! back-dated to fixes it has already passed.
//!
//! When a work stop is confirmed, the builder resets to exactly the state a fresh builder has
//! after reading the fixes from the halt to the confirming fix: a stopped state anchored at the
//! halt, with those fixes replayed. That is what makes a stop start a safe place to re-derive
//! from ([`super::restart_point`]). The replayed fixes are all stationary, so a replay never
//! confirms a trip.

use chrono::{DateTime, Utc};

use super::enrich;
use super::fix::{millis, sorted_unique, Fix, Limits};
use super::{EndReason, Segment, TripPoint, PARKED_SPOT_RADIUS_M};
use crate::{AnalyticsSettings, LatLon};

/// A batch held fixes at or before the newest fix the builder has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fixes from {earliest} are not newer than the last fix read ({last}); re-derive from restart_point")]
pub struct LateData {
    /// The batch's earliest fix: pass it to [`super::restart_point`].
    pub earliest: DateTime<Utc>,
    /// The newest fix the builder had read.
    pub last: DateTime<Utc>,
}

/// Builds one device's segments incrementally.
///
/// Push batches in time order; each push returns the segments that became final. A segment is
/// final once no later fix can change it. [`TripBuilder::tail`] shows the rest (the stop or trip
/// still open). To resume after the process restarts, treat it like late data at the end of
/// time: keep the stored segments before `restart_point(&segments, DateTime::<Utc>::MAX_UTC)`
/// and push the stored fixes from that time on into a new builder.
#[derive(Debug, Clone)]
pub struct TripBuilder {
    limits: Limits,
    /// Fixes from the start of the first segment not emitted yet to the newest fix.
    buf: Vec<Fix>,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Empty,
    Stopped(Stopped),
    Moving(Moving),
}

#[derive(Debug, Clone)]
struct Stopped {
    /// Where the vehicle stands; candidate motion is measured from here.
    anchor: LatLon,
    /// First fix of the current unbroken run of ignition-on fixes.
    engine_on_since: Option<usize>,
    candidate: Option<Candidate>,
}

impl Stopped {
    fn at(anchor: LatLon) -> Self {
        Self { anchor, engine_on_since: None, candidate: None }
    }
}

/// Motion seen while stopped, not yet confirmed as a trip.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Departure: the last fix before the motion began.
    start: usize,
    /// Departure of the current unbroken streak of moving fixes.
    streak: Option<usize>,
    /// First fix of the current stationary run since the motion began.
    still_since: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Moving {
    start: usize,
    halt: Option<Halt>,
    /// Length of the travelled legs read so far, metres.
    distance_m: f64,
    /// The trip already passes the noise rule, so the stop before it has been emitted.
    certain: bool,
}

/// The stationary run the trip is currently halted in.
#[derive(Debug, Clone, Copy)]
struct Halt {
    start: usize,
    engine_off_seen: bool,
}

impl TripBuilder {
    pub fn new(settings: &AnalyticsSettings) -> Self {
        Self { limits: Limits::new(settings), buf: Vec::new(), state: State::Empty }
    }

    /// Time of the newest fix read.
    pub fn last_time(&self) -> Option<DateTime<Utc>> {
        self.buf.last().map(|f| f.time)
    }

    /// Reads a batch (any order; of fixes sharing a time the first is kept) and returns the
    /// segments that became final. A batch with a fix at or before [`Self::last_time`] is
    /// refused whole, leaving the builder unchanged.
    pub fn push(&mut self, points: &[TripPoint]) -> Result<Vec<Segment>, LateData> {
        let sorted = sorted_unique(points);
        if let (Some(first), Some(last)) = (sorted.first(), self.last_time()) {
            if first.time <= last {
                return Err(LateData { earliest: first.time, last });
            }
        }
        Ok(self.feed_sorted(&sorted))
    }

    /// The segments not emitted yet, as of the end-of-data marker `data_end`: the open stop, or
    /// the stop before an unfinished trip and that trip (`Open`, or `DayEnd` when `data_end` is
    /// more than `long_gap_s` after its last fix, followed by the stop after it).
    pub fn tail(&self, data_end: DateTime<Utc>) -> Vec<Segment> {
        let mut b = self.clone();
        let mut out = Vec::new();
        let Some(last) = b.buf.len().checked_sub(1) else {
            return out;
        };
        if let State::Moving(mv) = b.state {
            if millis(b.buf[last].time, data_end) > b.limits.long_gap_ms {
                b.end_trip(last, EndReason::DayEnd, &mut out);
            } else {
                if !mv.certain {
                    b.emit_stop_until(mv.start, &mut out);
                }
                out.extend(b.trip_segment(mv.start, last, EndReason::Open));
                return out;
            }
        }
        let last = b.buf.len().saturating_sub(1);
        b.emit_stop_until(last, &mut out);
        out
    }

    /// Reads fixes already sorted by time and newer than the last one read.
    pub(crate) fn feed_sorted(&mut self, points: &[TripPoint]) -> Vec<Segment> {
        let mut out = Vec::new();
        for p in points {
            self.step(p, &mut out);
        }
        out
    }

    fn step(&mut self, p: &TripPoint, out: &mut Vec<Segment>) {
        let prev = self.buf.last();
        if prev.is_some_and(|q| p.time <= q.time) {
            return;
        }
        let gap = prev.is_none_or(|q| millis(q.time, p.time) > self.limits.long_gap_ms);
        let fix = Fix::new(p, if gap { None } else { prev }, &self.limits);
        let location = fix.location;
        self.buf.push(fix);
        let i = self.buf.len() - 1;

        let moving = matches!(self.state, State::Moving(_));
        if moving && !gap {
            self.moving_step(i, out);
            return;
        }
        if moving {
            self.end_trip(i - 1, EndReason::LongGap, out);
        }
        // ending a trip drops the fixes before its end
        let i = self.buf.len() - 1;
        if gap {
            // Nothing is known of the gap: the vehicle may stand elsewhere now, and motion or
            // ignition seen before it says nothing about after.
            self.state = State::Stopped(Stopped::at(location));
        }
        self.stopped_step(i, gap, out);
    }

    /// Reads fix `i` while stopped. `first`: the fix has no predecessor (start of the data,
    /// after a long gap, or the first fix of a replay); motion cannot be confirmed on it.
    fn stopped_step(&mut self, i: usize, first: bool, out: &mut Vec<Segment>) {
        let Self { limits, buf, state } = self;
        let State::Stopped(st) = state else {
            return;
        };
        let f = &buf[i];
        st.engine_on_since = if f.engine_on { Some(st.engine_on_since.unwrap_or(i)) } else { None };
        if f.moving {
            let departure = if first { i } else { i - 1 };
            let cand = st.candidate.get_or_insert(Candidate {
                start: departure,
                streak: None,
                still_since: None,
            });
            cand.still_since = None;
            let streak = *cand.streak.get_or_insert(departure);
            if first {
                return;
            }
            let away = st.anchor.distance_m(&f.location);
            let streak_ms = millis(buf[streak].time, f.time);
            let confirmed = f.engine_on
                || away >= limits.motion_confirm_m
                || (away > PARKED_SPOT_RADIUS_M && streak_ms >= limits.work_stop_ms);
            if confirmed {
                let start = st.engine_on_since.map_or(cand.start, |on| on.min(cand.start));
                let distance_m = travelled(&buf[start..=i]);
                *state = State::Moving(Moving { start, halt: None, distance_m, certain: false });
                self.check_certain(i, out);
            }
        } else if let Some(cand) = st.candidate.as_mut() {
            cand.streak = None;
            let still = *cand.still_since.get_or_insert(i);
            if st.anchor.distance_m(&f.location) <= PARKED_SPOT_RADIUS_M {
                // back where it stood: the motion was jitter
                st.candidate = None;
            } else if millis(buf[still].time, f.time) >= limits.work_stop_ms {
                // moved a little without confirming a trip and now stands here
                st.anchor = buf[still].location;
                st.candidate = None;
            }
        }
    }

    /// Reads fix `i` (which has a predecessor) during a trip.
    fn moving_step(&mut self, i: usize, out: &mut Vec<Segment>) {
        let Self { limits, buf, state } = self;
        let State::Moving(mv) = state else {
            return;
        };
        let (a, b) = (&buf[i - 1], &buf[i]);
        if a.moving || b.moving {
            mv.distance_m += a.location.distance_m(&b.location);
        }
        if b.moving {
            mv.halt = None;
            self.check_certain(i, out);
            return;
        }
        let halt = mv.halt.get_or_insert(Halt { start: i, engine_off_seen: false });
        halt.engine_off_seen |= !b.engine_on;
        if halt.engine_off_seen && millis(buf[halt.start].time, b.time) >= limits.work_stop_ms {
            self.end_trip(i, EndReason::WorkStop, out);
        }
    }

    /// At moving fix `i`: once the trip is sure to pass the noise rule, the stop before it is
    /// final. Distance and time so far only grow (the trip ends after its last moving fix).
    fn check_certain(&mut self, i: usize, out: &mut Vec<Segment>) {
        let State::Moving(mv) = self.state else {
            return;
        };
        if mv.certain
            || mv.distance_m < self.limits.min_trip_distance_m
            || millis(self.buf[mv.start].time, self.buf[i].time) < self.limits.min_trip_ms
        {
            return;
        }
        self.emit_stop_until(mv.start, out);
        self.buf.drain(..mv.start);
        self.state = State::Moving(Moving { start: 0, certain: true, ..mv });
    }

    /// Ends the current trip, `last` being the newest fix before the cut: at the halt if the
    /// vehicle has halted, else at `last`. A kept trip is emitted and the builder restarts at its
    /// end; a dropped one joins the stop. Either way the fixes after the trip's end up to `last`
    /// are replayed as a stopped vehicle (all stationary, or the single fix `last`).
    fn end_trip(&mut self, last: usize, reason: EndReason, out: &mut Vec<Segment>) {
        let State::Moving(mv) = self.state else {
            return;
        };
        let end = mv.halt.map_or(last, |h| h.start).min(last);
        let Some(trip) = self.trip_segment(mv.start, end, reason) else {
            return;
        };
        let kept = mv.certain
            || trip.as_trip().is_some_and(|t| {
                t.distance_m >= self.limits.min_trip_distance_m
                    && millis(t.start, t.end) >= self.limits.min_trip_ms
            });
        let replay_from = if kept {
            if !mv.certain {
                self.emit_stop_until(mv.start, out);
            }
            out.push(trip);
            self.buf.drain(..end);
            0
        } else {
            end
        };
        let replay_to = last - (end - replay_from);
        self.state = State::Stopped(Stopped::at(self.buf[replay_from].location));
        for k in replay_from..=replay_to {
            self.stopped_step(k, k == replay_from, out);
        }
    }

    /// Emits the stop from the first kept fix to fix `end`, unless it lasts no time.
    fn emit_stop_until(&self, end: usize, out: &mut Vec<Segment>) {
        if end > 0 {
            let stop = self.buf.get(..=end).and_then(|f| enrich::stop(f, &self.limits));
            out.extend(stop.map(Segment::Stop));
        }
    }

    fn trip_segment(&self, start: usize, end: usize, reason: EndReason) -> Option<Segment> {
        let fixes = self.buf.get(start..=end)?;
        enrich::trip(fixes, reason, &self.limits).map(Segment::Trip)
    }
}

/// Length of the travelled legs (either end moving) of `fixes`, metres.
fn travelled(fixes: &[Fix]) -> f64 {
    fixes
        .windows(2)
        .filter(|l| l[0].moving || l[1].moving)
        .map(|l| l[0].location.distance_m(&l[1].location))
        .sum()
}
