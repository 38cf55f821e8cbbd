//! Bounds on streamed exports: how many run at once per user and per process, and how long an
//! export waits for its client to take the next rows before it is abandoned. An export holds a
//! database connection from the API's pool while it runs, so both bound what readers can take
//! from that pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Principal;
use crate::quota::{QuotaFull, UserQuota};
use crate::ApiError;

/// Limits on exports.
#[derive(Debug, Clone, Copy)]
pub struct ExportLimits {
    /// Exports one user may run at once.
    pub per_user: usize,
    /// Exports the process runs at once.
    pub total: usize,
    /// Longest an export waits for its client to take more rows; then its query is dropped,
    /// its connection returned and its body cut short.
    pub stall_timeout: Duration,
}

impl Default for ExportLimits {
    fn default() -> Self {
        Self { per_user: 2, total: 3, stall_timeout: Duration::from_secs(30) }
    }
}

/// The exports running in a process.
#[derive(Debug)]
pub struct Exports {
    limits: ExportLimits,
    running: Mutex<UserQuota>,
}

/// One running export's place, held by the task that reads its rows; dropping it frees the place.
#[derive(Debug)]
pub struct ExportPermit {
    user_id: i32,
    exports: Arc<Exports>,
}

impl Drop for ExportPermit {
    fn drop(&mut self) {
        let mut running = self.exports.lock();
        running.release(self.user_id);
        metrics::gauge!("fleetd_exports_running").set(running.total() as f64);
    }
}

/// How long a refused client is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl Exports {
    pub fn new(limits: ExportLimits) -> Self {
        Self { limits, running: Mutex::new(UserQuota::default()) }
    }

    pub fn limits(&self) -> ExportLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UserQuota> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for an export by `who`, or a 429 problem when the user or the process already
    /// runs as many as allowed.
    pub fn begin(self: &Arc<Self>, who: &Principal) -> Result<ExportPermit, ApiError> {
        let mut running = self.lock();
        let (reason, detail) =
            match running.take(who.user_id, self.limits.per_user, self.limits.total) {
                Ok(()) => {
                    metrics::gauge!("fleetd_exports_running").set(running.total() as f64);
                    return Ok(ExportPermit { user_id: who.user_id, exports: self.clone() });
                }
                Err(QuotaFull::Total) => (
                    "total",
                    format!(
                        "the server is running its {} exports; try again shortly",
                        self.limits.total
                    ),
                ),
                Err(QuotaFull::PerUser) => (
                    "per_user",
                    format!(
                        "at most {} exports per user run at once; let one finish first",
                        self.limits.per_user
                    ),
                ),
            };
        metrics::counter!("fleetd_exports_refused_total", "reason" => reason).increment(1);
        Err(ApiError::TooBusy { detail, retry_after: RETRY_AFTER })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::test_principal as who;

    #[test]
    fn exports_are_limited_per_user_and_in_total_and_freed_on_drop() {
        let limits = ExportLimits { per_user: 1, total: 2, ..ExportLimits::default() };
        let exports = Arc::new(Exports::new(limits));
        let a = exports.begin(&who(1)).expect("a");
        let e = exports.begin(&who(1)).expect_err("a's second");
        assert_eq!(e.problem().status, 429);
        let _b = exports.begin(&who(2)).expect("b");
        assert!(exports.begin(&who(3)).is_err(), "total reached");
        drop(a);
        let _a = exports.begin(&who(1)).expect("a again");
    }
}
