//! The live stream's machinery: a hub that numbers events, keeps the newest in a bounded ring
//! buffer (for clients resuming with `Last-Event-ID`) and fans them out through a tokio
//! broadcast channel, and the one listener task per process that turns the ingest writer's
//! `fleet_changes` notifications into events.
//!
//! Design: the writer calls `pg_notify('fleet_changes', …)` inside each flush's transaction, so
//! a notification is delivered exactly when the change is committed. Payloads are compact
//! [`fleet_db::changes::ChangeNotice`]s (`{"p":[device ids],"a":[[device_id,alarm_time,
//! alarm_type],…],"n":[[user_id,notification_id],…]}`, split below NOTIFY's 8000-byte limit);
//! the listener reads the rows themselves from `fleet.device_latest`, `fleet.alarms` and
//! `fleet.notify_inbox` (a `notification` event goes to its user's streams only). It keeps each device's last status, so a `status` event is sent only when
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
mod listener;
mod replay;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

pub use listener::{spawn_listener, LISTENER_CONNECTIONS};

/// The channel the ingest writer notifies ([`fleet_db::changes::ChangeNotice`]).
pub const CHANGES_CHANNEL: &str = fleet_db::changes::CHANGES_CHANNEL;

/// Events kept for clients that resume.
pub const RING_CAPACITY: usize = 10_000;

/// How often devices are checked for having gone offline.
pub const OFFLINE_SWEEP: Duration = Duration::from_secs(30);

/// How long after the last client left the listener still turns changes into events, so a
/// client reconnecting within it resumes from its `Last-Event-ID`; after that, with nobody
/// connected, changes are skipped (no rows read for nobody) and a client resuming across them
/// gets `reset`. At fleet scale the ring holds only seconds of events anyway.
pub const RESUME_GRACE: Duration = Duration::from_secs(60);

/// Which vehicle an event is about, for the per-client filters.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub device_id: Option<i32>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    /// Set on events for one user only (`notification`): nobody else receives them, and the
    /// vehicle filters do not hold them back.
    pub user_id: Option<i32>,
}

/// One event as the hub keeps it.
#[derive(Debug)]
pub struct StreamEvent {
    pub seq: u64,
    /// `position`, `status`, `alarm`, `notification` or `reset`.
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
    /// The previous status; absent for a vehicle's first fix, and when it is not known (changes
    /// were skipped while no client was connected, see [`RESUME_GRACE`]).
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
    /// When a client was last seen connected ([`StreamHub::note_watchers`], subscriptions).
    watched: Mutex<Option<Instant>>,
    resume_grace: Duration,
    /// Gaps taken ([`StreamHub::gap_if_unwatched`]).
    gaps: AtomicU64,
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
            watched: Mutex::new(None),
            resume_grace: RESUME_GRACE,
            gaps: AtomicU64::new(0),
        }
    }

    /// The hub with another [`RESUME_GRACE`].
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        self.resume_grace = grace;
        self
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

    /// How many times changes were skipped because nobody watched.
    pub fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }

    /// Remembers now as a time a client was connected, if one is; whether one is.
    pub fn note_watchers(&self) -> bool {
        let watched = self.tx.receiver_count() > 0;
        if watched {
            *self.watched.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        watched
    }

    /// Drops the kept events and skips a number, so that nobody can resume across changes that
    /// were not turned into events — but only while no client is connected nor was within the
    /// resume grace; `false` (nothing done) otherwise. Taken under the ring's lock, like [`StreamHub::subscribe`]: a client
    /// subscribing meanwhile either counts here or subscribes after the gap.
    pub fn gap_if_unwatched(&self) -> bool {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if self.note_watchers() {
            return false;
        }
        let watched = *self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if watched.is_some_and(|t| t.elapsed() < self.resume_grace) {
            return false;
        }
        ring.events.clear();
        ring.next += 1;
        self.gaps.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("fleetd_stream_skipped_total").increment(1);
        true
    }

    /// Subscribes; `last_event_id` (the header of a reconnecting client) selects the events to
    /// replay. The ring and the receiver are taken under one lock, so nothing falls between.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        *self.watched.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
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

    #[test]
    fn a_gap_is_taken_only_unwatched_and_makes_resuming_across_it_reset() {
        let hub = StreamHub::new(10).with_resume_grace(Duration::ZERO);
        assert!(hub.gap_if_unwatched(), "never watched");
        for i in 0..3 {
            hub.publish("reset", Scope::default(), &ResetEvent { reason: i.to_string() });
        }
        let watching = hub.subscribe(None);
        assert!(!hub.gap_if_unwatched(), "a client is connected");
        assert!(hub.subscribe(Some(&hub.id(2))).reset.is_none());
        drop(watching);
        assert!(hub.gap_if_unwatched());
        // resuming from an event kept before the gap would silently miss what the gap skipped
        assert!(hub.subscribe(Some(&hub.id(3))).reset.is_some());
        assert!(hub.subscribe(Some(&hub.id(2))).reset.is_some());
        hub.publish("reset", Scope::default(), &ResetEvent { reason: "after".to_owned() });
        let after = hub.subscribe(None);
        assert_eq!(after.current, hub.id(6), "the gaps took numbers 1 and 5");
        let resumed = hub.subscribe(Some(&hub.id(6)));
        assert!(resumed.reset.is_none() && resumed.replay.is_empty());
        drop((after, resumed));

        // within the grace after the last client, changes still become events
        let hub = StreamHub::new(10).with_resume_grace(Duration::from_secs(3600));
        assert!(hub.gap_if_unwatched(), "never watched: no grace to keep");
        drop(hub.subscribe(None));
        assert!(!hub.gap_if_unwatched(), "a client left just now");
    }
}
