//! The full rebuild of the devices marked for one (`fleetd trips rebuild`, a changed trip rule):
//! every fix of every such device is read in one pass over `fleet.positions`, a window of GPS
//! time at a time, instead of one scan of the table per chunk of devices.
//!
//! Three stages run at once, joined by bounded channels: the loader reads window after window
//! (binary COPY), the builder feeds each device's fixes of a window to its [`TripBuilder`] and
//! hands the segments that became final to the writer, and the writer inserts them. At most
//! three windows are in memory (one loading, one queued, one building), whatever the size of
//! the table. The writer works in one transaction that first deletes the devices' segments and
//! ends by inserting the open tails, geofence events and KPI queue and clearing the marks:
//! readers see the old derivation until the new one is complete, and a failure leaves the
//! marks for the next pass.
//!
//! Feeding a builder window after window is what a warm pass does with new fixes, so the result
//! is the same as pushing all of a device's fixes at once (the tests compare the two).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::{AnalyticsSettings, GeofenceEvent, Geofences, Segment, TripBuilder, TripPoint};
use sqlx::PgPool;
use tokio::sync::mpsc;

use fleet_db::analytics::Claim;
use fleet_db::fix_scan;
use fleet_db::notifications::route::Rules;
use fleet_db::segments::{self, DeviceOutput};

use crate::notify::SpeedingRuns;
use crate::pass::{BuilderCache, ChunkStats, Warm};

/// One window's fixes, in heap order.
type Window = Vec<(i32, TripPoint)>;

/// What the builder hands the writer.
enum ToWriter {
    /// Segments that became final.
    Final(Vec<DeviceOutput>),
    /// The devices' open tails, geofence events, KPI days and marks: the last message.
    Finish(Vec<DeviceOutput>),
}

/// A device being rebuilt.
struct Device {
    claim: Claim,
    settings: AnalyticsSettings,
    builder: TripBuilder,
    /// The window's fixes, gathered before they are fed.
    window: Vec<TripPoint>,
    inside: Option<BTreeSet<i32>>,
    speeding: SpeedingRuns,
    settled_until: Option<DateTime<Utc>>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    events: Vec<GeofenceEvent>,
}

/// Rebuilds `claims` (all `full`, in device order) from their first fix; commits once.
#[tracing::instrument(name = "trip_rebuild", skip_all, fields(devices = claims.len()))]
pub(crate) async fn run_rebuild(
    pool: &PgPool,
    cache: &mut BuilderCache,
    claims: Vec<Claim>,
    settings: &HashMap<i32, AnalyticsSettings>,
    fences: &Geofences,
    now: DateTime<Utc>,
    window_fixes: usize,
) -> Result<ChunkStats, sqlx::Error> {
    let started = Instant::now();
    let ids: Vec<i32> = claims.iter().map(|c| c.device_id).collect();
    for id in &ids {
        cache.devices.remove(id);
    }
    let mut conn = pool.acquire().await?;
    // only to carry the runs above overspeed limits into the builders kept afterwards: a
    // rebuild tells nothing new
    let overspeed_after = Rules::load(&mut conn).await?.overspeed_thresholds();
    let span = fix_scan::time_span(&mut conn, &ids).await?;
    let rows = fix_scan::estimated_rows(&mut conn).await?;
    drop(conn);

    let fallback = AnalyticsSettings::default();
    let devices: Vec<Device> = claims
        .into_iter()
        .map(|claim| {
            let s = settings.get(&claim.device_id).unwrap_or(&fallback).clone();
            Device {
                builder: TripBuilder::new(&s),
                settings: s,
                claim,
                window: Vec::new(),
                inside: None,
                speeding: SpeedingRuns::new(),
                settled_until: None,
                first: None,
                last: None,
                events: Vec::new(),
            }
        })
        .collect();

    let (window_tx, window_rx) = mpsc::channel::<Result<Window, sqlx::Error>>(1);
    let (out_tx, out_rx) = mpsc::channel::<ToWriter>(2);
    let writer = tokio::spawn(write(pool.clone(), ids.clone(), fences.clone(), out_rx));
    let loader = tokio::spawn(load(pool.clone(), ids, span, rows, window_fixes, window_tx));
    let build_fences = fences.clone();
    let builder = tokio::task::spawn_blocking(move || {
        build(devices, &build_fences, &overspeed_after, now, window_rx, out_tx)
    });
    let built = builder.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let (windows, load_busy) =
        loader.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let written = writer.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    // the stage that failed first names the error; the others only saw a closed channel
    let (warm, mut stats, build_busy) = match built {
        Ok(built) => built,
        Err(BuildStop::Load(e)) => return Err(e),
        Err(BuildStop::WriterGone) => return Err(written.err().unwrap_or_else(writer_gone)),
    };
    let (trips_written, write_busy) = written?;
    stats.trips_written = trips_written;
    stats.windows = windows;
    tracing::debug!(
        devices = stats.devices,
        fixes = stats.fixes_read,
        windows,
        load_ms = load_busy.as_millis() as u64,
        build_ms = build_busy.as_millis() as u64,
        write_ms = write_busy.as_millis() as u64,
        took_ms = started.elapsed().as_millis() as u64,
        "trip builder rebuild"
    );
    cache.devices.extend(warm);
    Ok(stats)
}

