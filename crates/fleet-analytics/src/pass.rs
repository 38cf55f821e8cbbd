//! One pass of the trip builder over a chunk of devices.
//!
//! A device whose builder is in memory and whose new fixes are all newer than the builder's
//! last one is *warm*: only the new fixes are read and pushed. Any other device is *cold*: the
//! stored segments say where re-derivation may safely restart (`restart_point_of`, the start of
//! the latest stop before the late data), the segments from there are replaced, and a fresh
//! builder reads the stored fixes from that point. A cold start is always correct, so the
//! in-memory builders are only a cache: losing them (a restart, a lost lease) costs time, never
//! correctness. The domain crate property-tests exactly this algorithm against a full rebuild.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use fleet_core::trips::restart_point_of;
use fleet_core::{AnalyticsSettings, Geofences, Segment, TripBuilder, TripPoint};
use sqlx::PgPool;

use fleet_db::analytics::Claim;
use fleet_db::changes::ChangeNotice;
use fleet_db::notifications::route::Rules;
use fleet_db::segments::{self, DeviceOutput};
use fleet_db::tracks::{self, Since};

use crate::notify::SpeedingRuns;

/// A device's builder kept between passes.
#[derive(Debug, Clone)]
pub(crate) struct Warm {
    pub(crate) builder: TripBuilder,
    pub(crate) settings: AnalyticsSettings,
    /// Where the builder's unemitted tail starts (`None`: at the device's first fix).
    pub(crate) settled_until: Option<DateTime<Utc>>,
    /// Geofences the newest fix read is in.
    pub(crate) inside: Option<BTreeSet<i32>>,
    /// Runs above the speeds overspeed rules ask for going on at the newest fix read.
    pub(crate) speeding: SpeedingRuns,
}

/// The builders kept in memory, by device id.
#[derive(Debug, Default)]
pub struct BuilderCache {
    pub(crate) devices: HashMap<i32, Warm>,
    /// The key in-app notifications are announced with: loaded once per worker, outside the
    /// chunk's transaction.
    notify_key: Option<fleet_db::notify::NotifyKey>,
}

