//! When to try a failed message again: exponential per attempt, jittered so a receiver that
//! comes back is not hit by every queued message at the same instant, capped.

use std::time::Duration;

use rand::Rng;

/// The first retry waits about this long (the dispatcher's default `retry_base`).
pub const BASE: Duration = Duration::from_secs(10);
/// No retry waits longer than this.
pub const CAP: Duration = Duration::from_secs(30 * 60);

/// The wait after failed attempt number `attempt` (1 for the first): `base · 2^(attempt-1)`,
/// capped at [`CAP`], then scaled by a random factor in [0.8, 1.2) (never beyond the cap).
pub fn delay(base: Duration, attempt: i32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
    let raw = base.saturating_mul(1u32 << exp).min(CAP);
    let factor: f64 = rand::thread_rng().gen_range(0.8..1.2);
    raw.mul_f64(factor).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_and_stop_at_the_cap() {
        for _ in 0..200 {
            let first = delay(BASE, 1);
            assert!(
                first >= Duration::from_secs(8) && first < Duration::from_secs(12),
                "{first:?}"
            );
            let third = delay(BASE, 3);
            assert!(
                third >= Duration::from_secs(32) && third < Duration::from_secs(48),
                "{third:?}"
            );
            assert!(delay(BASE, 12) <= CAP && delay(BASE, 12) >= CAP.mul_f64(0.8));
            assert!(delay(BASE, i32::MAX) <= CAP);
            assert!(delay(BASE, 0) < Duration::from_secs(12));
        }
    }
}
