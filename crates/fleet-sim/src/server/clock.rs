//! The simulator's notion of "now": wall-clock time, or time running faster from a start point.

use std::time::Instant;

use chrono::Utc;

/// Maps wall-clock time to simulated time.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin_sim: i64,
    origin_real: Instant,
    speedup: f64,
}

impl SimClock {
    /// Simulated time equals UTC now.
    pub fn real_time() -> Self {
        Self::starting_at(Utc::now().timestamp(), 1.0)
    }

    /// Simulated time starts at `origin` (unix seconds) and advances `speedup` times faster than
    /// the wall clock.
    pub fn starting_at(origin: i64, speedup: f64) -> Self {
        Self { origin_sim: origin, origin_real: Instant::now(), speedup: speedup.max(0.0) }
    }

    /// Simulated now, unix seconds.
    pub fn now(&self) -> i64 {
        self.origin_sim + (self.origin_real.elapsed().as_secs_f64() * self.speedup) as i64
    }
}
