//! The live stream's machinery: a hub that numbers events, keeps the newest in a bounded ring
//! buffer (for clients resuming with `Last-Event-ID`) and fans them out through a tokio
//! broadcast channel, and the one listener task per process that turns the ingest writer's
//! `fleet_changes` notifications into events.
//!
//! Design: the writer calls `pg_notify('fleet_changes', …)` inside each flush's transaction, so
//! a notification is delivered exactly when the change is committed. Payloads are compact
//! (`{"p":[device ids],"a":[[device_id,alarm_time,alarm_type],…]}`, split below NOTIFY's
//! 8000-byte limit); the listener reads the rows themselves from `fleet.device_latest` and
//! `fleet.alarms`. It keeps each device's last status, so a `status` event is sent only when
//! it changes; a sweep every [`OFFLINE_SWEEP`] finds devices that went offline (no fix for
//! `offline_after_s`), which no write announces. If the listener's connection drops,
//! notifications sent meanwhile are lost: the hub then sends a `reset` event, telling clients
//! to reload their state.
//!
//! Payloads are signed by the writer (`fleet_db::notify`); the listener ignores and counts any
//! it cannot verify, since every database role may notify any channel. The same listener hears
//! `fleet_auth` (a token, session or user changed) and re-checks the open streams' credentials
//! ([`access`]), as it also does every `recheck_every`.

pub mod access;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_db::notify::{NotifyKey, AUTH_CHANNEL};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// The channel the ingest writer notifies (fleet_ingest::CHANGES_CHANNEL).
pub const CHANGES_CHANNEL: &str = fleet_db::notify::CHANGES_CHANNEL;

/// Events kept for clients that resume.
pub const RING_CAPACITY: usize = 10_000;

/// How often devices are checked for having gone offline.
pub const OFFLINE_SWEEP: Duration = Duration::from_secs(30);

/// Which vehicle an event is about, for the per-client filters.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub device_id: Option<i32>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
}

/// One event as the hub keeps it.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: u64,
    /// `position`, `status`, `alarm` or `reset`.
    pub kind: &'static str,
    pub scope: Scope,
    /// The JSON data line.
    pub data: String,
}

/// `position` event data: a vehicle's new latest fix.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PositionEvent {
    pub device_id: i32,
    pub imei: String,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f32>,
    pub course_deg: Option<f32>,
    pub ignition: Option<bool>,
    pub gps_time: DateTime<Utc>,
    /// moving, idling, parked or offline.
    pub status: String,
}

/// `status` event data: a vehicle's status changed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusEvent {
    pub device_id: i32,
    pub imei: String,
    /// moving, idling, parked or offline.
    pub status: String,
    /// The previous status; absent for a vehicle's first fix.
    pub previous: Option<String>,
    /// When the device entered its motion state.
    pub since: DateTime<Utc>,
}

/// `alarm` event data: a new alarm.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlarmStreamEvent {
    pub device_id: i32,
    pub imei: String,
    pub alarm_time: DateTime<Utc>,
    #[serde(rename = "type")]
    pub type_: String,
    pub class: String,
    pub name: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// `reset` event data: events were lost; reload the state (e.g. GET /fleet/live).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResetEvent {
    pub reason: String,
}

struct Ring {
    next: u64,
    events: VecDeque<Arc<StreamEvent>>,
}

/// Numbers, keeps and fans out the stream's events. One per process (in [`crate::AppState`]).
#[derive(Debug)]
pub struct StreamHub {
    /// Distinguishes this process's ids from a previous one's (`<epoch>-<seq>`).
    epoch: String,
    capacity: usize,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<StreamEvent>>,
    /// Whether a listener is connected and listening.
    listening: AtomicBool,
    /// Cancelled when the server shuts down: open streams end, so graceful shutdown can finish.
    closing: CancellationToken,
    /// Who holds the open streams, with their limits.
    open: Arc<access::OpenStreams>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("next", &self.next).field("len", &self.events.len()).finish()
    }
}

/// What a new client gets: the events it missed (or a reset) and the live receiver.
#[derive(Debug)]
pub struct Subscription {
    pub replay: Vec<Arc<StreamEvent>>,
    /// Set when the client's `Last-Event-ID` cannot be resumed from.
    pub reset: Option<String>,
    /// Id of the newest event at subscription (for a reset event's id).
    pub current: String,
    pub rx: broadcast::Receiver<Arc<StreamEvent>>,
}

