//! The table of open connections: admits a new one while under the limit and, at the limit,
//! evicts the connection that has waited longest for a request head.
//!
//! The eviction rule: a connection that has not sent a complete request head (a new one, or a
//! keep-alive one idle between requests) costs an attacker nothing to hold, and holding a
//! thousand of them used to lock everyone out. At the limit, the connection that has been
//! waiting for a head the longest is closed to make room; a connection with a request in
//! progress (a push being received, a live stream, an export) is never evicted. Only when
//! every connection has a request in progress is the newcomer refused, and requests in
//! progress are themselves bounded by the in-flight limit and the body timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::rejected;

/// What one connection shares with the table: whether a request is in progress, and since
/// when it has been waiting for a head.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Requests whose response has not ended (at most one on HTTP/1 without pipelining).
    busy: AtomicUsize,
    /// Nanoseconds after the table's epoch when the connection last began to wait for a head.
    waiting_since: AtomicU64,
    epoch: Instant,
}

impl ConnState {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A request head arrived.
    pub(crate) fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
    }

    /// A response ended (or its request was dropped): the connection waits for a head again.
    pub(crate) fn request_ended(&self) {
        self.waiting_since.store(self.now(), Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    fn idle_since(&self) -> Option<u64> {
        (self.busy.load(Ordering::Acquire) == 0).then(|| self.waiting_since.load(Ordering::Acquire))
    }
}

struct Entry {
    state: Arc<ConnState>,
    evict: CancellationToken,
}

/// Every open connection, by id.
pub(crate) struct Connections {
    max: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

/// One admitted connection; leaving the table when dropped.
pub(crate) struct Admitted {
    pub(crate) state: Arc<ConnState>,
    /// Cancelled when the connection is evicted: its task then closes it.
    pub(crate) evicted: CancellationToken,
    id: u64,
    table: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let open = {
            let mut t = self.table.lock();
            t.open.remove(&self.id);
            t.open.len()
        };
        metrics::gauge!("fleetd_http_connections").set(open as f64);
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("max", &self.max).finish_non_exhaustive()
    }
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max: max.max(1), epoch: Instant::now(), table: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // the table stays consistent whatever panicked while holding it
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection, evicting the longest-waiting idle one at the limit; `None`
    /// when every open connection has a request in progress.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut t = self.lock();
        if t.open.len() >= self.max {
            let oldest_idle = t
                .open
                .iter()
                .filter_map(|(id, e)| e.state.idle_since().map(|since| (since, *id)))
                .min();
            let Some((_, id)) = oldest_idle else {
                drop(t);
                rejected("connection_refused");
                return None;
            };
            if let Some(e) = t.open.remove(&id) {
                e.evict.cancel();
            }
            rejected("connection_evicted");
        }
        let state = Arc::new(ConnState {
            busy: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(0),
            epoch: self.epoch,
        });
        state.waiting_since.store(state.now(), Ordering::Release);
        let evicted = CancellationToken::new();
        let id = t.next_id;
        t.next_id += 1;
        t.open.insert(id, Entry { state: state.clone(), evict: evicted.clone() });
        let open = t.open.len();
        drop(t);
        metrics::gauge!("fleetd_http_connections").set(open as f64);
        Some(Admitted { state, evicted, id, table: self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_longest_idle_connection_makes_room() {
        let table = Connections::new(2);
        let first = table.admit().expect("first");
        let second = table.admit().expect("second");
        let third = table.admit().expect("the first, idle longest, makes room");
        assert!(first.evicted.is_cancelled());
        assert!(!second.evicted.is_cancelled());
        drop(third);
        assert!(table.admit().is_some(), "a closed connection frees its place");
    }

    #[test]
    fn connections_with_a_request_in_progress_are_never_evicted() {
        let table = Connections::new(2);
        let a = table.admit().expect("a");
        let b = table.admit().expect("b");
        a.state.request_started();
        b.state.request_started();
        assert!(table.admit().is_none(), "both busy: the newcomer is refused");
        b.state.request_ended();
        assert!(table.admit().is_some());
        assert!(b.evicted.is_cancelled() && !a.evicted.is_cancelled());
    }
}
