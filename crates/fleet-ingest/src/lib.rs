//! fleetd's ingest: validated records from every source (polls, pushes, devices) go through one
//! batching writer per process, which stores each exactly once and tells the producer only when
//! its records are durable.

pub mod poll;
pub mod receiver;
pub mod record;
pub mod writer;

pub use poll::{backfill, Job, JobReport, PollConfig, PollError, PollJobs, Poller, RunStatus};
pub use receiver::{routes as push_routes, PushReceiver};
pub use record::{Record, Reject};
pub use writer::{WriteError, WriteReport, Writer, WriterConfig, CHANGES_CHANNEL};
