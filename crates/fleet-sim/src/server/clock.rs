//! The simulator's notion of "now": wall-clock time, or time running faster from a start point.

use std::time::Instant;

use chrono::Utc;

/// Maps wall-clock time to simulated time.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin_sim: i64,
    origin_real: Instant,
    speedup: f64,
    /// Never run ahead of the wall clock: once caught up, go on in real time.
    capped: bool,
}

impl SimClock {
    /// Simulated time equals UTC now.
    pub fn real_time() -> Self {
        Self::starting_at(Utc::now().timestamp(), 1.0)
    }

    /// Simulated time starts at `origin` (unix seconds) and advances `speedup` times faster than
    /// the wall clock.
    pub fn starting_at(origin: i64, speedup: f64) -> Self {
        Self {
            origin_sim: origin,
            origin_real: Instant::now(),
            speedup: speedup.max(0.0),
            capped: false,
        }
    }

    /// Simulated time starts `behind_s` seconds before now and runs `speedup` times faster
    /// until it has caught up with the wall clock, then in real time: a replay of the recent
    /// past that ends in live data, never in the future.
    pub fn catching_up(behind_s: i64, speedup: f64) -> Self {
        Self {
            capped: true,
            ..Self::starting_at(Utc::now().timestamp() - behind_s.max(0), speedup)
        }
    }

    /// Simulated now, unix seconds.
    pub fn now(&self) -> i64 {
        let t = self.origin_sim + (self.origin_real.elapsed().as_secs_f64() * self.speedup) as i64;
        if self.capped {
            t.min(Utc::now().timestamp())
        } else {
            t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaying_clock_starts_in_the_past_and_never_passes_the_wall_clock() {
        let clock = SimClock::catching_up(20, 200.0);
        let start = clock.now();
        assert!(start <= Utc::now().timestamp() - 19, "starts 20 s back");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let wall = Utc::now().timestamp();
        let caught_up = clock.now();
        assert!(
            caught_up <= wall && caught_up >= wall - 1,
            "caught up, not ahead: {caught_up} vs {wall}"
        );
    }

    #[test]
    fn a_free_running_clock_advances_speedup_times_faster() {
        let clock = SimClock::starting_at(1_000_000, 100.0);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let t = clock.now();
        assert!((1_000_015..1_000_200).contains(&t), "{t}");
    }
}
