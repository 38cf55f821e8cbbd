//! One `/fleet/live` snapshot shared by every request that was waiting for it, and its entity
//! tag.
//!
//! The whole-fleet map is megabytes of GeoJSON: with many clients polling, reading and
//! serialising it once per request is what made it slow. Requests with the same filters queue
//! for one snapshot at a time; a snapshot is reused only by requests that arrived before it
//! was started, so every answer still shows everything committed before the request came in
//! (a fix acknowledged to a pusher is on the next map anyone asks for). The snapshot keeps its
//! entity tag and, once one client needed it, its serialised body per status filter, so a
//! queue of clients costs one query, one hash and at most one serialisation.
//!
//! The entity tag hashes what the map shows (every vehicle's fields, the summary, the status
//! filter) but not `generated_at` and `fix_age_s`, which change with the clock alone: a client
//! whose copy shows the same vehicles in the same states gets `304 Not Modified`. It is a weak
//! tag for that reason.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

use super::live::{LiveProperties, LiveStatus, LiveSummary};

/// Snapshots older than this are dropped from memory when another request comes in; a request
/// never uses one that started before it arrived, whatever its age.
const KEEP_FOR: Duration = Duration::from_secs(10);

/// Distinct filter combinations kept at most (each key costs a slot; snapshots of filters
/// nobody asks for again are dropped after [`KEEP_FOR`]).
const MAX_KEYS: usize = 256;

/// The filters a snapshot is read with (normalised as the query compares them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SnapshotKey {
    cost_centre: Option<String>,
    city: Option<String>,
    ignition: Option<bool>,
}

impl SnapshotKey {
    pub(crate) fn new(
        cost_centre: Option<&str>,
        city: Option<&str>,
        ignition: Option<bool>,
    ) -> Self {
        let norm = |s: Option<&str>| s.map(|s| s.trim().to_lowercase());
        Self { cost_centre: norm(cost_centre), city: norm(city), ignition }
    }
}

/// What one read of the live view returned.
pub(crate) struct Loaded {
    pub generated_at: DateTime<Utc>,
    pub rows: Vec<LiveProperties>,
    pub no_fix: i64,
}

/// A live view read at one instant, with what was derived from it so far.
pub(crate) struct Snapshot {
    started: Instant,
    pub generated_at: DateTime<Utc>,
    pub rows: Vec<LiveProperties>,
    pub summary: LiveSummary,
    /// Per status filter (bit set of [`LiveStatus::ALL`]; 0: no filter).
    renders: Mutex<HashMap<u8, Arc<Rendered>>>,
}

/// The answer for one status filter: its entity tag now, its body (and that body gzipped)
/// when first needed.
pub(crate) struct Rendered {
    pub etag: HeaderValue,
    body: OnceLock<Bytes>,
    gzipped: tokio::sync::OnceCell<Option<Bytes>>,
}

impl Rendered {
    /// The serialised body, made once per snapshot and filter.
    pub(crate) fn body(&self, make: impl FnOnce() -> Bytes) -> Bytes {
        self.body.get_or_init(make).clone()
    }

    /// The body gzipped, once per snapshot and filter (on a blocking thread: the whole fleet's
    /// map takes tens of milliseconds), for the clients that accept it: every browser. Done
    /// per request by the server's compression layer, it cost each client of the map that long.
    /// `None` if it could not be made (writing into memory does not fail; were it to, the body
    /// goes as it is).
    pub(crate) async fn gzipped(&self, plain: Bytes) -> Option<Bytes> {
        self.gzipped
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || gzip(&plain)).await.ok().and_then(Result::ok)
            })
            .await
            .clone()
    }
}

/// `data` gzipped at the fastest level (JSON shrinks about six times at it).
fn gzip(data: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    z.write_all(data)?;
    Ok(Bytes::from(z.finish()?))
}

/// Whether `Accept-Encoding` takes gzip (named, or `*`, with a quality above 0).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Snapshot>>>>;

