//! A Tracksolid Pro simulator: a deterministic, seeded fleet of vehicles driving a road-like
//! grid in East African cities, served through the vendor's OpenAPI (`/route/rest`) with its
//! signing, tokens, limits, error codes and wire types.

pub mod model;
pub mod push;
pub mod server;

pub use model::Fleet;
pub use server::{router, serve, Credentials, SimClock, SimConfig, SimState};
