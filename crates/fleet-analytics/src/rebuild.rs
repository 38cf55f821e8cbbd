//! The full rebuild of the devices marked for one (`fleetd trips rebuild`, a changed trip rule):
//! every fix of every such device is read in one sequential scan of `fleet.positions`, in heap
//! (arrival) order, instead of one scan of the table per chunk of devices.
//!
//! Three stages run at once, joined by bounded channels: the loader hands on the scan's fixes a
//! window (batch) at a time, the builder feeds each device's fixes of a window, sorted, to its
//! [`TripBuilder`] and hands the segments that became final to the writer, and the writer
//! inserts them. At most three windows are in memory (one loading, one queued, one building),
//! whatever the size of the table. The writer works in one transaction that first deletes the
//! devices' segments and ends by inserting the open tails, geofence events and KPI queue and
//! clearing the marks: readers see the old derivation until the new one is complete, and a
//! failure leaves the marks for the next pass.
//!
//! Arrival order is time order for a device unless older fixes arrived after newer ones in
//! another window (a late batch): such a device is dropped from the scan's result (its
//! segments written so far are deleted again before the commit) and returned to be rebuilt from
//! its fixes in time order, the way a pass does (so its trips are briefly missing between the
//! two commits). Feeding a builder window after window is what a warm pass does with new fixes,
//! so the result is the same as pushing all of a device's fixes at once (the tests compare the
//! two).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
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
    /// The devices' open tails, geofence events, KPI days and marks, and the devices whose fixes
    /// came out of order (their segments are deleted again): the last message.
    Finish(Vec<DeviceOutput>, Vec<i32>),
}

/// A device being rebuilt.
struct Device {
    claim: Claim,
    settings: AnalyticsSettings,
    builder: TripBuilder,
    /// The window's fixes, gathered before they are fed.
    window: Vec<TripPoint>,
    /// Fixes of earlier windows not fed yet, in time order ([`Device::take_window`]).
    held: Vec<TripPoint>,
    inside: Option<BTreeSet<i32>>,
    speeding: SpeedingRuns,
    settled_until: Option<DateTime<Utc>>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    events: Vec<GeofenceEvent>,
    /// Fixes came older than some already fed: the device is rebuilt another way.
    out_of_order: bool,
}

/// Rebuilds `claims` (all `full`, in device order) from their first fix; commits once. Returns
/// the stats and the claims of the devices whose fixes were not in time order in the heap:
/// still marked, to be rebuilt from fixes read in time order ([`crate::pass::run_chunk`]).
#[tracing::instrument(name = "trip_rebuild", skip_all, fields(devices = claims.len()))]
pub(crate) async fn run_rebuild(
    pool: &PgPool,
    cache: &mut BuilderCache,
    claims: Vec<Claim>,
    settings: &HashMap<i32, AnalyticsSettings>,
    fences: &Geofences,
    now: DateTime<Utc>,
    window_fixes: usize,
) -> Result<(ChunkStats, Vec<Claim>), sqlx::Error> {
    let started = Instant::now();
    let ids: Vec<i32> = claims.iter().map(|c| c.device_id).collect();
    for id in &ids {
        cache.devices.remove(id);
    }
    let mut conn = pool.acquire().await?;
    // only to carry the runs above overspeed limits into the builders kept afterwards: a
    // rebuild tells nothing new
    let overspeed_after = Rules::load(&mut conn).await?.overspeed_thresholds();
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
                held: Vec::new(),
                inside: None,
                speeding: SpeedingRuns::new(),
                settled_until: None,
                first: None,
                last: None,
                events: Vec::new(),
                out_of_order: false,
            }
        })
        .collect();

    let (window_tx, window_rx) = mpsc::channel::<Result<Window, sqlx::Error>>(1);
    let (out_tx, out_rx) = mpsc::channel::<ToWriter>(2);
    let writer = tokio::spawn(write(pool.clone(), ids.clone(), fences.clone(), out_rx));
    let loader = tokio::spawn(load(pool.clone(), ids, window_fixes, window_tx));
    let build_fences = fences.clone();
    let builder = tokio::task::spawn_blocking(move || {
        build(devices, &build_fences, &overspeed_after, now, window_rx, out_tx)
    });
    let built = builder.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let (windows, load_busy) =
        loader.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let written = writer.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    // the stage that failed first names the error; the others only saw a closed channel
    let (warm, redo, mut stats, build_busy) = match built {
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
        out_of_order = redo.len(),
        load_ms = load_busy.as_millis() as u64,
        build_ms = build_busy.as_millis() as u64,
        write_ms = write_busy.as_millis() as u64,
        took_ms = started.elapsed().as_millis() as u64,
        "trip builder rebuild"
    );
    cache.devices.extend(warm);
    Ok((stats, redo))
}

/// What the builder leaves: the builders to keep, the claims of the devices to rebuild another
/// way, the stats and the time spent building.
type Built = (Vec<(i32, Warm)>, Vec<Claim>, ChunkStats, Duration);

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

