//! Deterministic randomness: every random choice of the simulated fleet is drawn from a
//! generator seeded by (fleet seed, what is being decided), so any vehicle-day can be generated
//! on its own, in any order, and always comes out the same.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash step.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of several parts, order-sensitive.
pub fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_F1EE_7D00_0001, |acc, p| mix(acc ^ mix(*p)))
}

/// A generator for one decision domain.
pub fn rng(parts: &[u64]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(hash(parts))
}

/// A uniform value in `[lo, hi)` derived from a hash (for per-sample noise without a generator).
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Convenience draws.
pub trait Draw {
    fn chance(&mut self, p: f64) -> bool;
    fn between(&mut self, lo: f64, hi: f64) -> f64;
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T;
}

impl Draw for ChaCha8Rng {
    fn chance(&mut self, p: f64) -> bool {
        self.gen::<f64>() < p
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.gen::<f64>()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.gen_range(0..items.len())]
    }
}

/// Domain tags, so different decisions about the same vehicle draw independent numbers.
pub mod tag {
    pub const VEHICLE: u64 = 1;
    pub const DAY: u64 = 2;
    pub const ALARMS: u64 = 3;
    pub const NOISE: u64 = 4;
    pub const ROADS: u64 = 5;
}
