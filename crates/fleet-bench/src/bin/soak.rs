//! `soak`: a live fleet against a running fleetd. The simulator pushes `--vehicles` vehicles in
//! real time (their day replayed from `--local-start`, fleet time) while live-map viewers hold
//! the event stream open, a light API load runs and notification rules tell a webhook this
//! process receives. Every `--interval-s` it samples push acknowledgement latency, the lags of
//! trips and daily KPIs, CPU of fleetd, PostgreSQL and itself, fleetd's memory and the
//! database's size; at the end it writes the series as CSV and a PNG chart, prints a summary
//! with each bar PASS or FAIL and exits 1 when one failed. bench/soak.sh runs it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use fleet_bench::soak::clients::{self, ClientStats};
use fleet_bench::soak::series::{self, Sample};
use fleet_bench::soak::tracker::{percentile, Tracker};
use fleet_bench::soak::{chart, now_s, procstat, setup};
use fleet_config::Secret;
use fleet_sim::model::plan::LOCAL_OFFSET_S;
use fleet_sim::push::{self, PushConfig, PushStats};
use fleet_sim::{Fleet, SimClock};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Drive a live fleet against fleetd and sample how it copes.
#[derive(Debug, Parser)]
#[command(name = "soak", version)]
struct Args {
    /// fleetd's base URL (loopback), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// The Data Push shared secret (fleetd's FLEETD_PUSH_TOKEN).
    #[arg(long, env = "FLEETD_PUSH_TOKEN", hide_env_values = true)]
    token: String,
    /// fleetd's database (setup and lag queries).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// API bearer tokens, comma-separated, used in turn by the viewers and the API load (fleetd
    /// allows 20 live streams per user).
    #[arg(long, env = "SOAK_API_TOKENS", hide_env_values = true, value_delimiter = ',')]
    api_tokens: Vec<String>,
    #[arg(long, default_value_t = 10_000)]
    vehicles: usize,
    /// Minutes of fleet time pushed; the late items of the end are delivered after it.
    #[arg(long, default_value_t = 20.0)]
    minutes: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fleet local time (East Africa, HH:MM) the replayed day starts at, so a run at night
    /// still carries a working day's load; `now` pushes the fleet's present unshifted.
    #[arg(long, default_value = "08:00")]
    local_start: String,
    /// Minutes of fleet time before the span pushed first (fast), so vehicles have a history.
    #[arg(long, default_value_t = 60.0)]
    warmup_min: f64,
    #[arg(long, default_value_t = 50)]
    sse_clients: usize,
    /// API GET requests per second.
    #[arg(long, default_value_t = 3.0)]
    api_rps: f64,
    #[arg(long, default_value_t = 20)]
    rules: usize,
    /// Push requests in flight at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// fleetd's process id (CPU, memory).
    #[arg(long)]
    fleetd_pid: u32,
    /// The PostgreSQL postmaster's process id (CPU of the server and its backends).
    #[arg(long)]
    postmaster_pid: u32,
    #[arg(long, default_value_t = 10)]
    interval_s: u64,
    /// Longest wait after the span for its late items to be acknowledged.
    #[arg(long, default_value_t = 300)]
    drain_s: u64,
    /// Where to write the series (CSV) and the chart (PNG).
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    chart: PathBuf,
}

/// The bars of docs/BENCHMARKS.md (Soak).
const TRIP_LAG_BAR_S: f64 = 30.0;
const KPI_LAG_BAR_S: f64 = 120.0;
const CPU_BAR_CORES: f64 = 1.0;
const RSS_BAR_MB: f64 = 300.0;

/// Readings that are differenced between samples.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    fleetd_cpu_s: f64,
    postgres_cpu_s: f64,
    driver_cpu_s: f64,
    sse_events: u64,
    webhooks: u64,
}

