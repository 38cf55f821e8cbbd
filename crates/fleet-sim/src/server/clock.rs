//! The simulator's notion of "now": wall-clock time, or time running faster from a start point.

use std::time::{Duration, Instant};

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
        self.at(self.origin_real.elapsed(), Utc::now().timestamp())
    }

    /// Simulated time once `elapsed` has passed since the clock was made, when the wall clock
    /// reads `wall_now` (unix seconds): `now` with the two clocks it reads passed in.
    fn at(&self, elapsed: Duration, wall_now: i64) -> i64 {
        let t = self.origin_sim + (elapsed.as_secs_f64() * self.speedup) as i64;
        if self.capped {
            t.min(wall_now)
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
        assert!(clock.now() <= Utc::now().timestamp() - 19, "starts 20 s back");
        let wall = clock.origin_sim + 20; // the wall clock when it was made
        assert_eq!(clock.at(Duration::from_millis(50), wall), wall - 10, "200 times as fast");
        assert_eq!(clock.at(Duration::from_millis(300), wall), wall, "caught up, not ahead");
        assert_eq!(clock.at(Duration::from_secs(5), wall + 5), wall + 5, "then in real time");
    }

    #[test]
    fn a_free_running_clock_advances_speedup_times_faster() {
        let clock = SimClock::starting_at(1_000_000, 100.0);
        assert_eq!(clock.at(Duration::from_millis(200), 0), 1_000_020);
        assert_eq!(clock.at(Duration::from_secs(60), 0), 1_006_000, "not capped by the wall clock");
        assert!(clock.now() >= 1_000_000);
    }
}
