//! A connection's socket with a deadline on stalled writes: a client that stops reading its
//! response would otherwise hold its request's in-flight place (and the response's buffers)
//! for as long as it likes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::rejected;

/// The socket; a write that cannot make progress for `stall` fails with `TimedOut`, which
/// ends the connection.
#[derive(Debug)]
pub(crate) struct StallGuarded {
    inner: TcpStream,
    stall: Duration,
    /// Running from the first write that could not proceed; cleared by any progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl StallGuarded {
    pub(crate) fn new(inner: TcpStream, stall: Duration) -> Self {
        Self { inner, stall, stalled_since: None }
    }

    fn track<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled_since = None;
            return polled;
        }
        let stall = self.stall;
        let deadline =
            self.stalled_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if deadline.as_mut().poll(cx).is_ready() {
            self.stalled_since = None;
            rejected("send_timeout");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading its response",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for StallGuarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(cx, polled)
    }
}