fn read_counters(args: &Args, clients: &ClientStats) -> anyhow::Result<Counters> {
    Ok(Counters {
        at: Instant::now(),
        fleetd_cpu_s: procstat::process_cpu_s(args.fleetd_pid).context("fleetd is gone")?,
        postgres_cpu_s: procstat::tree_cpu_s(args.postmaster_pid)
            .context("the postmaster is gone")?,
        driver_cpu_s: procstat::process_cpu_s(std::process::id()).unwrap_or(0.0),
        sse_events: clients.sse_events.load(Ordering::Relaxed),
        webhooks: clients.webhooks.load(Ordering::Relaxed),
    })
}

/// The replayed day's start (fleet time) and the shift that puts it at the wall clock's now.
fn replay_start(local_start: &str, now: i64) -> anyhow::Result<(i64, i64)> {
    if local_start == "now" {
        return Ok((now, 0));
    }
    let tod = chrono::NaiveTime::parse_from_str(local_start, "%H:%M")
        .with_context(|| format!("--local-start {local_start}: HH:MM or now"))?;
    let target = i64::from(chrono::Timelike::num_seconds_from_midnight(&tod));
    let back = (now + LOCAL_OFFSET_S - target).rem_euclid(86_400);
    Ok((now - back, back))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    if args.api_tokens.is_empty() {
        bail!("--api-tokens: at least one token");
    }
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await
        .context("connecting to the database")?;
    let clients = Arc::new(ClientStats::default());

    // the operator's setup
    let fleet = Arc::new(Fleet::new(args.seed, args.vehicles));
    setup::register_vehicles(&pool, &fleet).await?;
    let fences = setup::create_geofences(&pool).await?;
    let hook = clients::webhook_receiver(clients.clone()).await?;
    setup::create_rules(&pool, &hook, args.rules, &fences).await?;
    let devices: HashMap<u64, i32> =
        sqlx::query_as::<_, (String, i32)>("select imei, device_id from fleet.devices")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .filter_map(|(imei, id)| Some((imei.parse().ok()?, id)))
            .collect();
    let by_device: HashMap<i32, u64> = devices.iter().map(|(&imei, &id)| (id, imei)).collect();
    let tz_offset_s: f64 = sqlx::query_scalar(
        "select extract(epoch from (now() at time zone coalesce(timezone, 'UTC'))
                                   - (now() at time zone 'UTC'))::float8
           from fleet.analytics_config where scope = 'global'",
    )
    .fetch_optional(&pool)
    .await?
    .unwrap_or(0.0);

    // the simulated vendor
    let (start, _) = replay_start(&args.local_start, chrono::Utc::now().timestamp())?;
    let end = start + (args.minutes * 60.0).round() as i64;
    let positions_before = warm_up(&args, &base, &fleet, &pool, start).await?;

    // the measured span: the fleet's day from `start` on, its times shifted to the wall clock
    let shift = chrono::Utc::now().timestamp() - start;
    let tracker = Arc::new(Tracker::default());
    let mut config = push_config(&args, &base, shift, start, end);
    config.observer = Some(tracker.clone());
    let stats = Arc::new(PushStats::default());
    let stop = CancellationToken::new();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    // the live streams stay open: no overall timeout, only one for connecting
    let streams = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;

    let mut before = read_counters(&args, &clients)?;
    let db_start_mb = db_mb(&pool).await?;
    eprintln!(
        "soak: {} vehicles for {} min from {} fleet time (shifted {shift} s), {} rules, {} viewers, {} API req/s",
        args.vehicles, args.minutes, args.local_start, args.rules, args.sse_clients, args.api_rps
    );
    let clock = SimClock::starting_at(start, 1.0);
    let started = Instant::now();
    let pusher = tokio::spawn(push::run(fleet.clone(), clock, config, stats.clone(), stop.clone()));
    let stream_url = format!("{base}/api/v1/stream");
    for i in 0..args.sse_clients {
        let token = args.api_tokens[i % args.api_tokens.len()].clone();
        tokio::spawn(clients::sse_client(
            streams.clone(),
            stream_url.clone(),
            token,
            clients.clone(),
            stop.clone(),
        ));
    }
    tokio::spawn(clients::api_load(
        http.clone(),
        base.clone(),
        args.api_tokens[0].clone(),
        args.api_rps,
        args.vehicles,
        clients.clone(),
        stop.clone(),
    ));

    let mut samples: Vec<Sample> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(args.interval_s.max(1)));
    ticker.tick().await;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        ticker.tick().await;
        let loading = clock.now() < end;
        let done = !loading && stats.delivered_through(end);
        let interval = tracker.take_interval();
        let now = now_s();

        // trip builder: a vehicle's fixes are reflected once its latest trip or stop reaches them
        let waiting = ids(&tracker.trip_waiting_imeis(), &devices);
        let ends: HashMap<u64, f64> = sqlx::query_as::<_, (i32, Option<f64>)>(
            "select d, extract(epoch from greatest(
                        (select max(end_time) from fleet.trips t where t.device_id = d),
                        (select max(end_time) from fleet.stops s where s.device_id = d)))::float8
               from unnest($1::int[]) d",
        )
        .bind(&waiting)
        .fetch_all(&pool)
        .await?
        .into_iter()
        .filter_map(|(d, e)| Some((*by_device.get(&d)?, e?)))
        .collect();
        let trip_waits =
            tracker.settle_trips(|imei, t| ends.get(&imei).is_some_and(|&e| e >= t as f64), now);

        // KPI step: once the fix's local day's last_fix_time reaches it
        let waiting = ids(&tracker.kpi_waiting_imeis(), &devices);
        let kpis: HashMap<(u64, i64), f64> = sqlx::query_as::<_, (i32, i32, f64)>(
            "select device_id, local_date - date '1970-01-01',
                    extract(epoch from last_fix_time)::float8
               from fleet.kpi_daily
              where device_id = any($1) and last_fix_time is not null
                and local_date >= current_date - 2",
        )
        .bind(&waiting)
        .fetch_all(&pool)
        .await?
        .into_iter()
        .filter_map(|(d, day, last)| Some(((*by_device.get(&d)?, i64::from(day)), last)))
        .collect();
        let kpi_waits = tracker.settle_kpis(
            |imei, t| {
                let day = ((t as f64 + tz_offset_s) / 86_400.0).floor() as i64;
                kpis.get(&(imei, day)).is_some_and(|&last| last >= t as f64)
            },
            now,
        );

        let after = read_counters(&args, &clients)?;
        let dt = (after.at - before.at).as_secs_f64().max(1e-3);
        let api = clients.api_latencies_ms.lock().map(|mut l| std::mem::take(&mut *l));
        let api = api.unwrap_or_default();
        let sample = Sample {
            t_s: started.elapsed().as_secs_f64(),
            loading,
            push_requests: interval.requests,
            push_items: interval.items,
            ack_p50_ms: percentile(&interval.latencies_ms, 50.0),
            ack_p95_ms: percentile(&interval.latencies_ms, 95.0),
            ack_p99_ms: percentile(&interval.latencies_ms, 99.0),
            trip_lag_p95_s: percentile(&trip_waits, 95.0),
            trip_lag_max_s: percentile(&trip_waits, 100.0),
            trip_waiting: trip_waits.len(),
            kpi_lag_p95_s: percentile(&kpi_waits, 95.0),
            kpi_lag_max_s: percentile(&kpi_waits, 100.0),
            kpi_waiting: kpi_waits.len(),
            fleetd_cpu: (after.fleetd_cpu_s - before.fleetd_cpu_s) / dt,
            postgres_cpu: (after.postgres_cpu_s - before.postgres_cpu_s) / dt,
            driver_cpu: (after.driver_cpu_s - before.driver_cpu_s) / dt,
            fleetd_rss_mb: procstat::rss_bytes(args.fleetd_pid).unwrap_or(0) as f64 / 1048576.0,
            db_mb: db_mb(&pool).await?,
            sse_events: after.sse_events - before.sse_events,
            api_requests: api.len(),
            api_p95_ms: percentile(&api, 95.0),
            webhooks: after.webhooks - before.webhooks,
        };
        before = after;
        // a progress line a minute
        if matches!(samples.len() % 6, 0) || done {
            eprintln!(
                "soak: {:>5.0} s {} ack p99 {:.0} ms, trip lag p95 {:.0} s ({} waiting), KPI lag p95 {:.0} s ({} waiting), cpu fleetd {:.2} pg {:.2} driver {:.2}, rss {:.0} MB, db {:.0} MB",
                sample.t_s,
                if loading { "load " } else { "drain" },
                sample.ack_p99_ms,
                sample.trip_lag_p95_s,
                sample.trip_waiting,
                sample.kpi_lag_p95_s,
                sample.kpi_waiting,
                sample.fleetd_cpu,
                sample.postgres_cpu,
                sample.driver_cpu,
                sample.fleetd_rss_mb,
                sample.db_mb,
            );
        }
        samples.push(sample);
        if done {
            break;
        }
        if !loading {
            let deadline = *drain_deadline
                .get_or_insert_with(|| Instant::now() + Duration::from_secs(args.drain_s));
            if Instant::now() > deadline {
                eprintln!("soak: late items still unacknowledged after {} s", args.drain_s);
                break;
            }
        }
    }
    stop.cancel();
    pusher.await.ok();
    let delivered = stats.delivered_through(end);

    series::write_csv(&args.csv, &samples)
        .with_context(|| format!("writing {}", args.csv.display()))?;
    let title = format!(
        "fleetd soak: {} vehicles, {} min from {} fleet time",
        args.vehicles, args.minutes, args.local_start
    );
    let labelled = chart::draw(&args.chart, &title, &samples)?;

    let run = Run { db_start_mb, positions_before, delivered };
    let ok = summarise(&args, &pool, &tracker, &stats, &clients, &samples, run).await?;
    eprintln!(
        "soak: series {}, chart {}{}",
        args.csv.display(),
        args.chart.display(),
        if labelled { "" } else { " (no font found: drawn without text)" }
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// How the simulated vendor pushes `[from, to]` of fleet time with `shift`.
fn push_config(args: &Args, base: &str, shift: i64, from: i64, to: i64) -> PushConfig {
    let mut config = PushConfig::new(format!("{base}/push"), Secret::new(args.token.clone()));
    config.tick = Duration::from_secs(1);
    config.in_flight = args.in_flight;
    config.lookahead_s = 60;
    config.time_shift_s = shift;
    config.start_at = Some(from);
    config.end_at = Some(to);
    config
}

/// Gives every vehicle a history before the measured span, as a live system has: the
/// `--warmup-min` minutes of fleet time before `start`, pushed 60 times faster than real time
/// and shifted to end now, then waits until trips and daily KPIs have caught up with it.
/// (A vehicle's first fix alone makes no stop, so on an empty database a parked vehicle's
/// first fix would wait 20 minutes for its second.) Returns the rows of `fleet.positions`
/// afterwards.
async fn warm_up(
    args: &Args,
    base: &str,
    fleet: &Arc<Fleet>,
    pool: &PgPool,
    start: i64,
) -> anyhow::Result<i64> {
    let from = start - (args.warmup_min * 60.0).round() as i64;
    if from < start {
        let shift = chrono::Utc::now().timestamp() - start;
        let mut config = push_config(args, base, shift, from, start);
        config.lookahead_s = 900;
        let stats = Arc::new(PushStats::default());
        let stop = CancellationToken::new();
        let clock = SimClock::starting_at(from, 60.0);
        let began = Instant::now();
        eprintln!("soak: warm-up: {} min of fleet time before the span", args.warmup_min);
        let pusher =
            tokio::spawn(push::run(fleet.clone(), clock, config, stats.clone(), stop.clone()));
        while !stats.delivered_through(start) {
            if began.elapsed() > Duration::from_secs(1800) {
                bail!("the warm-up was not acknowledged within 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stop.cancel();
        pusher.await.ok();
        loop {
            let (trips, kpis): (i64, i64) = sqlx::query_as(
                "select (select count(*) from fleet.analytics_backlog),
                        (select count(*) from fleet.kpi_backlog)",
            )
            .fetch_one(pool)
            .await?;
            if trips == 0 && kpis == 0 {
                break;
            }
            if began.elapsed() > Duration::from_secs(2400) {
                bail!("trips and KPIs did not catch up with the warm-up ({trips} and {kpis} devices behind)");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!(
            "soak: warm-up: {} items acknowledged, trips and KPIs current after {:.0} s",
            stats.items_acked.load(Ordering::Relaxed),
            began.elapsed().as_secs_f64()
        );
    }
    Ok(sqlx::query_scalar("select count(*) from fleet.positions").fetch_one(pool).await?)
}

fn ids(imeis: &[u64], devices: &HashMap<u64, i32>) -> Vec<i32> {
    imeis.iter().filter_map(|i| devices.get(i).copied()).collect()
}

async fn db_mb(pool: &PgPool) -> anyhow::Result<f64> {
    let bytes: i64 =
        sqlx::query_scalar("select pg_database_size(current_database())").fetch_one(pool).await?;
    Ok(bytes as f64 / 1048576.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Facts of the run the summary needs besides the samples.
#[derive(Debug, Clone, Copy)]
struct Run {
    db_start_mb: f64,
    /// Rows of `fleet.positions` before the measured span (the warm-up's).
    positions_before: i64,
    /// Every item of the span acknowledged.
    delivered: bool,
}

/// Prints the summary and the bars; whether every bar passed.
async fn summarise(
    args: &Args,
    pool: &PgPool,
    tracker: &Tracker,
    stats: &PushStats,
    clients: &ClientStats,
    samples: &[Sample],
    run: Run,
) -> anyhow::Result<bool> {
    let Run { db_start_mb, positions_before, delivered } = run;
    let load: Vec<&Sample> = samples.iter().filter(|s| s.loading).collect();
    let col = |f: fn(&Sample) -> f64| load.iter().map(|s| f(s)).collect::<Vec<f64>>();
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let load_s = load.last().map_or(0.0, |s| s.t_s);
    let all_s = samples.last().map_or(0.0, |s| s.t_s).max(1.0);

    let acks = tracker.all_latencies_ms();
    let (fixes, repeated) = tracker.fixes();
    let positions: i64 = sqlx::query_scalar::<_, i64>("select count(*) from fleet.positions")
        .fetch_one(pool)
        .await?
        - positions_before;
    let rejects: i64 =
        sqlx::query_scalar("select count(*) from fleet.ingest_rejects").fetch_one(pool).await?;
    let (trips, stops): (i64, i64) = sqlx::query_as(
        "select (select count(*) from fleet.trips), (select count(*) from fleet.stops)",
    )
    .fetch_one(pool)
    .await?;
    let (events, sent, open, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from fleet.notify_events),
                count(*) filter (where state = 'sent'),
                count(*) filter (where state in ('pending', 'sending')),
                count(*) filter (where state not in ('sent', 'pending', 'sending'))
           from fleet.notify_outbox where not is_test",
    )
    .fetch_one(pool)
    .await?;

    let trip_p95 = col(|s| s.trip_lag_p95_s);
    let kpi_p95 = col(|s| s.kpi_lag_p95_s);
    let fleetd_cpu = mean(&col(|s| s.fleetd_cpu));
    let pg_cpu = mean(&col(|s| s.postgres_cpu));
    let driver_cpu = mean(&col(|s| s.driver_cpu));
    let rss_max = samples.iter().map(|s| s.fleetd_rss_mb).fold(0.0, f64::max);
    let db_end = samples.last().map_or(db_start_mb, |s| s.db_mb);
    let growth_per_h = (db_end - db_start_mb) / (all_s / 3600.0);

    let trip_ok = percentile(&trip_p95, 95.0) < TRIP_LAG_BAR_S;
    let kpi_ok = percentile(&kpi_p95, 95.0) < KPI_LAG_BAR_S;
    let cpu_ok = fleetd_cpu + pg_cpu < CPU_BAR_CORES;
    let rss_ok = rss_max < RSS_BAR_MB;
    let once_ok = delivered && fixes > 0 && fixes == positions as u64;
    let failed_pushes = stats.requests_failed.load(Ordering::Relaxed);

    println!(
        "\nfleetd soak  {}  {} vehicles, {:.0} min loaded + {:.0} s draining, fleet time from {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%MZ"),
        args.vehicles,
        load_s / 60.0,
        all_s - load_s,
        args.local_start,
    );
    println!(
        "  pushed         {fixes} unique fixes ({:.0}/s), {repeated} repeated by the vendor, {} items in all, {} requests failed and retried, {rejects} rejected by fleetd",
        fixes as f64 / load_s.max(1.0),
        stats.items_acked.load(Ordering::Relaxed),
        failed_pushes,
    );
    println!(
        "  acknowledge    p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} requests",
        percentile(&acks, 50.0),
        percentile(&acks, 95.0),
        percentile(&acks, 99.0),
        percentile(&acks, 100.0),
        acks.len()
    );
    println!(
        "  derived        {trips} trips, {stops} stops; {events} notification events, {sent} webhook messages sent ({open} open, {failed} failed), {} received, {} twice",
        clients.webhooks.load(Ordering::Relaxed),
        clients.webhook_repeats.load(Ordering::Relaxed),
    );
    println!(
        "  viewers        {} live streams: {} events, {} (re)connects, {} refused or broken; API {} requests, p95 {:.0} ms, {} errors",
        args.sse_clients,
        clients.sse_events.load(Ordering::Relaxed),
        clients.sse_connects.load(Ordering::Relaxed),
        clients.sse_failures.load(Ordering::Relaxed),
        samples.iter().map(|s| s.api_requests).sum::<usize>(),
        max(&col(|s| s.api_p95_ms)),
        clients.api_errors.load(Ordering::Relaxed),
    );
    println!("  database       {db_start_mb:.0} MB -> {db_end:.0} MB, {growth_per_h:.0} MB/hour");
    println!("  soak driver    {driver_cpu:.2} cores on average");
    println!(
        "  trip lag       p95 over samples {:.1} s, max sample p95 {:.1} s, worst vehicle {:.1} s (bar p95 < {TRIP_LAG_BAR_S} s): {}",
        percentile(&trip_p95, 95.0),
        max(&trip_p95),
        max(&col(|s| s.trip_lag_max_s)),
        verdict(trip_ok)
    );
    println!(
        "  KPI lag        p95 over samples {:.1} s, max sample p95 {:.1} s, worst vehicle {:.1} s (bar p95 < {KPI_LAG_BAR_S} s): {}",
        percentile(&kpi_p95, 95.0),
        max(&kpi_p95),
        max(&col(|s| s.kpi_lag_max_s)),
        verdict(kpi_ok)
    );
    println!(
        "  CPU            fleetd {fleetd_cpu:.2} + PostgreSQL {pg_cpu:.2} = {:.2} cores on average (bar < {CPU_BAR_CORES}): {}",
        fleetd_cpu + pg_cpu,
        verdict(cpu_ok)
    );
    println!(
        "  memory         fleetd RSS max {rss_max:.0} MB (bar < {RSS_BAR_MB} MB): {}",
        verdict(rss_ok)
    );
    println!(
        "  stored once    {fixes} unique acknowledged fixes, {positions} new rows in fleet.positions{}: {}",
        if delivered { "" } else { " (late items never acknowledged)" },
        verdict(once_ok)
    );
    Ok(trip_ok && kpi_ok && cpu_ok && rss_ok && once_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_starts_at_the_latest_past_instant_of_the_local_time_asked() {
        // 2026-01-05 01:00 UTC is 04:00 in East Africa: 07:30 was 20.5 hours before
        let now = 1_767_574_800;
        let (start, shift) = replay_start("07:30", now).expect("parsed");
        assert_eq!(shift, 20 * 3600 + 1800);
        assert_eq!(start, now - shift);
        assert_eq!(replay_start("now", now).expect("now"), (now, 0));
        assert_eq!(replay_start("04:00", now).expect("exact").1, 0);
        assert!(replay_start("7.30", now).is_err());
    }
}
