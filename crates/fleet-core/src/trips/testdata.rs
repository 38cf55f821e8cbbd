//! Synthetic tracks for the trip tests: a vehicle that parks, drives, idles and goes silent,
//! reporting like a Concox tracker (with or without ACC wiring, with GPS jitter when asked).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{restart_point, Segment, TripBuilder, TripPoint};
use crate::{AnalyticsSettings, LatLon};

/// 2024-03-01 05:00 UTC, 08:00 in Nairobi.
pub(crate) fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 5, 0, 0).single().expect("a valid time")
}

/// `s` seconds after [`base`].
pub(crate) fn at(s: i64) -> DateTime<Utc> {
    base() + Duration::seconds(s)
}

/// splitmix64: small, deterministic, good enough for noise.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// How a device reports ignition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acc {
    /// ACC wired: every fix says on or off.
    Wired,
    /// No wiring: no fix says anything.
    Absent,
    /// Wired, but one fix in ten lacks the field.
    Patchy,
}

/// A vehicle writing fixes as it goes.
#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub points: Vec<TripPoint>,
    /// Seconds since [`base`].
    pub now: i64,
    lat: f64,
    lon: f64,
    heading_deg: f64,
    acc: Acc,
    /// Probability that a fix carries no speed.
    speed_missing: f64,
    /// Largest distance of a parked fix from the true spot, metres; 0 for clean tracks.
    jitter_m: f64,
    rng: Rng,
}

impl Track {
    /// A clean track (no jitter, every fix with speed) starting at [`base`] in Nairobi.
    pub fn new(acc: Acc) -> Self {
        Self {
            points: Vec::new(),
            now: 0,
            lat: -1.2864,
            lon: 36.8172,
            heading_deg: 45.0,
            acc,
            speed_missing: 0.0,
            jitter_m: 0.0,
            rng: Rng::new(7),
        }
    }

    /// Parked fixes scatter up to `jitter_m` from the spot with phantom speeds of 1–4 km/h, and
    /// a fix lacks its speed with probability `speed_missing`.
    pub fn noisy(mut self, jitter_m: f64, speed_missing: f64, seed: u64) -> Self {
        self.jitter_m = jitter_m;
        self.speed_missing = speed_missing;
        self.rng = Rng::new(seed);
        self
    }

    pub fn location(&self) -> LatLon {
        LatLon::new(self.lat, self.lon).expect("tracks stay near Nairobi")
    }

    fn offset(&self, north_m: f64, east_m: f64) -> (f64, f64) {
        let dlat = north_m / 111_320.0;
        let dlon = east_m / (111_320.0 * self.lat.to_radians().cos());
        (self.lat + dlat, self.lon + dlon)
    }

    fn push(&mut self, (lat, lon): (f64, f64), speed_kmh: f64, engine: bool) {
        let speed = (self.rng.unit() >= self.speed_missing).then_some(speed_kmh as f32);
        let ignition = match self.acc {
            Acc::Wired => Some(engine),
            Acc::Absent => None,
            Acc::Patchy => (self.rng.below(10) != 0).then_some(engine),
        };
        let location = LatLon::new(lat, lon).expect("tracks stay near Nairobi");
        self.points.push(TripPoint { time: at(self.now), location, speed_kmh: speed, ignition });
    }

    /// Stands still for `secs`, a fix every `every` seconds, engine on or off.
    pub fn stand(&mut self, secs: i64, every: i64, engine: bool) -> &mut Self {
        let end = self.now + secs;
        while self.now + every <= end {
            self.now += every;
            let (mut spot, mut speed) = ((self.lat, self.lon), 0.0);
            if self.jitter_m > 0.0 {
                // mostly a few metres, now and then the full spread
                let r = self.jitter_m * self.rng.unit().powi(3);
                let a = self.rng.unit() * std::f64::consts::TAU;
                spot = self.offset(r * a.cos(), r * a.sin());
                if self.rng.below(8) == 0 {
                    speed = 1.0 + 3.0 * self.rng.unit();
                }
            }
            self.push(spot, speed, engine);
        }
        self.now = end;
        self
    }

    /// Parked with the engine off.
    pub fn park(&mut self, secs: i64, every: i64) -> &mut Self {
        self.stand(secs, every, false)
    }

