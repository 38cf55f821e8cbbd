//! What the soak learns from the pusher: each acknowledged batch's latency, every acknowledged
//! GPS fix once, and per vehicle the acknowledged fixes that fleetd's derived data does not
//! reflect yet, from which the trip-builder and KPI lags are measured.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use fleet_sim::push::{AckedItem, PushKind, PushObserver};

use super::now_s;

/// A fix waiting to be reflected: its GPS time and when it was acknowledged (unix seconds).
pub type Waiting = Vec<(i64, f64)>;

/// The pusher's observer.
#[derive(Debug, Default)]
pub struct Tracker {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Latencies of the requests acknowledged since the last [`Tracker::take_interval`], ms.
    latencies_ms: Vec<f64>,
    /// Every request's latency, ms, for the run's percentiles.
    all_latencies_ms: Vec<f32>,
    items: u64,
    /// Unique acknowledged fixes: (IMEI as a number, GPS time).
    fixes: HashSet<(u64, i64)>,
    /// Acknowledged again after their first acknowledgement (the vendor's duplicates).
    repeated_fixes: u64,
    /// Per IMEI, fixes newer than the vehicle's latest trip/stop end as last seen.
    trip_waiting: HashMap<u64, Waiting>,
    /// Per IMEI, fixes newer than their local day's `kpi_daily.last_fix_time` as last seen.
    kpi_waiting: HashMap<u64, Waiting>,
}

/// What was acknowledged in one sampling interval.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Interval {
    pub requests: usize,
    pub items: u64,
    pub latencies_ms: Vec<f64>,
}

impl PushObserver for Tracker {
    fn acknowledged(&self, kind: PushKind, items: &[AckedItem], latency: Duration) {
        let at = now_s();
        let ms = latency.as_secs_f64() * 1000.0;
        let Ok(mut g) = self.inner.lock() else { return };
        g.latencies_ms.push(ms);
        g.all_latencies_ms.push(ms as f32);
        g.items += items.len() as u64;
        if kind != PushKind::Gps {
            return;
        }
        for item in items {
            let Ok(imei) = item.imei.parse::<u64>() else { continue };
            if !g.fixes.insert((imei, item.time)) {
                g.repeated_fixes += 1;
                continue;
            }
            g.trip_waiting.entry(imei).or_default().push((item.time, at));
            g.kpi_waiting.entry(imei).or_default().push((item.time, at));
        }
    }
}

impl Tracker {
    /// The interval's requests and items, starting the next interval.
    pub fn take_interval(&self) -> Interval {
        let Ok(mut g) = self.inner.lock() else { return Interval::default() };
        let latencies_ms = std::mem::take(&mut g.latencies_ms);
        Interval { requests: latencies_ms.len(), items: std::mem::take(&mut g.items), latencies_ms }
    }

    /// Every request's latency so far, ms.
    pub fn all_latencies_ms(&self) -> Vec<f64> {
        self.inner
            .lock()
            .map(|g| g.all_latencies_ms.iter().map(|&v| f64::from(v)).collect())
            .unwrap_or_default()
    }

    /// Unique acknowledged fixes and repeated acknowledgements of them.
    pub fn fixes(&self) -> (u64, u64) {
        self.inner.lock().map(|g| (g.fixes.len() as u64, g.repeated_fixes)).unwrap_or_default()
    }

    /// IMEIs with fixes waiting for the trip builder.
    pub fn trip_waiting_imeis(&self) -> Vec<u64> {
        self.inner.lock().map(|g| g.trip_waiting.keys().copied().collect()).unwrap_or_default()
    }

    /// IMEIs with fixes waiting for the KPI step.
    pub fn kpi_waiting_imeis(&self) -> Vec<u64> {
        self.inner.lock().map(|g| g.kpi_waiting.keys().copied().collect()).unwrap_or_default()
    }

