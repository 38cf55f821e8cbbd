//! The request body as handlers see it: it notes when it has been received in full, so the
//! server can tell a client still sending its body at the deadline from a slow handler, and it
//! draws the bytes it holds beyond a small allowance from a budget shared by all requests.
//!
//! Why the budget: every request may buffer a body up to its route's limit (1 MiB for a push,
//! 2 MiB for the API), so four hundred clients sending most of a body and stalling held 390 MB.
//! The first [`FREE_BODY_BYTES`] of each body (a typical push whole) are free, so small requests
//! never wait; bytes beyond that wait for room in the budget. A body that waits is not read
//! further, so the client is slowed by TCP itself, and the body deadline still ends it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

use super::uploads::Upload;

/// Bytes of each request body that do not count against the shared budget.
pub const FREE_BODY_BYTES: usize = 64 * 1024;

/// The shared budget for request body bytes beyond each body's free allowance.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub(crate) fn new(total: usize) -> Arc<Self> {
        let total = total.clamp(1, u32::MAX as usize);
        Arc::new(Self { bytes: Arc::new(Semaphore::new(total)), total })
    }

    fn report(&self) {
        let held = self.total.saturating_sub(self.bytes.available_permits());
        metrics::gauge!("fleetd_http_body_buffer_bytes").set(held as f64);
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request body that sets `received` once its last frame has arrived, and holds budget for
/// what it has buffered beyond its free allowance until it is dropped.
pub(crate) struct WatchedBody {
    inner: Incoming,
    received: Arc<AtomicBool>,
    budget: Arc<BodyBudget>,
    free_left: usize,
    held: Option<OwnedSemaphorePermit>,
    /// A frame read but not yet handed over, waiting for room in the budget.
    waiting: Option<(Frame<Bytes>, Acquiring)>,
    /// The client's place among bodies being received, given back once this one has arrived.
    upload: Option<Upload>,
}

impl std::fmt::Debug for WatchedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedBody").field("free_left", &self.free_left).finish_non_exhaustive()
    }
}

impl WatchedBody {
    /// The body and its flag; a body that is already complete (none, or empty) starts set.
    pub(crate) fn new(
        inner: Incoming,
        budget: Arc<BodyBudget>,
        upload: Option<Upload>,
    ) -> (Self, Arc<AtomicBool>) {
        let received = Arc::new(AtomicBool::new(inner.is_end_stream()));
        let body = Self {
            inner,
            received: received.clone(),
            budget,
            free_left: FREE_BODY_BYTES,
            held: None,
            waiting: None,
            upload,
        };
        (body, received)
    }

    /// Marks the body received once its last frame has been handed over.
    fn note_end(&mut self) {
        if self.waiting.is_none() && self.inner.is_end_stream() {
            self.arrived();
        }
    }

    fn arrived(&mut self) {
        self.received.store(true, Ordering::Release);
        self.upload = None;
    }

    fn keep(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.budget.report();
    }

    /// Charges a data frame to the allowance, then the budget; `Err` when it must wait.
    fn charge(&mut self, frame: Frame<Bytes>) -> Result<Frame<Bytes>, (Frame<Bytes>, Acquiring)> {
        let len = frame.data_ref().map_or(0, Bytes::len);
        let free = len.min(self.free_left);
        self.free_left -= free;
        // a frame larger than the whole budget waits for all of it
        let owed = (len - free).min(self.budget.total);
        if owed == 0 {
            return Ok(frame);
        }
        let owed = u32::try_from(owed).unwrap_or(u32::MAX);
        match self.budget.bytes.clone().try_acquire_many_owned(owed) {
            Ok(permit) => {
                self.keep(permit);
                Ok(frame)
            }
            Err(_) => Err((frame, Box::pin(self.budget.bytes.clone().acquire_many_owned(owed)))),
        }
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        if self.held.take().is_some() {
            self.budget.report();
        }
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some((_, acquiring)) = &mut self.waiting {
            let Poll::Ready(permit) = acquiring.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            // the semaphore is never closed
            if let Ok(permit) = permit {
                self.keep(permit);
            }
            let handed = self.waiting.take().map(|(frame, _)| Ok(frame));
            self.note_end();
            return Poll::Ready(handed);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let polled = match polled {
            Poll::Ready(Some(Ok(frame))) => match self.charge(frame) {
                Ok(frame) => Poll::Ready(Some(Ok(frame))),
                Err(waiting) => {
                    self.waiting = Some(waiting);
                    return self.poll_frame(cx);
                }
            },
            other => other,
        };
        if matches!(polled, Poll::Ready(None)) {
            self.arrived();
        }
        self.note_end();
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
