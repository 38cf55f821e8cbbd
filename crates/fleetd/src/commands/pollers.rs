//! The Tracksolid pollers of a serving process: a client for the configured account (or the
//! demo's simulator), the poll jobs at the configured intervals, under the poller lease.

use std::sync::Arc;

use fleet_config::{Config, TracksolidConfig};
use fleet_db::PgPool;
use fleet_ingest::{PollConfig, PollJobs, Poller, Writer};
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts the pollers for `account`; they stop on `shutdown`.
pub fn start(
    cfg: &Config,
    account: &TracksolidConfig,
    pool: PgPool,
    writer: Writer,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let client = TracksolidClient::new(ClientConfig::new(
        account.url.clone(),
        account.app_key.clone(),
        account.app_secret.clone(),
        account.user.clone(),
        account.password.clone(),
    ))?;
    let i = &cfg.ingest;
    let config = PollConfig {
        live_every: i.poll_live,
        track_every: i.poll_track,
        alarms_every: i.poll_alarms,
        trips_every: i.poll_trips,
        devices_every: i.poll_devices,
        ..PollConfig::default()
    };
    tracing::info!(tracksolid.url = %account.url, tracksolid.user = %account.user, "polling Tracksolid");
    let poller = Poller::new(PollJobs::new(Arc::new(client), writer, pool, config));
    Ok(tokio::spawn(poller.run(shutdown)))
}
