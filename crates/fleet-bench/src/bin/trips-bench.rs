//! The trips benchmark of DESIGN.md §9: fleetd's trip builder against the reference stack's
//! full refresh of a gaps-and-islands materialized view, on the same positions table and the
//! same PostgreSQL server, in one run.
//!
//! 1. Generates `vehicles` × `fixes` positions inside PostgreSQL.
//! 2. Baseline: `refresh materialized view` over all positions (best of `--repeat`).
//! 3. Full rebuild: every device marked, one trip builder pass (trips, stops, geofence events
//!    and daily KPIs written).
//! 4. Incremental: 1 % more fixes appended (as the writer marks them), one pass of the same
//!    worker (builders in memory), then another 1 % through a new worker (cold: re-derived from
//!    the stored segments, as after a restart).
//!
//! Beside the baseline, the full rebuild is compared with a bare binary `COPY` of exactly the
//! rows and columns it reads, to `/dev/null` on the server (best of two, one before and one
//! after the rebuild): the speed PostgreSQL hands the fixes out at, a floor for any reader.
//!
//! Prints the timings and the ratios; exits 1 when a bar (10× full, 50× incremental, full
//! rebuild within 1.6× the bare COPY) is missed.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fleet_analytics::{mark_rebuild, refresh_kpis, TripWorker, TripWorkerConfig};
use fleet_bench::trips::{generate_sql, BASELINE_VIEW_SQL};
use fleet_config::DbConfig;
use fleet_embedded_pg::{EmbeddedPostgres, StartOptions};

#[derive(Debug, Parser)]
struct Args {
    /// Vehicles.
    #[arg(long, default_value_t = 1000)]
    vehicles: u32,
    /// Fixes per vehicle before the incremental passes (a multiple of 100).
    #[arg(long, default_value_t = 10_000)]
    fixes: u32,
    /// Baseline refreshes to run; the fastest counts.
    #[arg(long, default_value_t = 2)]
    repeat: u32,
    /// A PostgreSQL server to use (a database `fleetd_trips_bench` is created on it); default a
    /// private cluster in a temporary directory.
    #[arg(long)]
    server_url: Option<String>,
}

const START: &str = "2026-03-02 00:00:00+00";
const FULL_BAR: f64 = 10.0;
const INCREMENTAL_BAR: f64 = 50.0;
/// The full rebuild may take at most this many times the bare COPY of the fixes it reads.
const COPY_BAR: f64 = 1.6;
/// Exactly the rows and columns the full rebuild reads (every device is marked).
const BARE_COPY_SQL: &str = "copy (select device_id, gps_time, lat, lon, speed_kmh, ignition
    from fleet.positions where fix_kind <> 'lbs') to '/dev/null' (format binary)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // RUST_LOG=fleet_analytics=debug shows where each chunk's time goes
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    anyhow::ensure!(
        args.fixes >= 200 && args.fixes % 100 == 0,
        "--fixes must be a multiple of 100"
    );
    let work = tempfile::Builder::new().prefix("fleetd-trips-bench").tempdir()?;
    let (url, embedded) = match &args.server_url {
        Some(server) => (database_on(server).await?, None),
        None => {
            std::fs::set_permissions(
                work.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )?;
            let pg = EmbeddedPostgres::start(StartOptions {
                data_dir: work.path().join("data"),
                bindir: None,
            })
            .await
            .context("starting a private PostgreSQL")?;
            let url = pg.url("postgres").expose().clone();
            fleet_db::ensure_database(&url, "fleetd_trips_bench").await?;
            (pg.url("fleetd_trips_bench").expose().clone(), Some(pg))
        }
    };
    let result = run(&args, &url).await;
    if let Some(pg) = embedded {
        pg.stop().await?;
    }
    let passed = result?;
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

async fn database_on(server: &str) -> anyhow::Result<String> {
    let admin = sqlx::PgPool::connect(server).await?;
    sqlx::query("drop database if exists fleetd_trips_bench with (force)").execute(&admin).await?;
    sqlx::query("create database fleetd_trips_bench").execute(&admin).await?;
    admin.close().await;
    let mut url = url::Url::parse(server)?;
    url.set_path("/fleetd_trips_bench");
    Ok(url.to_string())
}