    /// Drops the fixes the trips now reflect and returns the waits of the vehicles still waiting.
    pub fn settle_trips(&self, covered: impl Fn(u64, i64) -> bool, now: f64) -> Vec<f64> {
        self.inner.lock().map(|mut g| settle(&mut g.trip_waiting, covered, now)).unwrap_or_default()
    }

    /// Drops the fixes the daily KPIs now reflect and returns the waits of the vehicles still
    /// waiting.
    pub fn settle_kpis(&self, covered: impl Fn(u64, i64) -> bool, now: f64) -> Vec<f64> {
        self.inner.lock().map(|mut g| settle(&mut g.kpi_waiting, covered, now)).unwrap_or_default()
    }
}

/// Removes from `waiting` every fix `covered(imei, gps_time)` says is reflected, then returns,
/// for each vehicle with a fix left, how long its earliest-acknowledged remaining fix has waited
/// at `now` (seconds).
pub fn settle(
    waiting: &mut HashMap<u64, Waiting>,
    covered: impl Fn(u64, i64) -> bool,
    now: f64,
) -> Vec<f64> {
    let mut waits = Vec::new();
    waiting.retain(|&imei, fixes| {
        fixes.retain(|&(t, _)| !covered(imei, t));
        match fixes.iter().map(|&(_, at)| at).reduce(f64::min) {
            Some(oldest) => {
                waits.push((now - oldest).max(0.0));
                true
            }
            None => false,
        }
    });
    waits
}

/// The `p`-th percentile (0–100, nearest rank) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(imei: &str, time: i64) -> AckedItem {
        AckedItem { kind: PushKind::Gps, imei: imei.to_owned(), time }
    }

    #[test]
    fn fixes_wait_until_covered_and_the_wait_runs_from_the_earliest_acknowledgement() {
        let mut waiting: HashMap<u64, Waiting> = HashMap::new();
        waiting.insert(1, vec![(100, 1000.0), (110, 1002.0), (120, 1001.0)]);
        waiting.insert(2, vec![(100, 1005.0)]);
        // vehicle 1's trips reach 110, vehicle 2's nothing yet
        let end = |imei: u64| if imei == 1 { 110 } else { 0 };
        let mut waits = settle(&mut waiting, |imei, t| t <= end(imei), 1010.0);
        waits.sort_by(f64::total_cmp);
        assert_eq!(waits, vec![5.0, 9.0], "vehicle 2 waits 5 s, vehicle 1's fix at 120 9 s");
        assert_eq!(waiting[&1], vec![(120, 1001.0)]);
        let waits = settle(&mut waiting, |_, _| true, 1020.0);
        assert!(waits.is_empty());
        assert!(waiting.is_empty(), "covered vehicles leave the map");
    }

    #[test]
    fn the_tracker_counts_each_fix_once_and_only_fixes_wait() {
        let t = Tracker::default();
        t.acknowledged(PushKind::Gps, &[acked("861", 10), acked("861", 20)], Duration::ZERO);
        t.acknowledged(PushKind::Gps, &[acked("861", 20)], Duration::from_millis(5));
        let hb = AckedItem { kind: PushKind::Heartbeat, imei: "862".to_owned(), time: 10 };
        t.acknowledged(PushKind::Heartbeat, &[hb], Duration::from_millis(7));
        assert_eq!(t.fixes(), (2, 1));
        assert_eq!(t.trip_waiting_imeis(), vec![861]);
        assert_eq!(t.kpi_waiting_imeis(), vec![861]);
        let i = t.take_interval();
        assert_eq!((i.requests, i.items), (3, 4));
        assert_eq!(i.latencies_ms, vec![0.0, 5.0, 7.0]);
        assert_eq!(t.take_interval().requests, 0, "the next interval starts empty");
        assert_eq!(t.all_latencies_ms().len(), 3);
        // trips cover the first fix only: 861 still waits; KPIs cover both
        assert_eq!(t.settle_trips(|_, time| time <= 10, now_s()).len(), 1);
        assert!(t.settle_kpis(|_, _| true, now_s()).is_empty());
        assert!(t.kpi_waiting_imeis().is_empty());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
