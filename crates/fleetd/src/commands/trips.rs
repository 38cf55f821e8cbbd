//! `fleetd trips rebuild`: re-derive trips, stops, geofence events and daily KPIs with a
//! progress bar, or hand the work to the running fleetd that holds the trip-builder lease.

use std::time::Instant;

use fleet_analytics::{backlog_size, mark_rebuild, refresh_kpis, TripWorker, TripWorkerConfig};
use fleet_config::Config;
use fleet_db::{Lease, LeaseOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::TripsRebuildArgs;
use crate::database::Database;

pub async fn rebuild(cfg: Config, args: TripsRebuildArgs) -> anyhow::Result<()> {
    let db = Database::open(&cfg).await?;
    let result = async {
        db.prepare(&cfg).await?;
        let config = TripWorkerConfig::default();
        let imeis: Vec<String> = args.imeis.iter().map(|i| i.as_str().to_owned()).collect();
        let imeis = (!imeis.is_empty()).then_some(&imeis[..]);
        let lease = Lease::try_acquire(&db.pool, &config.lease_name, LeaseOptions::default()).await?;
        let marked = mark_rebuild(&db.pool, imeis, args.since).await?;
        let Some(lease) = lease else {
            println!(
                "marked {marked} devices for rebuilding; another fleetd process holds the trip-builder lease and rebuilds them in the background"
            );
            return anyhow::Ok(());
        };
        let total = backlog_size(&db.pool).await?;
        let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {bar:40} {pos}/{len} devices ({elapsed}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("trips");
        let started = Instant::now();
        let chunk = config.chunk_devices;
        let mut worker = TripWorker::new(db.pool.clone(), config);
        let done = async {
            let trips = worker.pass(|r| bar.set_position(r.devices as u64)).await?;
            bar.set_position(0);
            bar.set_message("daily KPIs");
            let kpis = refresh_kpis(&db.pool, chunk, |r| bar.set_position(r.devices as u64)).await?;
            anyhow::Ok((trips, kpis))
        }
        .await;
        bar.finish_and_clear();
        lease.release().await;
        let (r, k) = done?;
        println!(
            "rebuilt {} devices: {} fixes read, {} trips written, {} daily KPI rows in {:.1} s",
            r.devices,
            r.fixes_read,
            r.trips_written,
            k.rows,
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    let closed = db.close().await;
    result.and(closed)
}