fn say(msg: impl AsRef<str>) {
    eprintln!("[trips-bench] {}", msg.as_ref());
}

async fn timed<T>(
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let out = f.await?;
    Ok((out, started.elapsed()))
}

async fn run(args: &Args, url: &str) -> anyhow::Result<bool> {
    let config = DbConfig {
        max_connections: 10,
        statement_timeout: None,
        acquire_timeout: Duration::from_secs(60),
        application_name: "fleetd-trips-bench".to_owned(),
    };
    let pool = fleet_db::connect(url, &config).await?;
    fleet_db::migrate::run(&pool).await?;
    sqlx::query("select fleet.create_positions_partition('2026-03-01')").execute(&pool).await?;

    let cycles = args.fixes / 100;
    say(format!("generating {} vehicles × {} fixes", args.vehicles, args.fixes));
    let (_, took) = timed(async {
        sqlx::query(
            "insert into fleet.devices (imei, name)
             select (861234500000000 + g)::text, 'bench ' || g from generate_series(1, $1) g",
        )
        .bind(i64::from(args.vehicles))
        .execute(&pool)
        .await?;
        sqlx::query(&generate_sql(args.vehicles, 0, cycles, START)).execute(&pool).await?;
        sqlx::query("delete from fleet.analytics_backlog").execute(&pool).await?;
        sqlx::query("vacuum analyze fleet.positions").execute(&pool).await?;
        anyhow::Ok(())
    })
    .await?;
    let rows: i64 =
        sqlx::query_scalar("select count(*) from fleet.positions").fetch_one(&pool).await?;
    say(format!("{rows} positions in {:.1} s", took.as_secs_f64()));

    sqlx::query(BASELINE_VIEW_SQL).execute(&pool).await?;
    let mut baseline = Duration::MAX;
    for i in 0..args.repeat.max(1) {
        let (_, took) = timed(async {
            sqlx::query("refresh materialized view bench_trips_mv").execute(&pool).await?;
            anyhow::Ok(())
        })
        .await?;
        say(format!("baseline refresh {}: {:.2} s", i + 1, took.as_secs_f64()));
        baseline = baseline.min(took);
    }
    let mv_trips: i64 =
        sqlx::query_scalar("select count(*) from bench_trips_mv").fetch_one(&pool).await?;

    let bare_copy = || {
        let pool = pool.clone();
        async move {
            let (_, took) = timed(async {
                sqlx::query(BARE_COPY_SQL).execute(&pool).await?;
                anyhow::Ok(())
            })
            .await?;
            say(format!("bare binary COPY of the fixes read: {:.2} s", took.as_secs_f64()));
            anyhow::Ok(took)
        }
    };
    let copy_before = bare_copy().await?;
    let mut worker = TripWorker::new(pool.clone(), TripWorkerConfig::default());
    mark_rebuild(&pool, None, None).await?;
    let (full_report, full) = timed(async { Ok(worker.pass(|_| {}).await?) }).await?;
    say(format!("full rebuild: {:.2} s ({full_report:?})", full.as_secs_f64()));
    let copy = copy_before.min(bare_copy().await?);
    let trips: i64 =
        sqlx::query_scalar("select count(*) from fleet.trips").fetch_one(&pool).await?;
    let kpi = |label: &'static str| {
        let pool = pool.clone();
        async move {
            let (r, took) = timed(async { Ok(refresh_kpis(&pool, 200, |_| {}).await?) }).await?;
            say(format!("daily KPI step after the {label}: {:.2} s ({r:?})", took.as_secs_f64()));
            anyhow::Ok(took)
        }
    };
    let full_kpi = kpi("full rebuild").await?;

    let incremental = |first_cycle: u32| {
        let pool = pool.clone();
        async move {
            let sql = generate_sql(args.vehicles, first_cycle, 1, START);
            sqlx::query(&sql).execute(&pool).await?;
            anyhow::Ok(())
        }
    };
    incremental(cycles).await?;
    let (warm_report, warm) = timed(async { Ok(worker.pass(|_| {}).await?) }).await?;
    say(format!("incremental pass, warm: {:.3} s ({warm_report:?})", warm.as_secs_f64()));
    // the same queued vehicle-days twice: incrementally (fix aggregates + new fixes), then
    // recounted from every fix of each day, as before the aggregates existed
    sqlx::query("create table bench_kpi_queue as select * from fleet.kpi_backlog")
        .execute(&pool)
        .await?;
    let warm_kpi = kpi("warm incremental pass").await?;
    sqlx::query(
        "insert into fleet.kpi_backlog (device_id, from_time, to_time, fixes_from)
         select device_id, from_time, to_time, '-infinity' from bench_kpi_queue",
    )
    .execute(&pool)
    .await?;
    let recount_kpi = kpi("warm incremental pass, recounting every fix").await?;
    incremental(cycles + 1).await?;
    let mut restarted = TripWorker::new(pool.clone(), TripWorkerConfig::default());
    let (cold_report, cold) = timed(async { Ok(restarted.pass(|_| {}).await?) }).await?;
    say(format!("incremental pass, cold: {:.3} s ({cold_report:?})", cold.as_secs_f64()));
    let kpi_rows: i64 =
        sqlx::query_scalar("select count(*) from fleet.kpi_daily").fetch_one(&pool).await?;

    let ratio = |d: Duration| baseline.as_secs_f64() / d.as_secs_f64();
    let verdict = |r: f64, bar: f64| if r >= bar { "PASS" } else { "FAIL" };
    println!(
        "positions: {rows} ({} vehicles × {} fixes), then +1 % twice",
        args.vehicles, args.fixes
    );
    println!(
        "baseline (refresh materialized view, best of {}): {:.2} s, {mv_trips} trips",
        args.repeat,
        baseline.as_secs_f64()
    );
    println!(
        "fleetd full rebuild: {:.2} s, {trips} trips, {kpi_rows} KPI rows after all passes",
        full.as_secs_f64()
    );
    println!("  ratio {:.1}x (bar {FULL_BAR}x) {}", ratio(full), verdict(ratio(full), FULL_BAR));
    let to_copy = full.as_secs_f64() / copy.as_secs_f64();
    println!(
        "  bare binary COPY of the same rows and columns (best of 2): {:.2} s; rebuild / COPY {:.2}x (bar ≤ {COPY_BAR}x) {}",
        copy.as_secs_f64(),
        to_copy,
        if to_copy <= COPY_BAR { "PASS" } else { "FAIL" }
    );
    println!(
        "  daily KPIs of every vehicle-day afterwards (not part of the baseline's work): {:.2} s",
        full_kpi.as_secs_f64()
    );
    println!(
        "fleetd incremental after 1 % (warm): {:.3} s, ratio {:.1}x (bar {INCREMENTAL_BAR}x) {}",
        warm.as_secs_f64(),
        ratio(warm),
        verdict(ratio(warm), INCREMENTAL_BAR)
    );
    println!(
        "  daily KPIs of the vehicle-days it touched (separate step, every 60 s): {:.3} s",
        warm_kpi.as_secs_f64()
    );
    println!(
        "  the same vehicle-days recounted from all their fixes: {:.3} s, {:.1}x the incremental step",
        recount_kpi.as_secs_f64(),
        recount_kpi.as_secs_f64() / warm_kpi.as_secs_f64()
    );
    println!(
        "fleetd incremental after 1 % (cold, after a restart): {:.3} s, ratio {:.1}x (bar {INCREMENTAL_BAR}x) {}",
        cold.as_secs_f64(),
        ratio(cold),
        verdict(ratio(cold), INCREMENTAL_BAR)
    );
    pool.close().await;
    Ok(ratio(full) >= FULL_BAR && ratio(warm) >= INCREMENTAL_BAR && to_copy <= COPY_BAR)
}