/// What the builder leaves: the builders to keep, the stats and the time spent building.
type Built = (Vec<(i32, Warm)>, ChunkStats, Duration);

/// Why the builder stopped before the end.
enum BuildStop {
    /// Reading a window failed.
    Load(sqlx::Error),
    /// The writer stopped (its own error tells why).
    WriterGone,
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::Protocol("the trip rebuild's writer stopped".to_owned())
}

/// Reads the windows from `span`'s start to its end, each about `target` fixes wide (judged
/// from the table's size, then from the fixes each window held), into `windows`; a failure is
/// sent on as the last window. Returns how many windows it read and the time spent reading.
async fn load(
    pool: PgPool,
    ids: Vec<i32>,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    rows: f64,
    target: usize,
    windows: mpsc::Sender<Result<Window, sqlx::Error>>,
) -> (usize, Duration) {
    let mut busy = Duration::ZERO;
    let Some((first, last)) = span else { return (0, busy) };
    let end = last + TimeDelta::microseconds(1);
    let whole = end - first;
    let mut width = if rows >= 1.0 {
        let parts = (rows / target.max(1) as f64).max(1.0);
        TimeDelta::microseconds(
            (whole.num_microseconds().unwrap_or(i64::MAX) as f64 / parts) as i64,
        )
    } else {
        TimeDelta::hours(1)
    }
    .max(TimeDelta::seconds(1));
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            let _ = windows.send(Err(e)).await;
            return (0, busy);
        }
    };
    let mut from = first;
    let mut count = 0;
    while from < end {
        let to = from.checked_add_signed(width).map_or(end, |t| t.min(end));
        let started = Instant::now();
        let mut window = Vec::with_capacity(target.min(1 << 20));
        if let Err(e) = fix_scan::window_fixes(&mut conn, &ids, from, to, &mut window).await {
            let _ = windows.send(Err(e)).await;
            return (count, busy);
        }
        tracing::trace!(
            %from,
            %to,
            fixes = window.len(),
            load_ms = started.elapsed().as_millis() as u64,
            "trip rebuild window"
        );
        count += 1;
        busy += started.elapsed();
        width = fix_scan::next_width(width, window.len(), target);
        if windows.send(Ok(window)).await.is_err() {
            break; // the builder stopped; its error tells why
        }
        from = to;
    }
    (count, busy)
}

