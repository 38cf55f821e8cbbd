//! The backfill behind `fleetd ingest backfill`: track history and alarms of a range, for some
//! or all active devices, fetched the way the pollers fetch and logged as one run.
//!
//! Cursors never move back. A device's track cursor moves forward to the newest point the
//! backfill stored (so the track poll goes on from there, filling any gap up to now); the
//! account-wide alarm cursor is left alone, since a backfill may cover only some devices.

use chrono::{DateTime, Utc};
use fleet_core::Imei;
use fleet_tracksolid::{TracksolidClient, VendorError};
use serde_json::json;
use sqlx::PgPool;

use super::store::{self, Run};
use super::{account, track, Job, JobReport, PollError};
use crate::Writer;

/// The backfill's `fleet.ingestion_log.job`, and the prefix of its writer channels
/// (`backfill.track`, `backfill.alarms`).
pub const BACKFILL_JOB: &str = "backfill";

/// Fetches and stores the track of each device and then the alarms of all of them for
/// `[from, to]`. `imeis` names the devices (registered if unknown); `None` takes every active
/// device. `progress(done, total)` is called after each step: one per device, then one for the
/// alarms, so `total` is the number of devices plus one.
///
/// A device the vendor refuses is skipped (the run is partial); any other failure ends the
/// backfill with what was stored so far kept, and is logged as a failed run.
#[tracing::instrument(name = "poll_job", skip_all, fields(job = %BACKFILL_JOB, %from, %to))]
pub async fn backfill(
    client: &TracksolidClient,
    writer: &Writer,
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    imeis: Option<Vec<Imei>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<JobReport, PollError> {
    let mut run = Run::new(BACKFILL_JOB);
    let outcome = async {
        let imeis = match imeis {
            Some(list) => list,
            None => {
                store::active_devices(pool, Job::Track).await?.into_iter().map(|d| d.imei).collect()
            }
        };
        run.range(from, to);
        run.set_devices(imeis.len());
        let total = imeis.len() + 1;
        let channel = format!("{BACKFILL_JOB}.track");
        for (done, imei) in imeis.iter().enumerate() {
            match track::fetch(client, writer, &channel, imei, from, to).await {
                Ok(fetched) => {
                    run.add(&fetched.report);
                    if let Some(newest) = fetched.newest {
                        store::advance_device_cursor(pool, Job::Track, imei, newest.min(to))
                            .await?;
                    }
                }
                Err(PollError::Vendor(e @ VendorError::IllegalDevice { .. })) => {
                    run.problem(format!("{imei}: {e}"));
                }
                Err(e) => return Err(e),
            }
            progress(done + 1, total);
        }
        let alarms = account::fetch(client, Job::Alarms, &imeis, from, to).await?;
        let report = writer.write(&format!("{BACKFILL_JOB}.alarms"), alarms).await?;
        run.add(&report);
        run.detail("alarms", json!(report.received));
        progress(total, total);
        Ok(())
    }
    .await;
    run.conclude(pool, outcome).await
}
