//! What a test logged: a tracing subscriber writing plain text into memory, installed as the
//! current thread's default for as long as the capture lives (a `#[tokio::test]` runs its
//! tasks on that thread), so a test can assert what reached the log and what did not.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;
use tracing::Level;

/// The lines logged at `level` or above since [`capture`], on this thread.
#[derive(Debug)]
pub struct CapturedLogs {
    buffer: Buffer,
    _guard: DefaultGuard,
}

/// Starts capturing the current thread's log at `level` and above.
pub fn capture(level: Level) -> CapturedLogs {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // tracing caches per call site whether any subscriber wants it; a call site first reached
    // by another test's thread while this subscriber was being installed may have been cached
    // as unwanted, so ask every call site again now that it is in place
    tracing::callsite::rebuild_interest_cache();
    CapturedLogs { buffer, _guard: guard }
}

impl CapturedLogs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.0.lock().unwrap_or_else(|e| e.into_inner()))
            .into_owned()
    }

    /// How many captured lines contain `needle`.
    pub fn lines_with(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

#[derive(Debug, Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