impl BuilderCache {
    pub fn clear(&mut self) {
        self.devices.clear();
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

/// What a chunk did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkStats {
    pub devices: usize,
    /// Devices re-derived from stored segments rather than continued in memory.
    pub cold: usize,
    pub fixes_read: usize,
    pub trips_written: usize,
    /// Windows (batches of fixes) a full rebuild's scan was handed on in (0 for a chunk).
    pub windows: usize,
    /// Devices a full rebuild found out of order in the heap and left to be rebuilt by chunks.
    pub reordered: usize,
}

enum Plan {
    Warm(Box<Warm>),
    Cold { from: Option<DateTime<Utc>> },
}

/// Processes `claims` (one chunk) and commits the result in one transaction, in a
/// `trip_chunk` span naming the chunk's device range.
#[tracing::instrument(
    name = "trip_chunk",
    skip_all,
    fields(
        devices = claims.len(),
        first_device = claims.first().map(|c| c.device_id),
        last_device = claims.last().map(|c| c.device_id)
    )
)]
pub async fn run_chunk(
    pool: &PgPool,
    cache: &mut BuilderCache,
    claims: &[Claim],
    settings: &HashMap<i32, AnalyticsSettings>,
    fences: &Geofences,
    now: DateTime<Utc>,
) -> Result<ChunkStats, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut conn = pool.acquire().await?;
    // the enabled notification rules, once per chunk: which events to derive at all
    let rules = Rules::load(&mut conn).await?;
    let overspeed_after = rules.overspeed_thresholds();
    let mut found = Vec::new();
    let fallback = AnalyticsSettings::default();
    let settings_of = |id: i32| settings.get(&id).unwrap_or(&fallback);

    // warm devices continue in memory; the others need their restart point
    let mut plans: HashMap<i32, Plan> = HashMap::new();
    let mut late: Vec<(i32, Option<DateTime<Utc>>)> = Vec::new();
    for c in claims {
        let warm = cache.devices.remove(&c.device_id).filter(|w| {
            !c.full
                && w.settings == *settings_of(c.device_id)
                && match (c.positions_from, w.builder.last_time()) {
                    (Some(from), Some(last)) => from > last,
                    _ => true,
                }
        });
        match warm {
            Some(w) => {
                plans.insert(c.device_id, Plan::Warm(Box::new(w)));
            }
            None if c.full => {
                plans.insert(c.device_id, Plan::Cold { from: None });
            }
            None => late.push((c.device_id, c.positions_from)),
        }
    }
    let spans = segments::recent_spans(&mut conn, &late).await?;
    for (id, late_time) in &late {
        let from = restart_point_of(
            spans.get(id).map_or(&[][..], Vec::as_slice),
            late_time.unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        plans.insert(*id, Plan::Cold { from: (from != DateTime::<Utc>::MIN_UTC).then_some(from) });
    }

    let since: Vec<Since> = claims
        .iter()
        .map(|c| match &plans[&c.device_id] {
            Plan::Warm(w) => {
                Since { device_id: c.device_id, time: w.builder.last_time(), inclusive: false }
            }
            Plan::Cold { from } => Since { device_id: c.device_id, time: *from, inclusive: true },
        })
        .collect();
    let mut fixes = tracks::builder_fixes(&mut conn, &since).await?;
    let before: Vec<(i32, DateTime<Utc>)> = if fences.is_empty() {
        Vec::new()
    } else {
        plans
            .iter()
            .filter_map(|(id, p)| match p {
                Plan::Cold { from: Some(t) } => Some((*id, *t)),
                _ => None,
            })
            .collect()
    };
    let stood = tracks::fix_before(&mut conn, &before).await?;
    drop(conn);
    let loaded = started.elapsed();

    let mut stats = ChunkStats { devices: claims.len(), ..ChunkStats::default() };
    let mut outputs = Vec::with_capacity(claims.len());
    // where each device's new data starts, for notifications (a full rebuild tells nothing)
    let mut new_from: HashMap<i32, DateTime<Utc>> = HashMap::new();
    let mut next: Vec<(i32, Warm)> = Vec::with_capacity(claims.len());
    for c in claims {
        let points = fixes.remove(&c.device_id).unwrap_or_default();
        stats.fixes_read += points.len();
        let s = settings_of(c.device_id);
        // where the days whose KPIs may change begin: for a warm device, where its data ended
        // before (the open segment grows from there); for a cold one, its restart point
        let mut changed_from = None;
        let (mut builder, segments_from, inside_before, mut speeding) =
            match plans.remove(&c.device_id) {
                Some(Plan::Warm(w)) => {
                    let w = *w;
                    changed_from = Some(w.builder.last_time());
                    (w.builder, w.settled_until, w.inside, w.speeding)
                }
                Some(Plan::Cold { from }) => {
                    stats.cold += 1;
                    let inside = match from {
                        Some(_) if !fences.is_empty() => Some(
                            stood.get(&c.device_id).map(|l| fences.ids_at(l)).unwrap_or_default(),
                        ),
                        _ => None,
                    };
                    (TripBuilder::new(s), from, inside, SpeedingRuns::new())
                }
                None => continue,
            };
        let emitted = match builder.push(&points) {
            Ok(emitted) => emitted,
            Err(e) => {
                // cannot happen (warm fixes are newer, cold builders are new); stay safe
                tracing::error!(device = c.device_id, error = %e, "trip builder refused fixes");
                continue;
            }
        };
        if !c.full {
            let first_new = points.first().map(|p| p.time);
            if let Some(t) = [c.positions_from, first_new].into_iter().flatten().max() {
                new_from.insert(c.device_id, t);
            }
        }
        if !overspeed_after.is_empty() {
            found.extend(crate::notify::overspeed_events(
                c.device_id,
                &points,
                s.speed_limit_kmh,
                &overspeed_after,
                new_from.get(&c.device_id).copied(),
                &mut speeding,
            ));
        }
        let settled_until = emitted.last().map(Segment::end).or(segments_from);
        let mut segments = emitted;
        segments.extend(builder.tail(now));
        let events = fences.crossings(inside_before.clone(), &points);
        let inside = points.last().map(|p| fences.ids_at(&p.location)).or(inside_before);
        outputs.push(DeviceOutput {
            device_id: c.device_id,
            segments_from,
            segments,
            events_from: points.first().map(|p| p.time),
            events,
            kpi_from: kpi_from(c, changed_from.unwrap_or(segments_from), &points),
            kpi_to: points.last().map_or(now, |p| p.time.max(now)),
            fixes_from: c.positions_from,
            version: c.version,
        });
        next.push((
            c.device_id,
            Warm { builder, settings: s.clone(), settled_until, inside, speeding },
        ));
    }

    let built = started.elapsed();
    if cache.notify_key.is_none() && !rules.is_empty() {
        cache.notify_key = Some(fleet_db::notify::NotifyKey::load(pool).await?);
    }
    let mut tx = pool.begin().await?;
    stats.trips_written = segments::write_chunk(&mut tx, &outputs, fences).await?;
    let inbox =
        crate::notify::record(&mut tx, &rules, &outputs, &new_from, fences, found, now).await?;
    if let (false, Some(key)) = (inbox.is_empty(), &cache.notify_key) {
        ChangeNotice { inbox, ..ChangeNotice::default() }.notify(&mut tx, key).await?;
    }
    tx.commit().await?;
    tracing::debug!(
        devices = stats.devices,
        fixes = stats.fixes_read,
        load_ms = loaded.as_millis() as u64,
        build_ms = (built - loaded).as_millis() as u64,
        write_ms = (started.elapsed() - built).as_millis() as u64,
        "trip builder chunk"
    );
    cache.devices.extend(next);
    Ok(stats)
}

/// The earliest time whose local day's KPIs may have changed: `changed_from` (where the
/// device's derived data can differ; `None` = from its first fix), the first fix read, or other
/// new data. `None`: from the first day.
fn kpi_from(
    c: &Claim,
    changed_from: Option<DateTime<Utc>>,
    points: &[TripPoint],
) -> Option<DateTime<Utc>> {
    if c.kpi_full || c.full {
        return None;
    }
    let first_point = points.first().map(|p| p.time);
    // a builder that had read nothing yet: the device's data starts with these fixes
    let changed_from = changed_from.or(first_point)?;
    [Some(changed_from), c.kpi_from, first_point].into_iter().flatten().min()
}