/// The snapshots of the live view, one slot per filter combination.
#[derive(Default)]
pub(crate) struct LiveSnapshots {
    slots: Mutex<HashMap<SnapshotKey, Slot>>,
    reads: AtomicU64,
    /// Requests waiting for another request's read to finish.
    waiting: AtomicUsize,
}

impl std::fmt::Debug for LiveSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSnapshots").field("reads", &self.reads()).finish_non_exhaustive()
    }
}

impl LiveSnapshots {
    /// How many times the live view has been read from the database.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many requests wait for a read another request is making.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A snapshot started after this call began: the one another request started while this
    /// one waited, or a new one read with `load`.
    pub(crate) async fn get<F, Fut, E>(&self, key: SnapshotKey, load: F) -> Result<Arc<Snapshot>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Loaded, E>>,
    {
        let arrived = Instant::now();
        let slot = self.slot(key);
        let mut current = match slot.try_lock() {
            Ok(c) => c,
            Err(_) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _counted = Decrement(&self.waiting);
                slot.lock().await
            }
        };
        if let Some(snap) = current.as_ref().filter(|s| s.started >= arrived) {
            return Ok(snap.clone());
        }
        let started = Instant::now();
        // drop the old one before reading, so two full snapshots are not held at once
        *current = None;
        let loaded = load().await?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let snap = Arc::new(Snapshot::new(started, loaded));
        *current = Some(snap.clone());
        Ok(snap)
    }

    fn slot(&self, key: SnapshotKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        // forget idle slots whose snapshot is old (or that never got one); a slot in use
        // (locked) stays
        let now = Instant::now();
        slots.retain(|_, slot| match slot.try_lock() {
            Ok(s) => s.as_ref().is_some_and(|s| now.duration_since(s.started) < KEEP_FOR),
            Err(_) => true,
        });
        let slot = Slot::default();
        if slots.len() < MAX_KEYS {
            slots.insert(key, slot.clone());
        }
        // past the cap the request reads on its own, sharing nothing
        slot
    }
}

/// Takes one off a counter when dropped (also when the waiting request is cancelled).
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Snapshot {
    fn new(started: Instant, loaded: Loaded) -> Self {
        let mut summary = LiveSummary { no_fix: loaded.no_fix, ..LiveSummary::default() };
        for r in &loaded.rows {
            summary.total += 1;
            summary.in_alarm += i64::from(r.open_alarms > 0);
            *match r.status {
                LiveStatus::Moving => &mut summary.moving,
                LiveStatus::Idling => &mut summary.idling,
                LiveStatus::Parked => &mut summary.parked,
                LiveStatus::Offline => &mut summary.offline,
            } += 1;
        }
        Self {
            started,
            generated_at: loaded.generated_at,
            rows: loaded.rows,
            summary,
            renders: Mutex::default(),
        }
    }

    /// The rows a status filter keeps (`None`: all).
    pub(crate) fn matching<'a>(
        &'a self,
        statuses: Option<&'a [LiveStatus]>,
    ) -> impl Iterator<Item = &'a LiveProperties> + 'a {
        self.rows.iter().filter(move |r| statuses.is_none_or(|s| s.contains(&r.status)))
    }

    /// The answer for a status filter, its entity tag computed on first use.
    pub(crate) fn rendered(&self, statuses: Option<&[LiveStatus]>) -> Arc<Rendered> {
        let mask = status_mask(statuses);
        let mut renders = self.renders.lock().unwrap_or_else(|e| e.into_inner());
        renders
            .entry(mask)
            .or_insert_with(|| {
                Arc::new(Rendered {
                    etag: self.entity_tag(mask, statuses),
                    body: OnceLock::new(),
                    gzipped: tokio::sync::OnceCell::new(),
                })
            })
            .clone()
    }

    fn entity_tag(&self, mask: u8, statuses: Option<&[LiveStatus]>) -> HeaderValue {
        // SipHash with fixed keys: the same content gives the same tag in every process of
        // this version, so a restart does not make every client download the map again
        let mut h = DefaultHasher::new();
        env!("CARGO_PKG_VERSION").hash(&mut h);
        mask.hash(&mut h);
        let s = &self.summary;
        (s.total, s.moving, s.idling, s.parked, s.offline, s.in_alarm, s.no_fix).hash(&mut h);
        for r in self.matching(statuses) {
            hash_vehicle(r, &mut h);
        }
        HeaderValue::from_str(&format!("W/\"live-{:016x}\"", h.finish()))
            .expect("hex is a valid header value")
    }
}

