//! A vehicle's local day as a timeline of activities: parked (ignition off), idling (ignition on,
//! stationary) and driving along the road grid. Generated from (fleet seed, vehicle, date) alone,
//! so any day can be produced on its own and always comes out the same.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use fleet_core::LatLon;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::city::{has_lights, is_arterial, route, Node, CITIES};
use super::motion::{bearing, Leg};
use super::rng::{rng, tag, Draw};
use super::vehicle::Vehicle;

/// The fleet's local time is East Africa Time (UTC+3, no daylight saving).
pub const LOCAL_OFFSET_S: i64 = 3 * 3600;

/// What a vehicle is doing during a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    Parked,
    Idle,
    Drive(Vec<Leg>),
}

/// One stretch of the day; `start` inclusive, `end` exclusive, unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub activity: Activity,
    /// Where the segment starts (for parked and idle: where the vehicle stands).
    pub at: LatLon,
    /// Heading the vehicle last had, degrees.
    pub course: f64,
}

/// A planned alarm: when, and which vendor code and name.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAlarm {
    pub time: i64,
    pub code: &'static str,
    pub name: &'static str,
}

/// One vehicle's local day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPlan {
    pub date: NaiveDate,
    pub start: i64,
    pub end: i64,
    pub segments: Vec<Segment>,
    /// Windows with no fixes at all: signal loss while driving, the device offline for hours.
    pub silent: Vec<(i64, i64)>,
    pub alarms: Vec<PlannedAlarm>,
}

/// Unix seconds of local midnight starting `date`.
pub fn local_midnight(date: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN)).timestamp() - LOCAL_OFFSET_S
}

/// The local date of unix time `t`.
pub fn local_date(t: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(t + LOCAL_OFFSET_S, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

struct Builder<'a> {
    v: &'a Vehicle,
    seed: u64,
    r: ChaCha8Rng,
    t: i64,
    node: Node,
    course: f64,
    segments: Vec<Segment>,
    silent: Vec<(i64, i64)>,
}

impl Builder<'_> {
    fn pos(&self, n: Node) -> LatLon {
        CITIES[self.v.city].position(self.seed, self.v.city, n)
    }

    fn stand(&mut self, until: i64, activity: Activity) {
        if until <= self.t {
            return;
        }
        let at = self.pos(self.node);
        self.segments.push(Segment {
            start: self.t,
            end: until,
            activity,
            at,
            course: self.course,
        });
        self.t = until;
    }

    fn park_until(&mut self, until: i64) {
        self.stand(until, Activity::Parked);
    }

    fn idle_for(&mut self, seconds: f64) {
        let until = self.t + seconds as i64;
        self.stand(until, Activity::Idle);
    }

    fn drive_to(&mut self, dest: Node) {
        if dest == self.node {
            return;
        }
        let path = route(self.node, dest, self.r.gen());
        let start = self.t;
        let mut t = start as f64;
        let mut legs = Vec::with_capacity(path.len());
        let mut from_rest = true;
        for (k, w) in path.windows(2).enumerate() {
            let last = k + 2 == path.len();
            let (from, to) = (self.pos(w[0]), self.pos(w[1]));
            let halt_s = if last {
                0.0
            } else if has_lights(w[1]) && self.r.chance(0.5) {
                self.r.between(15.0, 75.0)
            } else if self.r.chance(0.04) {
                self.r.between(10.0, 40.0) // congestion
            } else {
                0.0
            };
            let leg = Leg {
                from,
                to,
                start: t,
                length_m: from.distance_m(&to),
                cruise: self.v.cruise_speed(is_arterial(w[0], w[1]), self.r.gen()),
                accel: self.v.accel(),
                starts_from_rest: from_rest,
                ends_at_rest: last || halt_s > 0.0,
                halt_s,
                bearing: bearing(from, to),
            };
            t = leg.end();
            from_rest = leg.ends_at_rest;
            self.course = leg.bearing;
            legs.push(leg);
        }
        let end = t.ceil() as i64 + 1;
        if self.r.chance(0.06) {
            let gap_start = start + ((end - start) as f64 * self.r.between(0.1, 0.7)) as i64;
            self.silent.push((gap_start, gap_start + self.r.between(180.0, 900.0) as i64));
        }
        let at = self.pos(self.node);
        self.segments.push(Segment {
            start,
            end,
            activity: Activity::Drive(legs),
            at,
            course: self.course,
        });
        self.t = end;
        self.node = dest;
    }

    fn random_destination(&mut self) -> Node {
        loop {
            let n = Node {
                i: self.node.i + self.r.gen_range(-8..=8),
                j: self.node.j + self.r.gen_range(-8..=8),
            }
            .clamp();
            if n != self.node {
                return n;
            }
        }
    }
}