impl StreamHub {
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(capacity, access::StreamLimits::default())
    }

    /// A hub whose streams are limited by `limits`.
    pub fn with_limits(capacity: usize, limits: access::StreamLimits) -> Self {
        let epoch = format!("{:x}", Utc::now().timestamp_micros());
        let (tx, _) = broadcast::channel(1024);
        Self {
            epoch,
            capacity: capacity.max(1),
            ring: Mutex::new(Ring { next: 1, events: VecDeque::new() }),
            tx,
            listening: AtomicBool::new(false),
            closing: CancellationToken::new(),
            open: Arc::new(access::OpenStreams::new(limits)),
        }
    }

    /// The open streams and their limits.
    pub fn open_streams(&self) -> &Arc<access::OpenStreams> {
        &self.open
    }

    /// The SSE id of an event.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// Ends every open stream (at shutdown; the listener does it when told to stop).
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Resolves once [`StreamHub::close`] was called.
    pub fn closed(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.closing.clone().cancelled_owned()
    }

    /// Whether the listener task is connected and listening for changes.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Numbers the event, keeps it and sends it to every client.
    pub fn publish(&self, kind: &'static str, scope: Scope, data: &impl Serialize) {
        let data = match serde_json::to_string(data) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "stream event does not serialise");
                return;
            }
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let event = Arc::new(StreamEvent { seq: ring.next, kind, scope, data });
        ring.next += 1;
        ring.events.push_back(event.clone());
        while ring.events.len() > self.capacity {
            ring.events.pop_front();
        }
        metrics::counter!("fleetd_stream_events_total", "event" => kind).increment(1);
        // no receiver: nobody is connected, which is fine
        let _ = self.tx.send(event);
    }

    /// Subscribes; `last_event_id` (the header of a reconnecting client) selects the events to
    /// replay. The ring and the receiver are taken under one lock, so nothing falls between.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let current = self.id(ring.next - 1);
        let Some(last) = last_event_id.map(str::trim).filter(|s| !s.is_empty()) else {
            return Subscription { replay: Vec::new(), reset: None, current, rx };
        };
        let seq = last
            .split_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok());
        let oldest = ring.events.front().map_or(ring.next, |e| e.seq);
        let reset = match seq {
            None => Some("the event id is from an earlier run of the server or malformed"),
            Some(s) if s >= ring.next => Some("the event id is unknown"),
            Some(s) if s + 1 < oldest => Some("the events since that id are no longer kept"),
            Some(_) => None,
        };
        if let Some(reason) = reset {
            return Subscription {
                replay: Vec::new(),
                reset: Some(reason.to_owned()),
                current,
                rx,
            };
        }
        let seq = seq.unwrap_or_default();
        let replay = ring.events.iter().filter(|e| e.seq > seq).cloned().collect();
        Subscription { replay, reset: None, current, rx }
    }
}

/// Starts the listener task; it runs until `shutdown` is cancelled, then ends the open streams.
pub fn spawn_listener(
    pool: PgPool,
    hub: Arc<StreamHub>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let closer = hub.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            closer.close();
        });
        let mut first = true;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let outcome = listen(&pool, &hub, &shutdown, first).await;
            hub.listening.store(false, Ordering::Release);
            match outcome {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream listener failed; reconnecting");
                    first = false;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}

/// What the listener remembers of a device.
struct Known {
    status: String,
}

#[derive(Debug, Default, Deserialize)]
struct Payload {
    #[serde(default)]
    p: Vec<i32>,
    #[serde(default)]
    a: Vec<(i32, DateTime<Utc>, String)>,
}

/// How long the listener gathers notifications before reading the changed rows.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(200);