/// Every field the map shows of a vehicle except its age (a function of the clock).
fn hash_vehicle(r: &LiveProperties, h: &mut DefaultHasher) {
    (r.device_id, &r.imei, &r.name, &r.plate, &r.driver_name, &r.cost_centre, &r.city).hash(h);
    (r.status, r.state_since, r.gps_time, r.received_at, &r.fix_kind, r.ignition).hash(h);
    let bits = |x: Option<f32>| x.map(f32::to_bits);
    (bits(r.speed_kmh), bits(r.course_deg), bits(r.battery_pct), bits(r.external_v)).hash(h);
    (r.open_alarms, r.lat.to_bits(), r.lon.to_bits()).hash(h);
}

fn status_mask(statuses: Option<&[LiveStatus]>) -> u8 {
    statuses.map_or(0, |s| {
        LiveStatus::ALL
            .iter()
            .enumerate()
            .filter(|(_, x)| s.contains(x))
            .fold(0, |m, (i, _)| m | (1 << i))
    })
}

/// Whether `If-None-Match` names this entity tag (weak comparison, as for a GET) or is `*`.
pub(crate) fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = opaque(etag.to_str().unwrap_or_default());
    headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque(tag) == ours)
}

/// The quoted part of an entity tag, without the weak marker.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::IF_NONE_MATCH, HeaderValue::from_str(v).expect("value"));
        h
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = HeaderValue::from_static("W/\"live-00ff\"");
        assert!(not_modified(&headers("W/\"live-00ff\""), &tag));
        assert!(not_modified(&headers("\"live-00ff\""), &tag));
        assert!(not_modified(&headers("\"other\", W/\"live-00ff\""), &tag));
        assert!(not_modified(&headers("*"), &tag));
        assert!(!not_modified(&headers("W/\"live-00fe\""), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn accept_encoding_takes_gzip_by_name_or_star_unless_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(axum::http::header::ACCEPT_ENCODING, HeaderValue::from_str(v).expect("v"));
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, deflate"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_gzipped_body_inflates_to_the_body() {
        use std::io::Read;
        let plain = Bytes::from(r#"{"type":"FeatureCollection","features":[]}"#.repeat(50));
        let z = gzip(&plain).expect("gzip");
        assert!(z.len() < plain.len() / 4, "{} of {}", z.len(), plain.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).expect("inflates");
        assert_eq!(back, plain);
    }

    #[test]
    fn status_filters_in_any_order_share_one_mask() {
        use LiveStatus::*;
        assert_eq!(status_mask(Some(&[Moving, Offline])), status_mask(Some(&[Offline, Moving])));
        assert_ne!(status_mask(Some(&[Moving])), status_mask(None));
        assert_ne!(status_mask(Some(&[Moving])), status_mask(Some(&[Idling])));
    }

    #[test]
    fn filter_keys_ignore_case_and_surrounding_spaces() {
        assert_eq!(
            SnapshotKey::new(Some(" CC-1 "), Some("Kisumu"), None),
            SnapshotKey::new(Some("cc-1"), Some("kisumu "), None)
        );
        assert_ne!(SnapshotKey::new(None, None, Some(true)), SnapshotKey::new(None, None, None));
    }
}