    /// Stationary with the engine on.
    pub fn idle(&mut self, secs: i64, every: i64) -> &mut Self {
        self.stand(secs, every, true)
    }

    /// Drives at about `kmh` for `secs`, a fix every `every` seconds, engine on.
    pub fn drive(&mut self, secs: i64, every: i64, kmh: f64) -> &mut Self {
        let end = self.now + secs;
        while self.now + every <= end {
            self.now += every;
            let speed = if self.jitter_m > 0.0 {
                self.heading_deg += 30.0 * (self.rng.unit() - 0.5);
                (kmh * (0.8 + 0.4 * self.rng.unit())).max(6.0)
            } else {
                kmh
            };
            let step = speed / 3.6 * every as f64;
            let h = self.heading_deg.to_radians();
            (self.lat, self.lon) = self.offset(step * h.cos(), step * h.sin());
            self.push((self.lat, self.lon), speed, true);
        }
        self.now = end;
        self
    }

    /// Reports nothing for `secs`, moving `moved_m` meanwhile.
    pub fn silent(&mut self, secs: i64, moved_m: f64) -> &mut Self {
        self.now += secs;
        (self.lat, self.lon) = self.offset(moved_m * 0.6, moved_m * 0.8);
        self
    }

    /// Adds one fix `after_s` later and `step_m` further on, reported exactly as given.
    pub fn raw(&mut self, after_s: i64, step_m: f64, speed: Option<f32>, ignition: Option<bool>) {
        self.now += after_s;
        self.heading_deg += 47.0;
        let h = self.heading_deg.to_radians();
        (self.lat, self.lon) = self.offset(step_m * h.cos(), step_m * h.sin());
        let location = self.location();
        self.points.push(TripPoint { time: at(self.now), location, speed_kmh: speed, ignition });
    }

    /// Adds one fix with an explicit speed and engine state, moved `step_m` ahead.
    pub fn fix(&mut self, after_s: i64, step_m: f64, kmh: f64, engine: bool) -> &mut Self {
        self.now += after_s;
        let h = self.heading_deg.to_radians();
        (self.lat, self.lon) = self.offset(step_m * h.cos(), step_m * h.sin());
        self.push((self.lat, self.lon), kmh, engine);
        self
    }
}

/// A model of the trips worker: it stores every fix it receives (as the positions table does,
/// the first arrival of a time wins), pushes in-order batches into its builder and, when a batch
/// is late, drops its segments from [`restart_point`] on and rebuilds from the stored fixes.
#[derive(Debug)]
pub(crate) struct Worker {
    settings: AnalyticsSettings,
    pub stored: BTreeMap<DateTime<Utc>, TripPoint>,
    pub segments: Vec<Segment>,
    builder: TripBuilder,
    pub restarts: usize,
    /// Where the latest re-derivation started.
    pub last_restart: Option<DateTime<Utc>>,
}

impl Worker {
    pub fn new(settings: &AnalyticsSettings) -> Self {
        Self {
            settings: settings.clone(),
            stored: BTreeMap::new(),
            segments: Vec::new(),
            builder: TripBuilder::new(settings),
            restarts: 0,
            last_restart: None,
        }
    }

    pub fn deliver(&mut self, batch: &[TripPoint]) {
        let mut fresh = Vec::new();
        for p in batch {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.stored.entry(p.time) {
                slot.insert(*p);
                fresh.push(*p);
            }
        }
        if fresh.is_empty() {
            return;
        }
        match self.builder.push(&fresh) {
            Ok(done) => self.segments.extend(done),
            Err(late) => {
                let from = restart_point(&self.segments, late.earliest);
                self.segments.retain(|s| s.start() < from);
                self.builder = TripBuilder::new(&self.settings);
                let points: Vec<TripPoint> = self.stored.range(from..).map(|(_, p)| *p).collect();
                let done = self.builder.push(&points).expect("a new builder takes any fixes");
                self.segments.extend(done);
                self.restarts += 1;
                self.last_restart = Some(from);
            }
        }
    }

    pub fn result(&self, data_end: DateTime<Utc>) -> Vec<Segment> {
        let mut all = self.segments.clone();
        all.extend(self.builder.tail(data_end));
        all
    }
}
