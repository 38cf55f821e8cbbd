//! `push-load`: pushes the GPS fixes of a simulated fleet to a fleetd push receiver as fast as
//! it acknowledges them, and prints the rate; or, with `--csv`, writes the same fixes as CSV
//! for the `psql \copy` baseline. Everything is generated before the clock starts.
//!
//! The result is one line of `key=value` pairs on stdout, for scripts; progress goes to stderr.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fleet_bench::fixes::{self, VENDOR_MAX_ITEMS};
use fleet_bench::{csv, load};

/// Push a simulated fleet's GPS fixes to fleetd (or write them as CSV).
#[derive(Debug, Parser)]
#[command(name = "push-load", version)]
struct Args {
    /// The receiver's base URL as registered with the vendor; `/pushgps` is appended.
    #[arg(long, required_unless_present = "csv")]
    url: Option<String>,
    /// The Data Push shared secret (fleetd's FLEETD_PUSH_TOKEN).
    #[arg(long, env = "FLEETD_PUSH_TOKEN", hide_env_values = true, default_value = "")]
    token: String,
    /// Vehicles of the simulated fleet.
    #[arg(long, default_value_t = 4000)]
    vehicles: usize,
    /// Hours of history before `--end`.
    #[arg(long, default_value_t = 6.0)]
    hours: f64,
    /// End of the window, unix seconds; default the latest 09:00 UTC (noon in the fleet's
    /// timezone), so the window covers working hours and is the same all day.
    #[arg(long)]
    end: Option<i64>,
    /// Requests in flight at once, each on its own keep-alive connection.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seed of the simulated fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Items per request (the vendor sends at most 50).
    #[arg(long, default_value_t = VENDOR_MAX_ITEMS)]
    batch: usize,
    /// Seconds a request may take before it is abandoned and sent again.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// Write the fixes as CSV to FILE instead of pushing them.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let end = args.end.unwrap_or_else(|| fixes::default_end(chrono::Utc::now().timestamp()));
    let start = end - (args.hours * 3600.0).round() as i64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let generating = Instant::now();
    let items = fixes::gps_items(args.seed, args.vehicles, start, end, threads);
    let lists = fixes::data_lists(&items, args.batch);
    eprintln!(
        "push-load: {} GPS fixes of {} devices ({} vehicles, seed {}, {} to {}), {} requests, generated in {:.1} s",
        items.len(),
        fixes::devices(&items),
        args.vehicles,
        args.seed,
        fmt_time(start),
        fmt_time(end),
        lists.len(),
        generating.elapsed().as_secs_f64()
    );
    let fixes = items.len();
    drop(items);

    if let Some(path) = &args.csv {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let rows = csv::write(&mut BufWriter::new(file), &lists)?;
        println!("fixes={fixes} rows={rows} csv={}", path.display());
        return Ok(());
    }

    let url = format!("{}/pushgps", args.url.as_deref().unwrap_or_default().trim_end_matches('/'));
    let requests: Vec<load::Request> = lists
        .into_iter()
        .map(|(n, list)| load::Request { items: n, body: load::form_body(&args.token, &list) })
        .collect();
    eprintln!("push-load: sending to {url} over {} connections", args.concurrency);
    // one thread is plenty for the network side, and leaves the other cores to fleetd and
    // PostgreSQL
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(load::run(
        &url,
        Arc::new(requests),
        args.concurrency,
        Duration::from_secs(args.timeout_s),
    ))?;
    println!(
        "fixes={fixes} items={} requests={} retries={} concurrency={} seconds={:.3} items_per_s={:.0}",
        report.items,
        report.requests,
        report.retries,
        args.concurrency,
        report.elapsed.as_secs_f64(),
        report.items_per_s()
    );
    Ok(())
}

fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}
