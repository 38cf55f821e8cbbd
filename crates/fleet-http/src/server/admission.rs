//! The in-flight request limit with its reserve for pushes and health checks, and the guard
//! that holds a request's place until its response has ended.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::body::Bytes;
use http_body::{Frame, SizeHint};

use super::conns::ConnState;

/// Places of the reserve only `/healthz` may use (at most half the reserve), so pushes filling
/// the reserve (stalled ones included) cannot fail the liveness probe either.
pub const HEALTH_ONLY_PLACES: usize = 4;

/// Which share of the in-flight limit a request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Everything but pushes and the liveness probe: the general share.
    General,
    /// The vendor's pushes: the general share and the reserve but its health-only places.
    Push,
    /// The liveness probe: every place.
    Health,
}

/// Counts requests in flight against `max`, of which `reserve` only pushes and health checks
/// use, and the last [`HEALTH_ONLY_PLACES`] of the reserve (at most half of it) only health
/// checks.
#[derive(Debug)]
pub(crate) struct Admission {
    in_flight: AtomicUsize,
    max: usize,
    push: usize,
    general: usize,
}

impl Admission {
    pub(crate) fn new(max: usize, reserve: usize) -> Arc<Self> {
        let reserve = reserve.min(max);
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            max,
            push: max - (reserve / 2).min(HEALTH_ONLY_PLACES),
            general: max - reserve,
        })
    }

    /// A place for one request, or `None` when its share is taken.
    pub(crate) fn try_admit(self: &Arc<Self>, class: Class) -> Option<InFlight> {
        let cap = match class {
            Class::General => self.general,
            Class::Push => self.push,
            Class::Health => self.max,
        };
        let before = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < cap).then_some(n + 1))
            .ok()?;
        metrics::gauge!("fleetd_http_in_flight").set((before + 1) as f64);
        Some(InFlight(self.clone()))
    }
}

/// Requests that may use the reserve: the vendor's pushes (ingest must not be starved by API
/// load) and the liveness probe (an orchestrator must not restart a busy but healthy fleetd).
pub(crate) fn class(path: &str) -> Class {
    if path == "/healthz" {
        Class::Health
    } else if path.starts_with("/push/") {
        Class::Push
    } else {
        Class::General
    }
}

/// One request's place in the in-flight count.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Admission>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("fleetd_http_in_flight").set(before.saturating_sub(1) as f64);
    }
}

/// What a request holds until its response ends: its in-flight place (none for a refused
/// request) and its connection's busy mark, which keeps the connection from being evicted.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    conn: Arc<ConnState>,
    _in_flight: Option<InFlight>,
}

impl RequestGuard {
    pub(crate) fn new(conn: Arc<ConnState>, in_flight: Option<InFlight>) -> Self {
        conn.request_started();
        Self { conn, _in_flight: in_flight }
    }
}

impl RequestGuard {
    /// Whether the request holds an in-flight place.
    pub(crate) fn admitted(&self) -> bool {
        self._in_flight.is_some()
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.conn.request_ended();
    }
}

/// A response body that releases its request's guard when it ends or is dropped, so a long
/// response (the live stream, an export) counts as in flight for as long as it is sent.
#[derive(Debug)]
pub(crate) struct GuardedBody {
    inner: Body,
    guard: Option<RequestGuard>,
}

impl GuardedBody {
    pub(crate) fn new(inner: Body, guard: RequestGuard) -> Self {
        Self { inner, guard: Some(guard) }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_cannot_take_the_places_kept_for_health_checks() {
        let admission = Admission::new(14, 10);
        let general: Vec<_> = (0..4).map_while(|_| admission.try_admit(Class::General)).collect();
        assert_eq!(general.len(), 4, "the general share");
        let pushes: Vec<_> = (0..10).map_while(|_| admission.try_admit(Class::Push)).collect();
        assert_eq!(pushes.len(), 10 - HEALTH_ONLY_PLACES);
        let health: Vec<_> = (0..10).map_while(|_| admission.try_admit(Class::Health)).collect();
        assert_eq!(health.len(), HEALTH_ONLY_PLACES);
        // a small reserve keeps half for pushes
        let small = Admission::new(4, 2);
        let _general = (small.try_admit(Class::General), small.try_admit(Class::General));
        let push = small.try_admit(Class::Push);
        assert!(push.is_some());
        assert!(small.try_admit(Class::Push).is_none());
        assert!(small.try_admit(Class::Health).is_some());
    }
}
