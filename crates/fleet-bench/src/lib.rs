//! fleetd's benchmarks. The load generators run as processes of their own, so what they cost
//! (generating, encoding, sending) is never counted as fleetd's time or memory.
//!
//! - [`fixes`]: the GPS Data Push items of a simulated fleet, pre-encoded as request bodies.
//! - [`load`]: POSTs those bodies over concurrent keep-alive connections and times the acks.
//! - [`csv`]: the same fixes as CSV rows for the `psql \copy` baseline.
//! - [`trips`]: the trips benchmark's generated positions and its materialized-view baseline.
//! - [`soak`]: the live soak — a fleet pushed in real time while fleetd is sampled.

pub mod csv;
pub mod fixes;
pub mod load;
pub mod soak;
pub mod trips;
