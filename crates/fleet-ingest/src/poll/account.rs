//! `poll.alarms` and `poll.trips`: account-wide windowed polls over every active device, from
//! one cursor per job (`device_id` null) less the job's overlap, up to the run's end. The
//! cursor then moves to the run's end: the client stops its ranges a little before its clock,
//! and the overlap covers that margin as well as late delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_core::Imei;
use fleet_tracksolid::{convert, TracksolidClient};

use super::jobs::{record, PollJobs};
use super::store::{self, Run};
use super::{before, Job, PollError};
use crate::Record;

pub(super) async fn poll(
    jobs: &PollJobs,
    run: &mut Run,
    job: Job,
    end: DateTime<Utc>,
) -> Result<(), PollError> {
    let imeis: Vec<Imei> =
        store::active_devices(&jobs.pool, job).await?.into_iter().map(|d| d.imei).collect();
    run.set_devices(imeis.len());
    // with no devices nothing was asked; keeping the cursor lets devices synced later have
    // this window fetched
    if imeis.is_empty() {
        return Ok(());
    }
    let cursor = store::account_cursor(&jobs.pool, job).await?;
    let begin = match cursor {
        Some(c) => before(c, overlap(jobs, job)),
        None => before(end, jobs.config.first_backfill),
    };
    run.range(begin, end);
    let records = fetch(&jobs.client, job, &imeis, begin, end).await?;
    let report = jobs.writer.write(job.name(), records).await?;
    run.add(&report);
    store::advance_account_cursor(&jobs.pool, job, end).await?;
    Ok(())
}

fn overlap(jobs: &PollJobs, job: Job) -> Duration {
    match job {
        Job::Trips => jobs.config.trips_overlap,
        _ => jobs.config.alarms_overlap,
    }
}

/// The alarms or trips of `imeis` in `[begin, end]` as records.
pub(super) async fn fetch(
    client: &TracksolidClient,
    job: Job,
    imeis: &[Imei],
    begin: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Record>, PollError> {
    if begin >= end || imeis.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let records = if job == Job::Trips {
        let trips = client.track_mileage(imeis, begin, end).await?;
        trips
            .iter()
            .map(|t| {
                let trip = convert::vendor_trip(t, now);
                record(
                    trip.map(|trip| Record::VendorTrip { trip, pushed: false }),
                    t,
                    t.imei.clone(),
                )
            })
            .collect()
    } else {
        let alarms = client.alarm_list(imeis, begin, end).await?;
        alarms
            .iter()
            .map(|a| record(convert::alarm_event(a, now).map(Record::Alarm), a, a.imei.clone()))
            .collect()
    };
    Ok(records)
}
