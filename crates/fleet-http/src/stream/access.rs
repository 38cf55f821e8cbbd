//! Who holds the open live streams: a cap per user and per process, and the re-check of every
//! open stream's credential (periodically, and at once when the `fleet_auth` triggers announce
//! that a token, a session or a user changed), ending streams whose credential no longer holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use fleet_accounts::credential::{self, Held};

use crate::auth::{Credential, Principal};
use crate::quota::{QuotaFull, UserQuota};

/// Limits on live streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Streams one user may hold open at once (over all their tokens and sessions).
    pub per_user: usize,
    /// Streams the process holds open at once.
    pub total: usize,
    /// How often every open stream's credential is checked again (besides on `fleet_auth`).
    pub recheck_every: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self { per_user: 20, total: 500, recheck_every: Duration::from_secs(60) }
    }
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerUser(usize),
    Total(usize),
}

#[derive(Debug)]
struct Holder {
    user_id: i32,
    credential: Credential,
    end: CancellationToken,
}

#[derive(Debug, Default)]
struct Open {
    next: i64,
    streams: HashMap<i64, Holder>,
    places: UserQuota,
}

/// The open streams of a process.
#[derive(Debug)]
pub struct OpenStreams {
    limits: StreamLimits,
    open: Mutex<Open>,
}

/// One open stream's place; dropping it (when the stream ends) frees the place.
#[derive(Debug)]
pub struct StreamTicket {
    id: i64,
    streams: Arc<OpenStreams>,
    /// Cancelled when the stream's credential stopped being valid.
    pub ended: CancellationToken,
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let mut open = self.streams.lock();
        if let Some(h) = open.streams.remove(&self.id) {
            open.places.release(h.user_id);
        }
    }
}

impl OpenStreams {
    pub fn new(limits: StreamLimits) -> Self {
        Self { limits, open: Mutex::new(Open::default()) }
    }

    pub fn limits(&self) -> StreamLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a stream of `who`, unless the user or the process is at its limit.
    pub fn open(self: &Arc<Self>, who: &Principal) -> Result<StreamTicket, Refusal> {
        let mut open = self.lock();
        match open.places.take(who.user_id, self.limits.per_user, self.limits.total) {
            Ok(()) => {}
            Err(QuotaFull::Total) => {
                metrics::counter!("fleetd_stream_refused_total", "reason" => "total").increment(1);
                return Err(Refusal::Total(self.limits.total));
            }
            Err(QuotaFull::PerUser) => {
                metrics::counter!("fleetd_stream_refused_total", "reason" => "per_user")
                    .increment(1);
                return Err(Refusal::PerUser(self.limits.per_user));
            }
        }
        open.next += 1;
        let id = open.next;
        let end = CancellationToken::new();
        open.streams.insert(
            id,
            Holder { user_id: who.user_id, credential: who.credential.clone(), end: end.clone() },
        );
        Ok(StreamTicket { id, streams: self.clone(), ended: end })
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        self.lock().streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks every open stream's credential in one query and ends those no longer valid (a
    /// token revoked or expired, a session ended, a user deactivated or deleted). Returns how
    /// many were ended.
    pub async fn revalidate(&self, pool: &PgPool) -> Result<usize, sqlx::Error> {
        // copied out: the lock is not held across the query
        let held: Vec<Held> = self
            .lock()
            .streams
            .iter()
            .map(|(id, h)| Held { id: *id, user_id: h.user_id, credential: h.credential.clone() })
            .collect();
        let invalid = credential::lapsed(pool, &held).await?;
        let open = self.lock();
        for id in &invalid {
            if let Some(h) = open.streams.get(id) {
                h.end.cancel();
            }
        }
        if !invalid.is_empty() {
            metrics::counter!("fleetd_stream_ended_total", "reason" => "credential")
                .increment(invalid.len() as u64);
            tracing::info!(
                streams = invalid.len(),
                "live streams ended: their credential is no longer valid"
            );
        }
        Ok(invalid.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::test_principal as who;

    #[test]
    fn places_are_limited_per_user_and_in_total_and_freed_on_drop() {
        let limits = StreamLimits { per_user: 2, total: 3, ..StreamLimits::default() };
        let streams = Arc::new(OpenStreams::new(limits));
        let a1 = streams.open(&who(1)).expect("a1");
        let _a2 = streams.open(&who(1)).expect("a2");
        assert_eq!(streams.open(&who(1)).expect_err("a3"), Refusal::PerUser(2));
        let _b1 = streams.open(&who(2)).expect("b1");
        assert_eq!(streams.open(&who(3)).expect_err("c1"), Refusal::Total(3));
        drop(a1);
        assert_eq!(streams.len(), 2);
        let _a3 = streams.open(&who(1)).expect("a place again");
    }
}
