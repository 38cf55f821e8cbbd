//! The request body as handlers see it: it notes when it has been received in full, so the
//! server can tell a client still sending its body at the deadline from a slow handler.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request body that sets `received` once its last frame has arrived.
#[derive(Debug)]
pub(crate) struct WatchedBody {
    inner: Incoming,
    received: Arc<AtomicBool>,
}

impl WatchedBody {
    /// The body and its flag; a body that is already complete (none, or empty) starts set.
    pub(crate) fn new(inner: Incoming) -> (Self, Arc<AtomicBool>) {
        let received = Arc::new(AtomicBool::new(inner.is_end_stream()));
        (Self { inner, received: received.clone() }, received)
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
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
