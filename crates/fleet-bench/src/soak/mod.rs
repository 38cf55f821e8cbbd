//! The soak benchmark's parts: a live fleet pushed through the simulator while fleetd's
//! derived data, CPU, memory and database are sampled every interval.
//!
//! - [`tracker`]: the pusher's observer — acknowledgement latencies, acknowledged fixes and
//!   the fixes fleetd's trips and KPIs do not reflect yet.
//! - [`procstat`]: CPU time and memory from /proc.
//! - [`setup`]: vehicles, geofences, webhook and notification rules.
//! - [`clients`]: live-stream viewers, the light API load and the webhook receiver.
//! - [`series`] and [`chart`]: the samples as CSV and as a PNG chart.

pub mod chart;
pub mod clients;
pub mod procstat;
pub mod series;
pub mod setup;
pub mod tracker;

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock now, unix seconds.
pub fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
