//! Trips and stops from one device's fixes.
//!
//! [`rebuild`] turns a device's fixes into alternating [`Segment`]s: trips and the stops between
//! them, contiguous (each starts where the previous ended) and covering the data from its first
//! fix to its last. [`TripBuilder`] computes exactly the same segments incrementally, batch by
//! batch, and [`restart_point`] says where to re-derive from when a batch arrives late. The
//! equality of the two paths for any chunking and arrival order is property-tested
//! (`trips::invariant`).
//!
//! # Rules
//!
//! Thresholds come from [`AnalyticsSettings`] (docs/ANALYTICS_SETTINGS.md gives the reason for
//! each default); the rules follow the seed system's planned rebuild and Traccar, and fix the
//! weaknesses listed in reference/anchors.md.
//!
//! - **Moving fix**: reported speed ≥ `moving_speed_kmh` (5 km/h: a parked tracker's GPS speed
//!   noise stays below it). A fix without a usable speed is judged by its displacement from the
//!   previous fix over the time between them.
//! - **Ignition is asked of each fix, not of the device.** A fix with `ignition = Some(true)` has
//!   the engine on; `Some(false)` and `None` do not claim it. A device that never reports ignition
//!   is therefore handled entirely by the motion fallback, and one with ACC wiring by the ignition
//!   rules. Deciding the mode for the whole input at once ("ACC if any fix has ignition") would
//!   make one batch's trips depend on batches not yet received, which the incremental builder
//!   cannot honour; [`reports_ignition`] still tells callers which kind of device they have.
//! - **Trip start**: ignition on followed by motion starts a trip at once, back-dated to the fix
//!   where the ignition came on (warm-up counts as idling). Motion without ignition is confirmed
//!   with Traccar's hysteresis: the vehicle ends up `motion_confirm_distance_m` (500 m) from where
//!   it stood, or it keeps moving for `work_stop_min_s` (300 s) and has left the parking spot;
//!   the trip is back-dated to the departure, the last fix before the motion. A candidate motion
//!   is forgotten when the vehicle is stationary back within [`PARKED_SPOT_RADIUS_M`] of where it
//!   stood, or stationary anywhere for `work_stop_min_s`. A parked tracker's jitter (fixes within
//!   about 50 m of the spot, phantom speeds of a few km/h) therefore never makes a trip, and a red
//!   light after leaving the spot does not move the start past it (Traccar restarts its motion
//!   streak there and loses the first stretch).
//! - **Work stop**: a trip ends when the vehicle has stood still for `work_stop_min_s` and the
//!   ignition was not on throughout (off at some fix of the halt; devices without ACC never
//!   report it on, so for them standing still is enough). The trip ends, and the stop starts, at
//!   the *first stationary fix* of the halt, not when the stop was confirmed up to five minutes
//!   later (Traccar stamps the confirmation). Shorter halts (red lights, quick drop-offs with the
//!   engine on or off) do not split a trip.
//! - **Idling**: ignition on and stationary inside a trip is measured in `Trip::idle_s`, all of
//!   it, and never splits the trip or makes a stop: the time burns fuel whatever its length
//!   (the schema's `trips.idle_s` counts it all). `idle_min_s` decides a stop's kind instead: a
//!   stop during which the engine ran for at least `idle_min_s` and for most of the stop is
//!   [`StopKind::Idling`], otherwise [`StopKind::Parked`].
//! - **Long gap**: no fix for more than `long_gap_s` (30 min, the seed's rule) ends the trip
//!   ([`EndReason::LongGap`]) at the last fix before the gap, or at the halt if the vehicle had
//!   already stopped there (trackers sleep when parked with the engine off, so "stopped, then
//!   silent" is how most days end). The gap is not moving time; it belongs to the stop after the
//!   trip. Shorter gaps inside a trip are summed in `Trip::gap_s`: a leg between two moving
//!   fixes longer than [`GAP_FACTOR`] (3) times the trip's median fix interval. The trip's own
//!   median stands for the device's typical interval while driving and keeps a trip's figures a
//!   function of its own fixes; legs touching a stationary fix are left out because trackers
//!   legitimately report less often when standing. `gap_s` is a coverage figure and overlaps
//!   `moving_s`.
//! - **End of data**: the final trip of the input ends with [`EndReason::Open`] when the caller's
//!   end-of-data marker (`data_end`: "now" for live views, the end of the period for reports) is
//!   within `long_gap_s` of its last fix, since more fixes may still extend it; otherwise the data
//!   simply ended ([`EndReason::DayEnd`], the seed's "end of the day's data") and it ends like a
//!   long gap. Both depend only on the fixes and `data_end`, never on arrival order. A trip
//!   crossing local midnight is not split: daily KPIs split by day.
//! - **Noise trips**: a finished trip shorter than `min_trip_distance_m` (200 m, Traccar's
//!   geometry minimum) or `min_trip_duration_s` (120 s) is dropped and its time joins the
//!   surrounding stop. Open trips are kept: they are still growing.
//! - **Enrichment**: a leg (two consecutive fixes) is travelled when either end is moving, so the
//!   departure and arrival legs count; a leg between two stationary fixes is jitter even if the
//!   positions differ. `distance_m` sums the haversine length of travelled legs (R = 6 378 137 m,
//!   as Traccar), `moving_s` their time; `idle_s` is the time of the other legs that start with
//!   the ignition on; `avg_speed_kmh = distance_m / moving_s`; `max_speed_kmh` is the highest
//!   reported speed (the leg speed where none was reported); `overspeed_count` counts separate
//!   runs of fixes above `speed_limit_kmh` and `overspeed_s` the time of legs that start above
//!   it, gaps excluded.
//!
//! # Incremental building and late data
//!
//! The builder is a fold over the fixes in time order: pushing them in one batch or many gives
//! the same segments. It emits a segment once no later fix can change it (a stop as soon as the
//! trip after it is certain to survive the noise rule, a trip when it has ended) and keeps the
//! rest as its open tail ([`TripBuilder::tail`]). Fixes older than the builder's newest one are
//! refused ([`LateData`]); the caller re-derives from [`restart_point`] with the stored fixes
//! from that time on, discarding its segments that start there or later.

