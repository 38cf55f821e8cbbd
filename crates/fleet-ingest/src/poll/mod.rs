//! The Tracksolid pollers: device sync, live locations, track history, alarms and vendor trips,
//! each a job that does one run and logs it, scheduled under a lease by [`Poller`].
//!
//! Rules the jobs follow:
//!
//! - **Overlaps.** Every windowed poll starts a little before its cursor (`*_overlap`), because
//!   the vendor delivers late; the (device, time) keys make the overlap free.
//! - **Track cursors** are per device and only move forward, to the latest of: the stored
//!   cursor (for a device without one, the start of this run's window), the newest point
//!   fetched, and the run's end minus [`PollConfig::track_silence_lookback`]; never past the
//!   run's end. A device that returned nothing keeps its cursor, so fixes it buffered while
//!   out of coverage are fetched when it uploads them; but its window never reaches further
//!   back than the silence look-back, so a dead tracker costs one short call per run instead of
//!   a window growing to the vendor's three months.
//! - **Alarm and trip cursors** are account-wide (`device_id` null) and move to the run's end.
//!   Trips are listed when they end, so their overlap is hours: a trip longer than
//!   [`PollConfig::trips_overlap`] is missed by the poll (the pushed trip report still has it).
//! - **No cursor** (first run, new device): start [`PollConfig::first_backfill`] back.
//! - **Device sync** takes what the vendor account says for name, plate, driver, phone, model,
//!   SIM and vehicle type (an empty vendor field never erases a stored value); the vendor's
//!   device group fills `city` only while it is empty; `cost_centre` is never touched. Those two
//!   are the operators' to edit in fleetd. Devices no longer listed (or listed as disabled) are
//!   marked inactive, never deleted, and re-activated when listed again.
//! - **No database transaction is ever open across a vendor call.**
//! - **One `fleet.ingestion_log` row per run**, `detail.source = "poller"` (the writer's own
//!   per-channel window rows carry the same job names with `detail = "writer window"`).

mod account;
mod backfill;
mod devices;
mod jobs;
mod schedule;
mod store;
mod track;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_tracksolid::VendorError;

use crate::{WriteError, WriteReport};

pub use backfill::{backfill, BACKFILL_JOB};
pub use jobs::PollJobs;
pub use schedule::Poller;

/// When and how far back the pollers look. The defaults follow the reference deployment's
/// cadences, tightened where it was slow to notice changes.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Live snapshot of every device (`location.list`): 30 s.
    pub live_every: Duration,
    /// Track history per device (`track.list`): 30 min.
    pub track_every: Duration,
    /// Look-back before a device's track cursor: 35 min, a little more than the interval, so
    /// points delivered up to five minutes late are still fetched.
    pub track_overlap: Duration,
    /// Longest a device's track window may reach back when it stays silent: 24 h (see the
    /// module docs).
    pub track_silence_lookback: Duration,
    /// Vendor trips (`track.mileage`): 15 min.
    pub trips_every: Duration,
    /// Look-back before the trips cursor: 4 h, since a trip is listed only once it has ended.
    pub trips_overlap: Duration,
    /// Alarms (`alarm.list`): 5 min.
    pub alarms_every: Duration,
    /// Look-back before the alarms cursor: 10 min.
    pub alarms_overlap: Duration,
    /// Device registry sync (`device.list`): at start, then every 6 h. New trackers appear in
    /// the live poll (which registers them) within a minute anyway; the sync adds their names.
    pub devices_every: Duration,
    /// How far back a device or job without a cursor starts: 24 h.
    pub first_backfill: Duration,
    /// First delay before a failed run is retried: 10 s, doubling per consecutive failure up
    /// to the job's interval.
    pub retry_min: Duration,
    /// The advisory-lock lease only one process polls under: `tracksolid-poller`.
    pub lease_name: String,
    /// How often a process without the lease tries to take it: 30 s.
    pub lease_retry: Duration,
    /// How often the holder checks it still holds the lease: 5 s.
    pub lease_check: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        Self {
            live_every: Duration::from_secs(30),
            track_every: min(30),
            track_overlap: min(35),
            track_silence_lookback: min(24 * 60),
            trips_every: min(15),
            trips_overlap: min(4 * 60),
            alarms_every: min(5),
            alarms_overlap: min(10),
            devices_every: min(6 * 60),
            first_backfill: min(24 * 60),
            retry_min: Duration::from_secs(10),
            lease_name: "tracksolid-poller".to_owned(),
            lease_retry: Duration::from_secs(30),
            lease_check: Duration::from_secs(5),
        }
    }
}

impl PollConfig {
    /// How often `job` runs.
    pub fn interval(&self, job: Job) -> Duration {
        match job {
            Job::Devices => self.devices_every,
            Job::Live => self.live_every,
            Job::Track => self.track_every,
            Job::Alarms => self.alarms_every,
            Job::Trips => self.trips_every,
        }
    }
}

/// A scheduled polling job. Its name is its `fleet.ingestion_log.job` and its writer channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    Devices,
    Live,
    Track,
    Alarms,
    Trips,
}

impl Job {
    pub const ALL: [Job; 5] = [Job::Devices, Job::Live, Job::Track, Job::Alarms, Job::Trips];

    pub fn name(self) -> &'static str {
        match self {
            Job::Devices => "poll.devices",
            Job::Live => "poll.live",
            Job::Track => "poll.track",
            Job::Alarms => "poll.alarms",
            Job::Trips => "poll.trips",
        }
    }
}

/// How a run ended, as `fleet.ingestion_log.status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    /// Done, but some records were rejected or some devices refused.
    Partial,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

/// What one completed run did.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReport {
    /// The job's name: a [`Job::name`] or [`BACKFILL_JOB`].
    pub job: &'static str,
    pub status: RunStatus,
    /// Records received, new, duplicate and rejected, summed over the run's writes (for the
    /// device sync: devices listed, added, already known, unreadable).
    pub counts: WriteReport,
    /// Devices the run asked about.
    pub devices: usize,
    /// What went wrong without failing the run, e.g. a device the vendor refused.
    pub problems: Vec<String>,
}

/// Why a run failed. Every failed run is also logged in `fleet.ingestion_log`.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The vendor refused the login: nothing will work until the credentials are fixed.
    #[error(
        "the Tracksolid credentials were refused; check the app key, account and password ({0})"
    )]
    Credentials(VendorError),
    #[error("Tracksolid call failed: {0}")]
    Vendor(VendorError),
    #[error("storing the records failed: {0}")]
    Write(#[from] WriteError),
    #[error("{context}: {cause}")]
    Db { context: &'static str, cause: sqlx::Error },
}

impl From<VendorError> for PollError {
    fn from(e: VendorError) -> Self {
        match e {
            VendorError::BadCredentials { .. } => PollError::Credentials(e),
            other => PollError::Vendor(other),
        }
    }
}

/// Attaches what the poller was doing to a sqlx error.
pub(crate) trait DbContext<T> {
    fn context(self, context: &'static str) -> Result<T, PollError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, PollError> {
        self.map_err(|cause| PollError::Db { context, cause })
    }
}

/// `t - d`, saturating at the calendar's start instead of panicking on absurd durations.
pub(crate) fn before(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
