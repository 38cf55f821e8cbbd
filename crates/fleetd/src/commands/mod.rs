//! One module per subcommand.

pub mod backfill;
pub mod demo_sim;
pub mod migrate;
pub mod ops;
pub mod pollers;
pub mod serve;
pub mod sim;
pub mod status;
pub mod trips;
pub mod users;