impl DayPlan {
    /// The plan of `v`'s local day `date`.
    pub fn generate(seed: u64, v: &Vehicle, date: NaiveDate) -> DayPlan {
        let start = local_midnight(date);
        let end = start + 86_400;
        let mut b = Builder {
            v,
            seed,
            r: rng(&[seed, tag::DAY, v.index as u64, date.num_days_from_ce() as u64]),
            t: start,
            node: v.home,
            course: 0.0,
            segments: Vec::new(),
            silent: Vec::new(),
        };
        let hour = |h: f64| start + (h * 3600.0) as i64;
        let weekday = date.weekday().number_from_monday();
        if weekday <= 6 {
            let lateness_min = v.habitual_lateness_min + b.r.between(-12.0, 12.0);
            let depart = hour(8.0) + (lateness_min * 60.0) as i64;
            if b.r.chance(0.4) {
                let warm_up = b.r.between(60.0, 360.0);
                b.park_until(depart - warm_up as i64);
                b.idle_for(warm_up);
            } else {
                b.park_until(depart);
            }
            let shift_end = hour(17.0) + (b.r.between(-20.0, 70.0) * 60.0) as i64;
            let mut had_lunch = false;
            while b.t < shift_end - 1200 {
                let dest = b.random_destination();
                b.drive_to(dest);
                if b.r.chance(0.3) {
                    let idle = b.r.between(120.0, 720.0);
                    b.idle_for(idle);
                }
                let lunch_time = !had_lunch && b.t > hour(12.0) && b.t < hour(14.0);
                let stop_s = if lunch_time {
                    b.r.between(2400.0, 4200.0)
                } else {
                    b.r.between(480.0, 2700.0)
                };
                had_lunch |= lunch_time;
                b.park_until(b.t + stop_s as i64);
            }
            b.drive_to(v.home);
            if v.after_hours && b.r.chance(0.25) {
                let leave = hour(19.0) + b.r.between(0.0, 5400.0) as i64;
                b.park_until(leave);
                let dest = b.random_destination();
                b.drive_to(dest);
                let stay = b.r.between(600.0, 2400.0) as i64;
                b.park_until(b.t + stay);
                b.drive_to(v.home);
            }
        } else if b.r.chance(0.15) {
            let outing = hour(b.r.between(11.0, 15.0));
            b.park_until(outing);
            let dest = b.random_destination();
            b.drive_to(dest);
            let stay = b.r.between(1200.0, 5400.0) as i64;
            b.park_until(b.t + stay);
            b.drive_to(v.home);
        }
        b.park_until(end);
        if b.r.chance(0.03) {
            let off = hour(b.r.between(6.0, 18.0));
            b.silent.push((off, off + b.r.between(2.0, 6.0) as i64 * 3600));
        }
        let mut plan = DayPlan {
            date,
            start,
            end,
            segments: b.segments,
            silent: b.silent,
            alarms: Vec::new(),
        };
        plan.alarms = super::alarms::plan_alarms(seed, v, &plan);
        plan
    }

    /// The segment containing `t`, if `t` is inside the day.
    pub fn segment_at(&self, t: i64) -> Option<&Segment> {
        let idx = self.segments.partition_point(|s| s.end <= t);
        self.segments.get(idx).filter(|s| s.start <= t)
    }

    /// Whether `t` lies in a window without fixes.
    pub fn is_silent(&self, t: i64) -> bool {
        self.silent.iter().any(|&(a, b)| t >= a && t < b)
    }
}

impl Segment {
    /// Position, speed (km/h) and heading at `t` (inside the segment).
    pub fn state_at(&self, t: f64) -> (LatLon, f64, f64) {
        match &self.activity {
            Activity::Parked | Activity::Idle => (self.at, 0.0, self.course),
            Activity::Drive(legs) => {
                let idx = legs.partition_point(|l| l.end() <= t).min(legs.len().saturating_sub(1));
                match legs.get(idx) {
                    None => (self.at, 0.0, self.course),
                    Some(leg) => {
                        let tau = t - leg.start;
                        let (_, v) = leg.state_at(tau);
                        (leg.position_at(tau), v * 3.6, leg.bearing)
                    }
                }
            }
        }
    }

    /// Ignition state during the segment.
    pub fn ignition(&self) -> bool {
        !matches!(self.activity, Activity::Parked)
    }
}
