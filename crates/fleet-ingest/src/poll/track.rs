//! `poll.track`: each active device's track history from its own cursor, one device at a time
//! (`track.list` is slow on the vendor's side; asking for many devices at once only trips its
//! rate limit). A device the vendor refuses (expired, moved to another account) makes the run
//! partial; any other failure ends the run, keeping the devices already done.

use chrono::{DateTime, Utc};
use fleet_core::Imei;
use fleet_tracksolid::{convert, TrackPoint, TracksolidClient, VendorError};

use super::jobs::{record, PollJobs};
use super::store::{self, Run};
use super::{before, Job, PollError};
use crate::{Record, WriteReport, Writer};

pub(super) async fn poll(
    jobs: &PollJobs,
    run: &mut Run,
    end: DateTime<Utc>,
) -> Result<(), PollError> {
    let config = &jobs.config;
    let devices = store::active_devices(&jobs.pool, Job::Track).await?;
    run.set_devices(devices.len());
    run.detail("to", serde_json::json!(end.to_rfc3339()));
    for device in devices {
        let begin = match device.cursor {
            Some(cursor) => before(cursor, config.track_overlap),
            None => before(end, config.first_backfill),
        };
        let fetched =
            match fetch(&jobs.client, &jobs.writer, Job::Track.name(), &device.imei, begin, end)
                .await
            {
                Ok(f) => f,
                Err(PollError::Vendor(e @ VendorError::IllegalDevice { .. })) => {
                    run.problem(format!("{}: {e}", device.imei));
                    continue;
                }
                Err(e) => return Err(e),
            };
        run.add(&fetched.report);
        // forward only (a device without a cursor counts as fetched from this run's start),
        // and never past the run's end: a point slightly in the future must not make the next
        // window start after now
        let floor = before(end, config.track_silence_lookback);
        let next = [Some(device.cursor.unwrap_or(begin)), fetched.newest, Some(floor)]
            .into_iter()
            .flatten()
            .max()
            .map_or(end, |t| t.min(end));
        store::advance_device_cursor(&jobs.pool, Job::Track, &device.imei, next).await?;
    }
    Ok(())
}

/// What fetching one device's track stored.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    pub report: WriteReport,
    /// GPS time of the newest valid point.
    pub newest: Option<DateTime<Utc>>,
}

/// Fetches the track of `imei` for `[begin, end]` and stores it on `channel` (the caller has
/// nothing open in the database meanwhile).
pub(super) async fn fetch(
    client: &TracksolidClient,
    writer: &Writer,
    channel: &str,
    imei: &Imei,
    begin: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Fetched, PollError> {
    if begin >= end {
        return Ok(Fetched::default());
    }
    let points = client.track_list(imei, begin, end).await?;
    let (records, newest) = records(&points, imei);
    let report = writer.write(channel, records).await?;
    Ok(Fetched { report, newest })
}

fn records(points: &[TrackPoint], imei: &Imei) -> (Vec<Record>, Option<DateTime<Utc>>) {
    let now = Utc::now();
    let mut newest: Option<DateTime<Utc>> = None;
    let records = points
        .iter()
        .map(|p| {
            let fix = convert::track_fix(p, imei, now);
            if let Ok(f) = &fix {
                newest = newest.max(Some(f.gps_time));
            }
            record(fix.map(Record::Position), p, Some(imei.to_string()))
        })
        .collect();
    (records, newest)
}
