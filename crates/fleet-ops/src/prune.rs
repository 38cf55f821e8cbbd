//! Which scheduled backups to keep: the newest backup of each of the last `daily` days that
//! have one, of each of the last `weekly` ISO weeks and of each of the last `monthly` months
//! (the usual grandfather-father-son rotation). Backups taken by hand are never pruned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};

use crate::backup::{sidecars, Manifest};
use crate::{io_err, OpsError};

/// How many of each period to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepPolicy {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// Indexes into `taken` (times of scheduled backups, any order) of the backups to keep.
pub fn keep(taken: &[DateTime<Utc>], policy: KeepPolicy) -> HashSet<usize> {
    let mut order: Vec<usize> = (0..taken.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(taken[i]));
    let mut kept = HashSet::new();
    let mut pick = |limit: u32, period: &dyn Fn(DateTime<Utc>) -> (i32, u32)| {
        let mut seen = Vec::new();
        for &i in &order {
            let p = period(taken[i]);
            if seen.contains(&p) {
                continue;
            }
            if seen.len() as u32 >= limit {
                break;
            }
            seen.push(p);
            kept.insert(i);
        }
    };
    pick(policy.daily, &|t| (t.year(), t.ordinal()));
    pick(policy.weekly, &|t| (t.iso_week().year(), t.iso_week().week()));
    pick(policy.monthly, &|t| (t.year(), t.month()));
    kept
}

/// A scheduled backup found in the backup directory.
#[derive(Debug, Clone)]
struct Found {
    dump: PathBuf,
    taken_at: DateTime<Utc>,
}

/// Deletes the scheduled backups in `dir` that `policy` does not keep (the dump, its checksum
/// and its manifest) and their rows in `fleet.backups`; returns the dumps deleted.
#[tracing::instrument(name = "backup_prune", skip_all, fields(dir = %dir.display(), ?policy))]
pub async fn prune(
    pool: &sqlx::PgPool,
    dir: &Path,
    policy: KeepPolicy,
) -> Result<Vec<PathBuf>, OpsError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("fleetd-") && name.ends_with(".dump")) {
            continue;
        }
        let (_, manifest_path) = sidecars(&path);
        let Ok(text) = std::fs::read_to_string(&manifest_path) else { continue };
        let Ok(m) = serde_json::from_str::<Manifest>(&text) else { continue };
        if m.scheduled {
            found.push(Found { dump: path, taken_at: m.taken_at });
        }
    }
    let times: Vec<DateTime<Utc>> = found.iter().map(|f| f.taken_at).collect();
    let kept = keep(&times, policy);
    let mut deleted = Vec::new();
    for (i, f) in found.into_iter().enumerate() {
        if kept.contains(&i) {
            continue;
        }
        let (sum, manifest) = sidecars(&f.dump);
        for p in [&f.dump, &sum, &manifest] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("deleting", p)(e)),
            }
        }
        let name = f.dump.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        fleet_db::backups::forget_scheduled(pool, &name)
            .await
            .map_err(|cause| OpsError::Query { context: "forgetting a pruned backup", cause })?;
        tracing::info!(path = %f.dump.display(), "old scheduled backup deleted");
        deleted.push(f.dump);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("time")
    }

    #[test]
    fn keeps_the_newest_of_each_day_week_and_month() {
        // two backups a day from 2026-09-01 to 2026-11-26 (a Thursday)
        let mut taken = Vec::new();
        let mut day = at(2026, 9, 1, 2);
        while day <= at(2026, 11, 26, 2) {
            taken.push(day);
            taken.push(day + chrono::Duration::hours(12));
            day += chrono::Duration::days(1);
        }
        let kept = keep(&taken, KeepPolicy { daily: 3, weekly: 2, monthly: 3 });
        let mut times: Vec<DateTime<Utc>> = kept.iter().map(|&i| taken[i]).collect();
        times.sort();
        assert_eq!(
            times,
            vec![
                at(2026, 9, 30, 14),  // newest of September
                at(2026, 10, 31, 14), // newest of October
                at(2026, 11, 22, 14), // newest of the week before (ends Sunday 22nd)
                at(2026, 11, 24, 14), // daily
                at(2026, 11, 25, 14), // daily
                at(2026, 11, 26, 14), // daily, this week's and this month's newest too
            ]
        );
    }

    #[test]
    fn keeping_nothing_keeps_nothing_and_an_empty_list_is_fine() {
        assert!(
            keep(&[at(2026, 1, 1, 0)], KeepPolicy { daily: 0, weekly: 0, monthly: 0 }).is_empty()
        );
        assert!(keep(&[], KeepPolicy { daily: 7, weekly: 4, monthly: 6 }).is_empty());
    }
}
