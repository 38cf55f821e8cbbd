//! The simulated fleet: vehicles, their days, fixes, alarms and trips, all derived
//! deterministically from one seed.

pub mod alarms;
pub mod city;
pub mod motion;
pub mod plan;
pub mod rng;
pub mod sample;
pub mod vehicle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Days, NaiveDate};
use fleet_core::LatLon;

pub use plan::{local_date, DayPlan};
pub use sample::Fix;
pub use vehicle::Vehicle;

/// Day plans kept in memory (about 16 KB each); past this the least recently used half is
/// dropped. Plans regenerate identically, so the cache only saves time.
const PLAN_CACHE_CAP: usize = 4_096;

/// An alarm with where the vehicle was.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub time: i64,
    pub code: &'static str,
    pub name: &'static str,
    pub position: LatLon,
    pub speed_kmh: f64,
}

/// A completed drive as the vendor's trip report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TripSummary {
    pub start: i64,
    pub end: i64,
    pub from: LatLon,
    pub to: LatLon,
    pub distance_m: f64,
    pub max_speed_kmh: f64,
}

/// The whole simulated fleet.
#[derive(Debug)]
pub struct Fleet {
    seed: u64,
    vehicles: Vec<Vehicle>,
    by_imei: HashMap<String, usize>,
    plans: Mutex<PlanCache>,
}

/// Recently used day plans, stamped with a use counter for eviction.
#[derive(Debug, Default)]
struct PlanCache {
    plans: HashMap<(usize, NaiveDate), (u64, Arc<DayPlan>)>,
    uses: u64,
}

impl PlanCache {
    fn get(&mut self, key: &(usize, NaiveDate)) -> Option<Arc<DayPlan>> {
        self.uses += 1;
        let uses = self.uses;
        self.plans.get_mut(key).map(|(stamp, plan)| {
            *stamp = uses;
            plan.clone()
        })
    }

    fn insert(&mut self, key: (usize, NaiveDate), plan: Arc<DayPlan>) {
        if self.plans.len() >= PLAN_CACHE_CAP {
            let mut stamps: Vec<u64> = self.plans.values().map(|(s, _)| *s).collect();
            stamps.sort_unstable();
            let cutoff = stamps[stamps.len() / 2];
            self.plans.retain(|_, (s, _)| *s > cutoff);
        }
        self.uses += 1;
        self.plans.insert(key, (self.uses, plan));
    }
}

impl Fleet {
    pub fn new(seed: u64, vehicles: usize) -> Fleet {
        let vehicles: Vec<Vehicle> = (0..vehicles).map(|i| Vehicle::generate(seed, i)).collect();
        let by_imei = vehicles.iter().map(|v| (v.imei.to_string(), v.index)).collect();
        Fleet { seed, vehicles, by_imei, plans: Mutex::new(PlanCache::default()) }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn vehicles(&self) -> &[Vehicle] {
        &self.vehicles
    }

    pub fn vehicle(&self, imei: &str) -> Option<&Vehicle> {
        self.by_imei.get(imei).map(|&i| &self.vehicles[i])
    }

    /// Gives vehicle `index` the name and plate the vendor lists for it (a test's odd labels);
    /// its movements stay those of its seed.
    pub fn relabel(&mut self, index: usize, name: &str, plate: &str) {
        if let Some(v) = self.vehicles.get_mut(index) {
            v.name = name.to_owned();
            v.plate = plate.to_owned();
        }
    }

    /// The plan of vehicle `index` for local day `date` (cached).
    pub fn plan(&self, index: usize, date: NaiveDate) -> Arc<DayPlan> {
        let key = (index, date);
        if let Some(p) = self.plans.lock().ok().and_then(|mut m| m.get(&key)) {
            return p;
        }
        let plan = Arc::new(DayPlan::generate(self.seed, &self.vehicles[index], date));
        if let Ok(mut m) = self.plans.lock() {
            m.insert(key, plan.clone());
        }
        plan
    }

    fn days(from: i64, to: i64) -> impl Iterator<Item = NaiveDate> {
        let (first, last) = (local_date(from), local_date(to));
        first.iter_days().take_while(move |d| *d <= last)
    }

    /// Fixes of vehicle `index` with `from <= time <= to`, in time order.
    pub fn history(&self, index: usize, from: i64, to: i64) -> Vec<Fix> {
        let v = &self.vehicles[index];
        let mut out = Vec::new();
        for day in Self::days(from, to) {
            let plan = self.plan(index, day);
            out.extend(sample::fixes_between(self.seed, v, &plan, from, to));
        }
        out
    }

    /// The newest fix of vehicle `index` at or before `at` (looking back up to a week).
    pub fn latest(&self, index: usize, at: i64) -> Option<Fix> {
        let v = &self.vehicles[index];
        let mut day = local_date(at);
        for _ in 0..7 {
            let plan = self.plan(index, day);
            if let Some(f) = sample::last_fix_in_day(self.seed, v, &plan, at) {
                return Some(f);
            }
            day = day.checked_sub_days(Days::new(1))?;
        }
        None
    }

    /// Alarms of vehicle `index` with `from <= time <= to`.
    pub fn alarms(&self, index: usize, from: i64, to: i64) -> Vec<Alarm> {
        let mut out = Vec::new();
        for day in Self::days(from, to) {
            let plan = self.plan(index, day);
            for a in plan.alarms.iter().filter(|a| a.time >= from && a.time <= to) {
                let Some(seg) = plan.segment_at(a.time) else { continue };
                let (position, speed, _) = seg.state_at(a.time as f64);
                out.push(Alarm {
                    time: a.time,
                    code: a.code,
                    name: a.name,
                    position,
                    speed_kmh: speed,
                });
            }
        }
        out
    }

    /// Drives of vehicle `index` that started in `[from, to]` and have ended by `to`.
    pub fn trips(&self, index: usize, from: i64, to: i64) -> Vec<TripSummary> {
        let mut out = Vec::new();
        for day in Self::days(from, to) {
            let plan = self.plan(index, day);
            for seg in &plan.segments {
                let plan::Activity::Drive(legs) = &seg.activity else { continue };
                if seg.start < from || seg.end > to {
                    continue;
                }
                let Some(last) = legs.last() else { continue };
                out.push(TripSummary {
                    start: seg.start,
                    end: seg.end,
                    from: seg.at,
                    to: last.to,
                    distance_m: legs.iter().map(|l| l.length_m).sum(),
                    max_speed_kmh: legs.iter().map(|l| l.cruise * 3.6).fold(0.0, f64::max),
                });
            }
        }
        out
    }
}