impl Payload {
    /// Adds one notification's changes (alarms are distinct by key; devices are deduplicated
    /// once the batch is complete).
    fn merge(&mut self, key: &NotifyKey, signed: &str) {
        let Some(payload) = key.verify(CHANGES_CHANNEL, signed) else {
            // not from a fleetd session: any role may notify any channel
            metrics::counter!("fleetd_stream_notifications_rejected_total").increment(1);
            tracing::warn!(
                payload.bytes = signed.len(),
                "ignoring a fleet_changes notification without a valid signature"
            );
            return;
        };
        match serde_json::from_str::<Payload>(payload) {
            Ok(more) => {
                self.p.extend(more.p);
                self.a.extend(more.a);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable fleet_changes payload"),
        }
    }
}

#[derive(sqlx::FromRow)]
struct LatestRow {
    device_id: i32,
    imei: String,
    cost_centre: Option<String>,
    city: Option<String>,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f32>,
    course_deg: Option<f32>,
    ignition: Option<bool>,
    gps_time: DateTime<Utc>,
    status: String,
    state_since: DateTime<Utc>,
}

/// The latest rows of active devices, with their status, and `$filter` appended.
macro_rules! latest {
    ($filter:literal) => {
        concat!(
            "select d.device_id, d.imei, d.cost_centre, d.city, l.lat, l.lon, l.speed_kmh,
        l.course_deg, l.ignition, l.gps_time,
        case when now() - l.gps_time > make_interval(secs => g.offline_after_s)
             then 'offline' else l.motion_state end as status,
        l.state_since
    from fleet.device_latest l
    join fleet.devices d using (device_id)
    cross join (select offline_after_s from fleet.analytics_config where scope = 'global') g
    where d.active",
            $filter
        )
    };
}

/// Every active device's latest row and status.
const LATEST: &str = latest!("");
/// The latest rows of the devices in `$1` (two statements, so each keeps a fitting plan).
const LATEST_OF: &str = latest!(" and l.device_id = any($1)");

#[derive(sqlx::FromRow)]
struct AlarmRow {
    device_id: i32,
    imei: String,
    cost_centre: Option<String>,
    city: Option<String>,
    alarm_time: DateTime<Utc>,
    alarm_type: String,
    alarm_class: String,
    alarm_name: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

async fn listen(
    pool: &PgPool,
    hub: &StreamHub,
    shutdown: &CancellationToken,
    first: bool,
) -> Result<(), sqlx::Error> {
    let key = NotifyKey::load(pool).await?;
    // PgListener keeps the connection it takes from a pool: a pool of its own (one connection
    // with the same options) keeps it out of the API's budget
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen_all([CHANGES_CHANNEL, AUTH_CHANNEL]).await?;
    // listening first, then the snapshot: a change between the two is seen twice, not never
    let mut known: HashMap<i32, Known> = HashMap::new();
    for r in sqlx::query_as::<_, LatestRow>(LATEST).fetch_all(pool).await? {
        known.insert(r.device_id, Known { status: r.status });
    }
    if !first {
        hub.publish(
            "reset",
            Scope::default(),
            &ResetEvent { reason: "the server lost changes while reconnecting".to_owned() },
        );
    }
    hub.listening.store(true, Ordering::Release);
    let mut sweep = tokio::time::interval(OFFLINE_SWEEP);
    sweep.tick().await;
    let streams = hub.open.clone();
    // streams opened while the listener was away are checked now
    streams.revalidate(pool).await?;
    let mut recheck = tokio::time::interval(streams.limits().recheck_every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = recheck.tick() => {
                streams.revalidate(pool).await?;
            }
            _ = sweep.tick() => {
                let rows: Vec<LatestRow> = sqlx::query_as(LATEST).fetch_all(pool).await?;
                for r in rows {
                    status_change(hub, &mut known, &r);
                }
            }
            n = listener.try_recv() => {
                let Some(n) = n? else {
                    // the connection dropped; try_recv reconnects at the next call
                    hub.publish(
                        "reset",
                        Scope::default(),
                        &ResetEvent { reason: "the server lost changes while reconnecting".to_owned() },
                    );
                    continue;
                };
                // The writer notifies once per flush, up to hundreds of times a second under
                // load: gather what arrives within a short window and read the rows once, so
                // the listener's queries stay a few per second whatever the ingest rate.
                let mut batch = Payload::default();
                let mut auth = false;
                let mut take = |n: &sqlx::postgres::PgNotification, batch: &mut Payload| {
                    if n.channel() == AUTH_CHANNEL {
                        auth = true;
                    } else {
                        batch.merge(&key, n.payload());
                    }
                };
                take(&n, &mut batch);
                tokio::time::sleep(COALESCE).await;
                while let Some(n) = listener.next_buffered() {
                    take(&n, &mut batch);
                }
                if auth {
                    streams.revalidate(pool).await?;
                }
                batch.p.sort_unstable();
                batch.p.dedup();
                if !batch.p.is_empty() || !batch.a.is_empty() {
                    changed(pool, hub, &mut known, batch).await?;
                }
            }
        }
    }
}

fn scope_of(device_id: i32, cost_centre: &Option<String>, city: &Option<String>) -> Scope {
    Scope { device_id: Some(device_id), cost_centre: cost_centre.clone(), city: city.clone() }
}

/// Sends a `status` event when the row's status differs from the one known.
fn status_change(hub: &StreamHub, known: &mut HashMap<i32, Known>, r: &LatestRow) {
    let previous = known.get(&r.device_id).map(|k| k.status.clone());
    if previous.as_deref() == Some(r.status.as_str()) {
        return;
    }
    hub.publish(
        "status",
        scope_of(r.device_id, &r.cost_centre, &r.city),
        &StatusEvent {
            device_id: r.device_id,
            imei: r.imei.clone(),
            status: r.status.clone(),
            previous,
            since: r.state_since,
        },
    );
    known.insert(r.device_id, Known { status: r.status.clone() });
}

async fn changed(
    pool: &PgPool,
    hub: &StreamHub,
    known: &mut HashMap<i32, Known>,
    p: Payload,
) -> Result<(), sqlx::Error> {
    if !p.p.is_empty() {
        let rows: Vec<LatestRow> = sqlx::query_as(LATEST_OF).bind(&p.p).fetch_all(pool).await?;
        for r in &rows {
            hub.publish(
                "position",
                scope_of(r.device_id, &r.cost_centre, &r.city),
                &PositionEvent {
                    device_id: r.device_id,
                    imei: r.imei.clone(),
                    lat: r.lat,
                    lon: r.lon,
                    speed_kmh: r.speed_kmh,
                    course_deg: r.course_deg,
                    ignition: r.ignition,
                    gps_time: r.gps_time,
                    status: r.status.clone(),
                },
            );
            status_change(hub, known, r);
        }
    }
    if !p.a.is_empty() {
        let ids: Vec<i32> = p.a.iter().map(|a| a.0).collect();
        let times: Vec<DateTime<Utc>> = p.a.iter().map(|a| a.1).collect();
        let types: Vec<&str> = p.a.iter().map(|a| a.2.as_str()).collect();
        let rows: Vec<AlarmRow> = sqlx::query_as(
            "select a.device_id, d.imei, d.cost_centre, d.city, a.alarm_time, a.alarm_type,
                    a.alarm_class, a.alarm_name, a.lat, a.lon
             from unnest($1::int[], $2::timestamptz[], $3::text[]) k(device_id, alarm_time, alarm_type)
             join fleet.alarms a using (device_id, alarm_time, alarm_type)
             join fleet.devices d on d.device_id = a.device_id
             order by a.alarm_time, a.device_id",
        )
        .bind(&ids)
        .bind(&times)
        .bind(&types)
        .fetch_all(pool)
        .await?;
        for r in rows {
            hub.publish(
                "alarm",
                scope_of(r.device_id, &r.cost_centre, &r.city),
                &AlarmStreamEvent {
                    device_id: r.device_id,
                    imei: r.imei,
                    alarm_time: r.alarm_time,
                    type_: r.alarm_type,
                    class: r.alarm_class,
                    name: r.alarm_name,
                    lat: r.lat,
                    lon: r.lon,
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_replays_what_was_missed_or_resets_when_it_is_gone() {
        let hub = StreamHub::new(3);
        for i in 0..5 {
            hub.publish("reset", Scope::default(), &ResetEvent { reason: i.to_string() });
        }
        // kept: 3, 4, 5
        let s = hub.subscribe(Some(&hub.id(3)));
        assert!(s.reset.is_none());
        assert_eq!(s.replay.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        let s = hub.subscribe(Some(&hub.id(2)));
        assert_eq!(s.replay.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(hub.subscribe(Some(&hub.id(1))).reset.is_some(), "2 is gone");
        assert!(hub.subscribe(Some(&hub.id(9))).reset.is_some(), "from the future");
        assert!(hub.subscribe(Some("other-3")).reset.is_some(), "another run");
        let s = hub.subscribe(None);
        assert!(s.replay.is_empty() && s.reset.is_none());
        assert_eq!(s.current, hub.id(5));
    }
}
