//! What every polling job needs, one entry point per job, and the live-location poll.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleet_tracksolid::{convert, RecordError, TracksolidClient};
use sqlx::PgPool;

use super::store::Run;
use super::{account, devices, track, Job, JobReport, PollConfig, PollError};
use crate::{Record, Reject, Writer};

/// The vendor client, the writer and the database the jobs work with. Each method does one run,
/// logs it in `fleet.ingestion_log` (a failed run too) and returns its report.
#[derive(Debug, Clone)]
pub struct PollJobs {
    pub client: Arc<TracksolidClient>,
    pub writer: Writer,
    pub pool: PgPool,
    pub config: PollConfig,
}

impl PollJobs {
    pub fn new(
        client: Arc<TracksolidClient>,
        writer: Writer,
        pool: PgPool,
        config: PollConfig,
    ) -> Self {
        Self { client, writer, pool, config }
    }

    /// One run of `job`. Windowed jobs fetch up to `now`; the scheduler passes the wall clock,
    /// tests pin it.
    /// Runs in a `poll_job` span (job, then devices and received once it is done), so the
    /// vendor client's log lines name the job they served (the writer logs in its own
    /// `writer_flush` span, on its own task).
    #[tracing::instrument(
        name = "poll_job",
        skip_all,
        fields(job = %job.name(), devices = tracing::field::Empty, received = tracing::field::Empty)
    )]
    pub async fn run(&self, job: Job, now: DateTime<Utc>) -> Result<JobReport, PollError> {
        let report = match job {
            Job::Devices => self.sync_devices().await,
            Job::Live => self.poll_live().await,
            Job::Track => self.poll_track(now).await,
            Job::Alarms => self.poll_alarms(now).await,
            Job::Trips => self.poll_trips(now).await,
        }?;
        let span = tracing::Span::current();
        span.record("devices", report.devices);
        span.record("received", report.counts.received);
        Ok(report)
    }

    /// `poll.devices`: the account's device list into `fleet.devices` (see the module docs for
    /// which fields the sync owns).
    pub async fn sync_devices(&self) -> Result<JobReport, PollError> {
        let mut run = Run::new(Job::Devices.name());
        let outcome = devices::sync(self, &mut run).await;
        run.conclude(&self.pool, outcome).await
    }

    /// `poll.live`: every device's latest location (source `poll`).
    pub async fn poll_live(&self) -> Result<JobReport, PollError> {
        let mut run = Run::new(Job::Live.name());
        let outcome = self.live(&mut run).await;
        run.conclude(&self.pool, outcome).await
    }

    /// `poll.track`: each active device's track from its cursor (less the overlap) to `now`.
    pub async fn poll_track(&self, now: DateTime<Utc>) -> Result<JobReport, PollError> {
        let mut run = Run::new(Job::Track.name());
        let outcome = track::poll(self, &mut run, now).await;
        run.conclude(&self.pool, outcome).await
    }

    /// `poll.alarms`: the active devices' alarms from the account cursor (less the overlap).
    pub async fn poll_alarms(&self, now: DateTime<Utc>) -> Result<JobReport, PollError> {
        let mut run = Run::new(Job::Alarms.name());
        let outcome = account::poll(self, &mut run, Job::Alarms, now).await;
        run.conclude(&self.pool, outcome).await
    }

    /// `poll.trips`: the vendor's trips (`track.mileage`) from the account cursor (less the
    /// overlap).
    pub async fn poll_trips(&self, now: DateTime<Utc>) -> Result<JobReport, PollError> {
        let mut run = Run::new(Job::Trips.name());
        let outcome = account::poll(self, &mut run, Job::Trips, now).await;
        run.conclude(&self.pool, outcome).await
    }

    async fn live(&self, run: &mut Run) -> Result<(), PollError> {
        let items = self.client.location_list(None).await?;
        run.set_devices(items.len());
        let now = Utc::now();
        let records = items
            .iter()
            .map(|item| {
                record(
                    convert::location_fix(item, now).map(Record::Position),
                    item,
                    item.imei.clone(),
                )
            })
            .collect();
        let report = self.writer.write(Job::Live.name(), records).await?;
        run.add(&report);
        Ok(())
    }
}

/// A converted record, or the reject that keeps the vendor's item and why it failed. The DTOs
/// keep no raw JSON, so the raw form is their debug rendering, which shows every field as read.
pub(crate) fn record<T: Debug>(
    converted: Result<Record, RecordError>,
    item: &T,
    imei: Option<String>,
) -> Record {
    converted
        .unwrap_or_else(|e| Record::Reject(Reject::new(e.to_string(), imei, format!("{item:?}"))))
}
