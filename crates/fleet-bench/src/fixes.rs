//! The fixes a benchmark sends: the GPS Data Push items the simulated vendor would push for a
//! fleet over a span of time, generated up front so producing them never competes with the
//! measured run.

use std::collections::HashSet;
use std::thread;

use fleet_sim::push::{items_between, PushKind};
use fleet_sim::Fleet;

/// Most items the vendor puts in one Data Push request.
pub const VENDOR_MAX_ITEMS: usize = 50;

/// Local noon in East Africa (UTC+3), the end of the default window: the hours before it are
/// working hours, when vehicles drive and report most often.
const DEFAULT_END_HOUR_UTC: i64 = 9;

/// The default end of the window: the latest 09:00 UTC at or before `now` (unix seconds). It
/// moves once a day, so runs on the same day send identical fixes.
pub fn default_end(now: i64) -> i64 {
    let day = now.div_euclid(86_400) * 86_400;
    let end = day + DEFAULT_END_HOUR_UTC * 3600;
    if end <= now {
        end
    } else {
        end - 86_400
    }
}

/// One GPS Data Push item, kept as the JSON text the vendor sends (a fraction of the memory of
/// a parsed value, which matters at a million items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpsItem {
    /// Unix seconds of the fix.
    pub time: i64,
    pub imei: String,
    pub json: String,
}

/// The GPS items of the first `vehicles` vehicles of fleet `seed` with times in `(from, to]`,
/// one per (device, GPS time), ordered by time then device so that each request carries many
/// devices, as a live push does. Generation is spread over `threads` threads.
pub fn gps_items(seed: u64, vehicles: usize, from: i64, to: i64, threads: usize) -> Vec<GpsItem> {
    let fleet = Fleet::new(seed, vehicles);
    let threads = threads.clamp(1, vehicles.max(1));
    let per_thread = vehicles.div_ceil(threads).max(1);
    let mut items: Vec<GpsItem> = thread::scope(|s| {
        let fleet = &fleet;
        let workers: Vec<_> = fleet
            .vehicles()
            .chunks(per_thread)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .flat_map(|v| items_between(fleet, v, from, to))
                        .filter(|i| i.kind == PushKind::Gps)
                        .map(|i| GpsItem { time: i.time, json: i.body.to_string(), imei: i.imei })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // a panic in a worker is a bug in the model: raise it here rather than lose its vehicles
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    items.sort_by(|a, b| (a.time, &a.imei).cmp(&(b.time, &b.imei)));
    // a device reports one fix per GPS time; the key fleetd stores by must match the count
    items.dedup_by(|x, y| x.time == y.time && x.imei == y.imei);
    items
}

/// Distinct devices among `items`.
pub fn devices(items: &[GpsItem]) -> usize {
    items.iter().map(|i| i.imei.as_str()).collect::<HashSet<_>>().len()
}

/// The `data_list` field of each request: `items` in chunks of `per_request` (at most the
/// vendor's 50), as JSON arrays, with how many items each holds.
pub fn data_lists(items: &[GpsItem], per_request: usize) -> Vec<(usize, String)> {
    items
        .chunks(per_request.clamp(1, VENDOR_MAX_ITEMS))
        .map(|chunk| {
            let mut list = String::with_capacity(chunk.iter().map(|i| i.json.len() + 1).sum());
            list.push('[');
            for (k, item) in chunk.iter().enumerate() {
                if k > 0 {
                    list.push(',');
                }
                list.push_str(&item.json);
            }
            list.push(']');
            (chunk.len(), list)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_end_is_the_latest_nine_o_clock_utc() {
        let day = 20_000 * 86_400;
        assert_eq!(default_end(day + 10 * 3600), day + 9 * 3600);
        assert_eq!(default_end(day + 9 * 3600), day + 9 * 3600);
        assert_eq!(default_end(day + 8 * 3600), day + 9 * 3600 - 86_400);
    }

    #[test]
    fn items_are_gps_only_unique_and_in_time_order() {
        let end = default_end(1_790_000_000);
        let items = gps_items(3, 20, end - 2 * 3600, end, 2);
        assert!(!items.is_empty());
        assert!(items.iter().all(|i| i.json.contains("\"gpsTime\"")));
        assert!(items.windows(2).all(|w| (w[0].time, &w[0].imei) < (w[1].time, &w[1].imei)));
        // the same seed and window give the same fixes
        assert_eq!(items, gps_items(3, 20, end - 2 * 3600, end, 1));
    }

    #[test]
    fn lists_hold_at_most_the_vendor_maximum() {
        let end = default_end(1_790_000_000);
        let items = gps_items(3, 20, end - 3600, end, 1);
        let lists = data_lists(&items, 500);
        assert!(lists.iter().all(|(n, _)| *n <= VENDOR_MAX_ITEMS));
        assert_eq!(lists.iter().map(|(n, _)| n).sum::<usize>(), items.len());
        let first: serde_json::Value = serde_json::from_str(&lists[0].1).unwrap_or_default();
        assert_eq!(first.as_array().map(Vec::len), Some(lists[0].0));
    }
}