/// Feeds the windows to the devices' builders and hands the final segments to the writer.
/// Returns the builders to keep, the stats and the time spent building.
fn build(
    mut devices: Vec<Device>,
    fences: &Geofences,
    overspeed_after: &[(i64, Option<f64>)],
    now: DateTime<Utc>,
    mut windows: mpsc::Receiver<Result<Window, sqlx::Error>>,
    out: mpsc::Sender<ToWriter>,
) -> Result<Built, BuildStop> {
    let index: HashMap<i32, usize> =
        devices.iter().enumerate().map(|(i, d)| (d.claim.device_id, i)).collect();
    let mut stats =
        ChunkStats { devices: devices.len(), cold: devices.len(), ..ChunkStats::default() };
    let mut busy = Duration::ZERO;
    // the devices are fed on several threads, each its share of them in device order
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    let share = devices.len().div_ceil(threads).max(1);
    while let Some(window) = windows.blocking_recv() {
        let window = window.map_err(BuildStop::Load)?;
        let started = Instant::now();
        stats.fixes_read += window.len();
        for (id, point) in window {
            // the loader asked for these devices only
            let Some(&i) = index.get(&id) else { continue };
            devices[i].window.push(point);
        }
        let feed = |part: &mut [Device]| -> Vec<DeviceOutput> {
            part.iter_mut()
                .filter(|d| !d.window.is_empty())
                .filter_map(|d| d.feed(fences, overspeed_after))
                .collect()
        };
        let finals: Vec<DeviceOutput> = if devices.len() <= share {
            feed(&mut devices)
        } else {
            std::thread::scope(|scope| {
                let parts: Vec<_> =
                    devices.chunks_mut(share).map(|part| scope.spawn(move || feed(part))).collect();
                parts
                    .into_iter()
                    .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        busy += started.elapsed();
        if !finals.is_empty() {
            out.blocking_send(ToWriter::Final(finals)).map_err(|_| BuildStop::WriterGone)?;
        }
    }
    let started = Instant::now();
    let mut outputs = Vec::with_capacity(devices.len());
    let mut warm = Vec::with_capacity(devices.len());
    for d in devices {
        outputs.push(DeviceOutput {
            device_id: d.claim.device_id,
            segments_from: None,
            segments: d.builder.tail(now),
            events_from: d.first,
            events: d.events,
            kpi_from: None,
            kpi_to: d.last.map_or(now, |t| t.max(now)),
            // from the first day: the KPI step recounts every fix (see kpis::queue)
            fixes_from: None,
            version: d.claim.version,
        });
        warm.push((
            d.claim.device_id,
            Warm {
                builder: d.builder,
                settings: d.settings,
                settled_until: d.settled_until,
                inside: d.inside,
                speeding: d.speeding,
            },
        ));
    }
    busy += started.elapsed();
    out.blocking_send(ToWriter::Finish(outputs)).map_err(|_| BuildStop::WriterGone)?;
    Ok((warm, stats, busy))
}

impl Device {
    /// Feeds the fixes gathered from a window; returns the segments that became final.
    fn feed(
        &mut self,
        fences: &Geofences,
        overspeed_after: &[(i64, Option<f64>)],
    ) -> Option<DeviceOutput> {
        let mut points = std::mem::take(&mut self.window);
        // a window's fixes come in heap order, nearly always already in time order
        points.sort_by_key(|p| p.time);
        let (first, last) = (points.first()?.time, points.last()?.time);
        self.first.get_or_insert(first);
        self.last = Some(last);
        if !overspeed_after.is_empty() {
            // with no new data to tell of, this only carries the runs on
            crate::notify::overspeed_events(
                self.claim.device_id,
                &points,
                self.settings.speed_limit_kmh,
                overspeed_after,
                None,
                &mut self.speeding,
            );
        }
        self.events.extend(fences.crossings(self.inside.take(), &points));
        self.inside = points.last().map(|p| fences.ids_at(&p.location));
        let emitted = match self.builder.push(&points) {
            Ok(emitted) => emitted,
            Err(e) => {
                // cannot happen: windows come in time order and do not overlap
                tracing::error!(device = self.claim.device_id, error = %e, "trip builder refused fixes");
                Vec::new()
            }
        };
        // keep the buffer's room for the next window, unless a burst left it far too big
        let used = points.len();
        points.clear();
        if points.capacity() > 4 * used.max(256) {
            points.shrink_to(used);
        }
        self.window = points;
        self.settled_until = emitted.last().map(Segment::end).or(self.settled_until);
        (!emitted.is_empty()).then(|| DeviceOutput {
            device_id: self.claim.device_id,
            segments_from: None,
            segments: emitted,
            events_from: None,
            events: Vec::new(),
            kpi_from: None,
            kpi_to: DateTime::<Utc>::MIN_UTC,
            fixes_from: None,
            version: None,
        })
    }
}

/// Deletes the devices' segments, inserts what the builder hands over, finishes and commits.
/// Returns the trips written and the time spent writing.
async fn write(
    pool: PgPool,
    ids: Vec<i32>,
    fences: Geofences,
    mut from_builder: mpsc::Receiver<ToWriter>,
) -> Result<(usize, Duration), sqlx::Error> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    segments::delete_all(&mut tx, &ids).await?;
    let mut busy = started.elapsed();
    let mut trips = 0;
    while let Some(message) = from_builder.recv().await {
        let started = Instant::now();
        match message {
            ToWriter::Final(outputs) => {
                trips += segments::insert_segments(&mut tx, &outputs, &fences).await?;
            }
            ToWriter::Finish(outputs) => {
                trips += segments::write_rest(&mut tx, &outputs, &fences).await?;
                tx.commit().await?;
                return Ok((trips, busy + started.elapsed()));
            }
        }
        busy += started.elapsed();
    }
    // the builder stopped early: dropping the transaction rolls it back
    Err(sqlx::Error::Protocol("the trip rebuild stopped before its end".to_owned()))
}