mod builder;
mod enrich;
mod fix;

#[cfg(test)]
mod invariant;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod testdata;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AnalyticsSettings, LatLon};

pub use builder::{LateData, TripBuilder};

/// Stationary fixes within this distance of where a vehicle stood count as still standing there,
/// metres. A parked tracker's fixes scatter up to about 50 m from the true spot under urban
/// multipath, so two of them can be 100 m apart; motion that stays inside this radius is jitter.
pub const PARKED_SPOT_RADIUS_M: f64 = 100.0;

/// A leg inside a trip longer than this many times the trip's median fix interval is a gap.
/// Trackers skip a fix or two routinely; three intervals without one means coverage was lost.
pub const GAP_FACTOR: i64 = 3;

/// One fix as the trip builder needs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TripPoint {
    pub time: DateTime<Utc>,
    pub location: LatLon,
    /// Ground speed, km/h; `None` (or a non-finite or negative value) when not reported.
    pub speed_kmh: Option<f32>,
    /// ACC state; `None` when the device has no ignition wiring or did not say.
    pub ignition: Option<bool>,
}

/// Why a trip ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Stationary for `work_stop_min_s` with the ignition not on throughout.
    WorkStop,
    /// No fix for more than `long_gap_s`.
    LongGap,
    /// The data ended: nothing up to the end-of-data marker, more than `long_gap_s` later.
    DayEnd,
    /// Still going at the last fix; more data may extend it.
    Open,
}

impl EndReason {
    /// Every reason, in the order the API documents them.
    pub const ALL: [EndReason; 4] =
        [EndReason::WorkStop, EndReason::LongGap, EndReason::DayEnd, EndReason::Open];

    /// The reason named `name` (as [`EndReason::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The name stored in `fleet.trips.end_reason`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::WorkStop => "work_stop",
            EndReason::LongGap => "long_gap",
            EndReason::DayEnd => "day_end",
            EndReason::Open => "open",
        }
    }
}

/// What the vehicle did while stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Parked,
    /// The engine ran for at least `idle_min_s` and for most of the stop.
    Idling,
}

impl StopKind {
    /// Every kind, in the order the API documents them.
    pub const ALL: [StopKind; 2] = [StopKind::Parked, StopKind::Idling];

    /// The kind named `name` (as [`StopKind::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The name stored in `fleet.stops.kind`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StopKind::Parked => "parked",
            StopKind::Idling => "idling",
        }
    }
}

/// A drive from a departure to a halt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub start_location: LatLon,
    pub end_location: LatLon,
    /// Haversine length of the travelled legs, metres.
    pub distance_m: f64,
    /// `end - start`, whole seconds.
    pub duration_s: i64,
    /// Time of the travelled legs, seconds.
    pub moving_s: i64,
    /// Ignition on and stationary, seconds.
    pub idle_s: i64,
    /// Highest speed, km/h (0 when the trip has a single fix).
    pub max_speed_kmh: f64,
    /// `distance_m / moving_s` in km/h (0 without moving time).
    pub avg_speed_kmh: f64,
    /// Separate runs of fixes above the speed limit.
    pub overspeed_count: u32,
    /// Time above the speed limit, seconds.
    pub overspeed_s: i64,
    /// Fixes the trip was built from, both ends included.
    pub point_count: u32,
    /// Time in legs between moving fixes longer than [`GAP_FACTOR`] times the median interval,
    /// seconds.
    pub gap_s: i64,
    pub end_reason: EndReason,
}

