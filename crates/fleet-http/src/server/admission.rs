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

/// Counts requests in flight against `max`, of which `reserve` only priority requests use.
#[derive(Debug)]
pub(crate) struct Admission {
    in_flight: AtomicUsize,
    max: usize,
    general: usize,
}

impl Admission {
    pub(crate) fn new(max: usize, reserve: usize) -> Arc<Self> {
        Arc::new(Self { in_flight: AtomicUsize::new(0), max, general: max.saturating_sub(reserve) })
    }

    /// A place for one request, or `None` when its share is taken.
    pub(crate) fn try_admit(self: &Arc<Self>, priority: bool) -> Option<InFlight> {
        let cap = if priority { self.max } else { self.general };
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
pub(crate) fn is_priority(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/push/")
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
