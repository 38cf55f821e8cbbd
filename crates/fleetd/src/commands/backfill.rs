//! `fleetd ingest backfill`: a past range of track history and alarms from the Tracksolid
//! account, through the same writer as everything else, with a progress bar.

use std::sync::Arc;

use anyhow::Context;
use fleet_config::Config;
use fleet_ingest::{PollConfig, PollJobs, Writer, WriterConfig};
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::cli::BackfillArgs;
use crate::database::Database;

pub async fn run(cfg: Config, args: BackfillArgs) -> anyhow::Result<()> {
    let account = cfg.tracksolid.clone().context(
        "backfill needs the Tracksolid account: set FLEETD_TRACKSOLID_URL, _APP_KEY, _APP_SECRET, _USER and _PASSWORD",
    )?;
    let to = args.to.unwrap_or_else(chrono::Utc::now);
    anyhow::ensure!(args.from < to, "--from must be before --to");
    let client = Arc::new(TracksolidClient::new(ClientConfig::new(
        account.url,
        account.app_key,
        account.app_secret,
        account.user,
        account.password,
    ))?);
    let db = Database::open(&cfg).await?;
    let result = async {
        db.prepare(&cfg).await?;
        let stop = CancellationToken::new();
        let (writer, writer_task) = Writer::spawn(db.pool.clone(), WriterConfig::default(), stop.clone());
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} backfill {bar:40} {pos}/{len} devices ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let imeis = (!args.imeis.is_empty()).then(|| args.imeis.clone());
        if imeis.is_none() {
            // the account's current device list decides which devices to backfill
            let jobs = PollJobs::new(client.clone(), writer.clone(), db.pool.clone(), PollConfig::default());
            let synced = jobs.sync_devices().await?;
            tracing::info!(devices = synced.devices, "device list synchronised");
        }
        let report = fleet_ingest::backfill(&client, &writer, &db.pool, args.from, to, imeis, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
        bar.finish_and_clear();
        stop.cancel();
        let _ = writer_task.await;
        let report = report?;
        let c = report.counts;
        println!(
            "backfill {} .. {}: {} devices, {} records received, {} new, {} already stored, {} rejected ({})",
            args.from,
            to,
            report.devices,
            c.received,
            c.new,
            c.duplicate,
            c.rejected,
            report.status.as_str()
        );
        for p in &report.problems {
            println!("  {p}");
        }
        anyhow::Ok(())
    }
    .await;
    let closed = db.close().await;
    result.and(closed)
}