/// The time between two trips (or before the first, or after the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Where the vehicle halted: the stop's first fix.
    pub location: LatLon,
    pub kind: StopKind,
    /// `end - start`, whole seconds.
    pub duration_s: i64,
    /// Ignition on during the stop (warm-up, waiting with the engine running), seconds.
    pub idle_s: i64,
}

/// One piece of a device's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "segment", rename_all = "snake_case")]
pub enum Segment {
    Trip(Trip),
    Stop(Stop),
}

impl Segment {
    pub fn start(&self) -> DateTime<Utc> {
        match self {
            Segment::Trip(t) => t.start,
            Segment::Stop(s) => s.start,
        }
    }

    pub fn end(&self) -> DateTime<Utc> {
        match self {
            Segment::Trip(t) => t.end,
            Segment::Stop(s) => s.end,
        }
    }

    pub fn as_trip(&self) -> Option<&Trip> {
        match self {
            Segment::Trip(t) => Some(t),
            Segment::Stop(_) => None,
        }
    }

    pub fn as_stop(&self) -> Option<&Stop> {
        match self {
            Segment::Stop(s) => Some(s),
            Segment::Trip(_) => None,
        }
    }
}

/// All segments of `points` (any order; of fixes sharing a time the first given is kept), as of
/// the end-of-data marker `data_end` (see the module docs: it decides between an open final trip
/// and one ended by the end of data). Equal to feeding the same points to a [`TripBuilder`] in
/// any chunking and appending its [`TripBuilder::tail`].
pub fn rebuild(
    points: &[TripPoint],
    settings: &AnalyticsSettings,
    data_end: DateTime<Utc>,
) -> Vec<Segment> {
    let mut builder = TripBuilder::new(settings);
    let mut segments = builder.feed_sorted(&fix::sorted_unique(points));
    segments.extend(builder.tail(data_end));
    segments
}

/// Where to re-derive from when a fix at `late_time` arrives after the builder has passed it.
///
/// `segments` are the segments emitted so far, in order. The answer is the start of the latest
/// stop whose following trip ended at or before `late_time`; the caller drops its segments that
/// start at or after it and feeds a fresh builder the stored fixes from it on. Such a stop is
/// safe because the builder confirmed it (and reset its state to what a fresh builder has at the
/// stop's first fix) before that trip's first moving fix, so before `late_time`: the late fix
/// cannot change it or anything earlier. The stop containing the late fix, or the one before the
/// trip containing it, is not safe: the late fix may fall inside the `work_stop_min_s` that
/// confirmed it and break the halt, merging it into the previous trip. Without such a stop the
/// answer is [`DateTime::<Utc>::MIN_UTC`]: re-derive from the device's first fix.
pub fn restart_point(segments: &[Segment], late_time: DateTime<Utc>) -> DateTime<Utc> {
    let spans: Vec<Span> = segments.iter().map(Span::of).collect();
    restart_point_of(&spans, late_time)
}

/// A stored segment reduced to what [`restart_point_of`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub is_trip: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn of(segment: &Segment) -> Self {
        Self { is_trip: segment.as_trip().is_some(), start: segment.start(), end: segment.end() }
    }
}

/// [`restart_point`] over spans in time order: callers that keep segments in storage need only
/// load the last few that end at or before `late_time` (any earlier answer is also safe, only
/// slower).
pub fn restart_point_of(spans: &[Span], late_time: DateTime<Utc>) -> DateTime<Utc> {
    spans
        .windows(2)
        .rev()
        .find_map(|pair| {
            let (stop, trip) = (&pair[0], &pair[1]);
            (!stop.is_trip && trip.is_trip && trip.end <= late_time && stop.end > stop.start)
                .then_some(stop.start)
        })
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether the fixes come from a device with ignition (ACC) wiring: any of them reports it.
/// The trip rules do not need this (they ask each fix); KPIs use it to tell "no idling" from
/// "idling unknown".
pub fn reports_ignition(points: &[TripPoint]) -> bool {
    points.iter().any(|p| p.ignition.is_some())
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn stored_names_are_the_serde_names_and_parse_back() {
        for r in EndReason::ALL {
            assert_eq!(serde_json::to_value(r).expect("json"), r.as_str());
            assert_eq!(EndReason::from_name(r.as_str()), Some(r));
        }
        for k in StopKind::ALL {
            assert_eq!(serde_json::to_value(k).expect("json"), k.as_str());
            assert_eq!(StopKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(EndReason::from_name("parked"), None);
        assert_eq!(StopKind::from_name("open"), None);
    }
}