/// Reads the devices' fixes in one scan, handing them on in windows of about `target` fixes;
/// a failure is sent on as the last window. Returns how many windows it read and the time
/// spent reading (including waits for the builder to take a window).
async fn load(
    pool: PgPool,
    ids: Vec<i32>,
    target: usize,
    windows: mpsc::Sender<Result<Window, sqlx::Error>>,
) -> (usize, Duration) {
    let started = Instant::now();
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            let _ = windows.send(Err(e)).await;
            return (0, started.elapsed());
        }
    };
    let mut count = 0;
    let scan = fix_scan::heap_fixes(&mut conn, &ids, target, |window| {
        count += 1;
        let windows = windows.clone();
        // a closed channel: the builder stopped; its error tells why
        async move { windows.send(Ok(window)).await.is_ok() }
    })
    .await;
    match scan {
        Ok(fix_scan::ScanEnd::Complete) => {}
        Ok(fix_scan::ScanEnd::Stopped) => conn.close_on_drop(),
        Err(e) => {
            conn.close_on_drop();
            let _ = windows.send(Err(e)).await;
        }
    }
    (count, started.elapsed())
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
                .filter_map(|d| d.take_window(fences, overspeed_after))
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
    let mut redo = Vec::new();
    for mut d in devices {
        if d.out_of_order {
            redo.push(d.claim);
            continue;
        }
        let mut segments = d.take_held(fences, overspeed_after);
        segments.extend(d.builder.tail(now));
        outputs.push(DeviceOutput {
            device_id: d.claim.device_id,
            segments_from: None,
            segments,
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
    stats.devices -= redo.len();
    stats.cold -= redo.len();
    stats.reordered = redo.len();
    let redo_ids = redo.iter().map(|c| c.device_id).collect();
    out.blocking_send(ToWriter::Finish(outputs, redo_ids)).map_err(|_| BuildStop::WriterGone)?;
    Ok((warm, redo, stats, busy))
}

impl Device {
    /// Takes the fixes gathered from a window. A device's fixes can sit a little out of arrival
    /// order in the heap (each connection inserting fills its own last page), so they are held
    /// back one window: only the fixes older than all of this window's are fed. Returns the
    /// segments that became final.
    fn take_window(
        &mut self,
        fences: &Geofences,
        overspeed_after: &[(i64, Option<f64>)],
    ) -> Option<DeviceOutput> {
        let mut points = std::mem::take(&mut self.window);
        if self.out_of_order {
            return None;
        }
        // a window's fixes come in heap order, nearly always already in time order
        points.sort_by_key(|p| p.time);
        let oldest = points.first()?.time;
        if self.builder.last_time().is_some_and(|fed| oldest <= fed) {
            // older than fixes already fed (a late batch stored after newer ones): what was
            // built is wrong from there on; let go of it and rebuild the device another way
            self.out_of_order = true;
            self.builder = TripBuilder::new(&self.settings);
            self.events = Vec::new();
            self.held = Vec::new();
            return None;
        }
        let ready = self.held.partition_point(|p| p.time < oldest);
        let ready: Vec<TripPoint> = self.held.drain(..ready).collect();
        self.held.append(&mut points);
        // two sorted runs: the sort merges them
        self.held.sort_by_key(|p| p.time);
        // keep the buffer's room for the next window
        self.window = points;
        let emitted = self.feed(&ready, fences, overspeed_after);
        (!emitted.is_empty()).then(|| DeviceOutput::segments_only(self.claim.device_id, emitted))
    }

    /// Feeds the fixes still held back, at the end of the scan; returns the segments that
    /// became final.
    fn take_held(
        &mut self,
        fences: &Geofences,
        overspeed_after: &[(i64, Option<f64>)],
    ) -> Vec<Segment> {
        let held = std::mem::take(&mut self.held);
        self.feed(&held, fences, overspeed_after)
    }

    /// Feeds `points` (in time order, newer than any fed before) to the builder, the geofence
    /// crossings and the overspeed runs; returns the segments that became final.
    fn feed(
        &mut self,
        points: &[TripPoint],
        fences: &Geofences,
        overspeed_after: &[(i64, Option<f64>)],
    ) -> Vec<Segment> {
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            return Vec::new();
        };
        self.first.get_or_insert(first.time);
        self.last = Some(last.time);
        if !overspeed_after.is_empty() {
            // with no new data to tell of, this only carries the runs on
            crate::notify::overspeed_events(
                self.claim.device_id,
                points,
                self.settings.speed_limit_kmh,
                overspeed_after,
                None,
                &mut self.speeding,
            );
        }
        self.events.extend(fences.crossings(self.inside.take(), points));
        self.inside = Some(fences.ids_at(&last.location));
        let emitted = match self.builder.push(points) {
            Ok(emitted) => emitted,
            Err(e) => {
                // cannot happen: the fixes were checked to be newer than those fed
                tracing::error!(device = self.claim.device_id, error = %e, "trip builder refused fixes");
                Vec::new()
            }
        };
        self.settled_until = emitted.last().map(Segment::end).or(self.settled_until);
        emitted
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
            ToWriter::Finish(outputs, out_of_order) => {
                // what was written of them was built from fixes out of order
                segments::delete_all(&mut tx, &out_of_order).await?;
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
