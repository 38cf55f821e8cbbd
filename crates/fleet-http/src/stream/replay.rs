//! What the listener admits of the signed notifications: fresh ones it has not seen before, so
//! a copied genuine payload cannot be replayed, and a warning rate that no flood can raise.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use fleet_db::notify::Verified;

/// How far a signature's time may be from the listener's clock (either way, for clock skew
/// between fleetd hosts).
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// Signatures remembered; more than this many within [`FRESH_FOR`] (over 270 flushes a
/// second) raise the floor below which every signature is refused, so the memory stays bounded
/// without letting a forgotten signature be replayed.
const REMEMBERED: usize = 16_384;

/// Why a notification was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No valid signature: not from a fleetd session.
    Unsigned,
    /// Signed too long ago (or too far ahead).
    Stale,
    /// A signature already seen: a replay.
    Replayed,
}

/// The signatures seen within the freshness window.
#[derive(Default)]
pub struct ReplayGuard {
    seen: HashSet<[u8; 32]>,
    order: VecDeque<([u8; 32], i64)>,
    /// Signatures made at or before this time are refused (the newest one forgotten early).
    floor_ms: i64,
}

impl ReplayGuard {
    /// Admits `v` when it is fresh at `now_ms` and not seen before, and remembers it.
    pub fn admit(&mut self, v: &Verified<'_>, now_ms: i64) -> Result<(), Refused> {
        let window = FRESH_FOR.as_millis() as i64;
        while let Some(&(tag, at)) = self.order.front() {
            if at >= now_ms - window {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&tag);
        }
        if (v.signed_at_ms - now_ms).abs() > window || v.signed_at_ms <= self.floor_ms {
            return Err(Refused::Stale);
        }
        if !self.seen.insert(v.tag) {
            return Err(Refused::Replayed);
        }
        // kept in arrival order; pruning by arrival keeps each one at least as long as it is fresh
        self.order.push_back((v.tag, v.signed_at_ms.max(now_ms)));
        if self.order.len() > REMEMBERED {
            if let Some((tag, at)) = self.order.pop_front() {
                self.seen.remove(&tag);
                self.floor_ms = self.floor_ms.max(at.min(v.signed_at_ms));
            }
        }
        Ok(())
    }
}

/// Counts refused notifications and logs them at most once per [`RefusalLog::EVERY`], so a
/// flood of `pg_notify` calls cannot flood the log.
#[derive(Default)]
pub struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    pub const EVERY: Duration = Duration::from_secs(60);

    pub fn refused(&mut self, why: Refused, bytes: usize) {
        metrics::counter!("fleetd_stream_notifications_rejected_total").increment(1);
        self.unlogged += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < Self::EVERY) {
            return;
        }
        tracing::warn!(
            reason = ?why,
            payload.bytes = bytes,
            notifications = self.unlogged,
            "ignoring fleet_changes notifications without a fresh, unseen, valid signature (count since the last warning)"
        );
        self.last = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_db::notify::{NotifyKey, CHANGES_CHANNEL};

    #[test]
    fn a_signature_is_admitted_once_and_only_while_fresh() {
        let key = NotifyKey::from_bytes([1; 32]);
        let now = 1_700_000_000_000;
        let signed = key.sign_at(CHANGES_CHANNEL, "{}", now - 1_000);
        let v = key.verify(CHANGES_CHANNEL, &signed).expect("valid");
        let mut guard = ReplayGuard::default();
        assert_eq!(guard.admit(&v, now), Ok(()));
        assert_eq!(guard.admit(&v, now + 10), Err(Refused::Replayed));
        // once it has left the window it is refused as stale, not forgotten into acceptance
        assert_eq!(guard.admit(&v, now + 120_000), Err(Refused::Stale));
        let old = key.sign_at(CHANGES_CHANNEL, "{}", now - 61_000);
        let old = key.verify(CHANGES_CHANNEL, &old).expect("valid");
        assert_eq!(guard.admit(&old, now), Err(Refused::Stale));
    }

    #[test]
    fn the_memory_stays_bounded_and_a_forgotten_signature_stays_refused() {
        let key = NotifyKey::from_bytes([1; 32]);
        let now = 1_700_000_000_000;
        let mut guard = ReplayGuard::default();
        let first = key.sign_at(CHANGES_CHANNEL, "{}", now);
        let first = key.verify(CHANGES_CHANNEL, &first).expect("valid");
        guard.admit(&first, now).expect("admitted");
        for i in 0..REMEMBERED as i64 + 10 {
            let s = key.sign_at(CHANGES_CHANNEL, "{}", now + 1 + i / 1000);
            guard.admit(&key.verify(CHANGES_CHANNEL, &s).expect("valid"), now).expect("fresh");
        }
        assert!(guard.order.len() <= REMEMBERED && guard.seen.len() <= REMEMBERED);
        assert_eq!(guard.admit(&first, now), Err(Refused::Stale), "below the floor");
    }
}
