//! Bounds on streamed exports: how many run at once per user and per process, and how long an
//! export waits for its client to take the next rows before it is abandoned. An export holds a
//! database connection from the API's pool while it runs, so both bound what readers can take
//! from that pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::Principal;
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

#[derive(Debug, Default)]
struct Running {
    total: usize,
    per_user: HashMap<i32, usize>,
}

/// The exports running in a process.
#[derive(Debug)]
pub struct Exports {
    limits: ExportLimits,
    running: Mutex<Running>,
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
        running.total -= 1;
        if let Some(n) = running.per_user.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                running.per_user.remove(&self.user_id);
            }
        }
        metrics::gauge!("fleetd_exports_running").set(running.total as f64);
    }
}

/// How long a refused client is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl Exports {
    pub fn new(limits: ExportLimits) -> Self {
        Self { limits, running: Mutex::new(Running::default()) }
    }

    pub fn limits(&self) -> ExportLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for an export by `who`, or a 429 problem when the user or the process already
    /// runs as many as allowed.
    pub fn begin(self: &Arc<Self>, who: &Principal) -> Result<ExportPermit, ApiError> {
        let mut running = self.lock();
        let (reason, detail) = if running.total >= self.limits.total {
            (
                "total",
                format!(
                    "the server is running its {} exports; try again shortly",
                    self.limits.total
                ),
            )
        } else if running.per_user.get(&who.user_id).copied().unwrap_or(0) >= self.limits.per_user {
            (
                "per_user",
                format!(
                    "at most {} exports per user run at once; let one finish first",
                    self.limits.per_user
                ),
            )
        } else {
            running.total += 1;
            *running.per_user.entry(who.user_id).or_default() += 1;
            metrics::gauge!("fleetd_exports_running").set(running.total as f64);
            return Ok(ExportPermit { user_id: who.user_id, exports: self.clone() });
        };
        metrics::counter!("fleetd_exports_refused_total", "reason" => reason).increment(1);
        Err(ApiError::TooBusy { detail, retry_after: RETRY_AFTER })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Credential, Role};

    fn who(user_id: i32) -> Principal {
        Principal {
            user_id,
            username: format!("u{user_id}"),
            role: Role::Viewer,
            credential: Credential::Token { token_id: user_id },
        }
    }

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
