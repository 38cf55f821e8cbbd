//! The poller against the simulator over real HTTP, into a real database: the poll jobs, the
//! scheduler as fleetd runs it, and a day ingested by polling, pushing and both. One test
//! binary, so the shared support is compiled once and every part of it is used.

mod equivalence;
mod jobs;
mod scheduler;
mod support;
