//! `notify-load`: the notification benchmark's load. Registers a fleet through the push
//! receiver, gives it notification rules whose channel is a webhook this process receives, then
//! pushes alarms at a steady rate and measures, for every webhook delivery, the time from the
//! event's commit in fleetd to its arrival here.
//!
//! The event time used is `fleet.notify_events.created_at`: the start of the transaction that
//! stored the event, so each latency includes the rest of that transaction (the measure errs
//! long, never short). The result is one line of `key=value` pairs on stdout; progress goes to
//! stderr.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::http::HeaderMap;
use clap::Parser;
use fleet_bench::load::form_body;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sqlx::PgPool;

/// Push alarms at a steady rate and time their webhook notifications.
#[derive(Debug, Parser)]
#[command(name = "notify-load", version)]
struct Args {
    /// fleetd's push receiver base URL (`/pushgps` and `/pushalarm` are appended).
    #[arg(long)]
    url: String,
    /// The Data Push shared secret (fleetd's FLEETD_PUSH_TOKEN).
    #[arg(long, env = "FLEETD_PUSH_TOKEN", hide_env_values = true)]
    token: String,
    /// fleetd's database, to create the rules and read the events' commit times.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    #[arg(long, default_value_t = 10_000)]
    vehicles: usize,
    #[arg(long, default_value_t = 200)]
    rules: usize,
    /// Alarms pushed per minute, evenly spaced.
    #[arg(long, default_value_t = 1_000)]
    per_min: u32,
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds to wait after the last alarm for every message to be sent.
    #[arg(long, default_value_t = 120)]
    drain_s: u64,
}

/// The vendor alarm codes pushed, with the event kind each becomes: SOS, power cut, vibration,
/// overspeed.
const ALARMS: &[(&str, &str, &str)] = &[
    ("1", "SOS", "alarm.safety"),
    ("2", "Power cut", "alarm.power"),
    ("3", "Vibration", "alarm.security"),
    ("6", "Overspeed", "alarm.driving"),
];
const COST_CENTRES: usize = 50;

type Received = Arc<Mutex<HashMap<String, Vec<f64>>>>;

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn imei(i: usize) -> String {
    format!("86200{:010}", i)
}

fn vendor_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let pool = PgPool::connect(&args.database_url).await.context("connecting to the database")?;

    // the webhook receiver: every delivery id with the times it arrived
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: HeaderMap| async move {
                let at = now_s();
                if let Some(id) = headers.get("x-fleetd-delivery").and_then(|v| v.to_str().ok()) {
                    received.lock().expect("lock").entry(id.to_owned()).or_default().push(at);
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    register_fleet(&http, &base, &args, &pool).await?;
    seed_rules(&pool, &hook, args.rules).await?;

    // the alarms: one request each, evenly spaced, each on a vehicle and code drawn at random
    let total = (f64::from(args.per_min) * args.minutes).round() as u64;
    let every = Duration::from_secs_f64(60.0 / f64::from(args.per_min));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    eprintln!(
        "notify-load: sending {total} alarms at {}/min across {} vehicles with {} rules",
        args.per_min, args.vehicles, args.rules
    );
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticker.tick().await;
        let (code, name, _) = ALARMS[rng.gen_range(0..ALARMS.len())];
        let vehicle = rng.gen_range(0..args.vehicles);
        let item = json!({
            "type": "DEVICE", "msgClass": 0,
            "gateTime": vendor_time(chrono::Utc::now()),
            "msg": {
                "deviceImei": imei(vehicle), "alertType": code, "alarmName": name,
                "alarmTime": vendor_time(chrono::Utc::now()),
                "lat": -1.29 + rng.gen_range(-0.05..0.05), "lng": 36.82 + rng.gen_range(-0.05..0.05),
                "gpsSpeed": 40,
            }
        });
        let body = form_body(&args.token, &json!([item]).to_string());
        let (http, url) = (http.clone(), format!("{base}/pushalarm"));
        sends.spawn(async move {
            for _ in 0..5 {
                match http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => return true,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            false
        });
    }
    let mut failed = 0;
    while let Some(ok) = sends.join_next().await {
        if !matches!(ok, Ok(true)) {
            failed += 1;
        }
    }
    let sending_s = started.elapsed().as_secs_f64();
    if failed > 0 {
        bail!("{failed} alarm pushes were never acknowledged");
    }

    // every message sent (or given up on)?
    let deadline = Instant::now() + Duration::from_secs(args.drain_s);
    loop {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from fleet.notify_outbox where state in ('pending', 'sending')",
        )
        .fetch_one(&pool)
        .await?;
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let rows: Vec<(String, f64, String)> = sqlx::query_as(
        "select o.idempotency_key, extract(epoch from e.created_at)::float8, o.state
           from fleet.notify_outbox o join fleet.notify_events e using (event_id)
          where o.channel = 'webhook' and not o.is_test",
    )
    .fetch_all(&pool)
    .await?;
    let events: i64 =
        sqlx::query_scalar("select count(*) from fleet.notify_events").fetch_one(&pool).await?;
    let received = received.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = Vec::with_capacity(rows.len());
    let (mut missing, mut duplicates, mut not_sent) = (0usize, 0usize, 0usize);
    for (key, committed, state) in &rows {
        if state != "sent" {
            not_sent += 1;
        }
        match received.get(key) {
            Some(times) => {
                duplicates += times.len() - 1;
                latencies.push((times[0] - committed) * 1000.0);
            }
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[i.min(latencies.len() - 1)]
    };
    println!(
        "alarms={total} events={events} deliveries={} received={} missing={missing} duplicates={duplicates} not_sent={not_sent} sending_s={sending_s:.1} p50_ms={:.0} p90_ms={:.0} p99_ms={:.0} max_ms={:.0}",
        rows.len(),
        latencies.len(),
        pct(50.0),
        pct(90.0),
        pct(99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    Ok(())
}

/// One fix per vehicle through the push receiver (fleetd registers unknown IMEIs), then cost
/// centres and cities for the rules' scopes.
async fn register_fleet(
    http: &reqwest::Client,
    base: &str,
    args: &Args,
    pool: &PgPool,
) -> anyhow::Result<()> {
    eprintln!("notify-load: registering {} vehicles", args.vehicles);
    let at = vendor_time(chrono::Utc::now() - chrono::Duration::minutes(5));
    for chunk in (0..args.vehicles).collect::<Vec<_>>().chunks(50) {
        let items: Vec<_> = chunk
            .iter()
            .map(|i| {
                json!({"deviceImei": imei(*i), "gpsTime": at, "gateTime": at, "lat": -1.29,
                       "lng": 36.82, "gpsSpeed": 0, "direction": 0, "acc": 0, "postType": 1,
                       "satelliteNum": 9})
            })
            .collect();
        let body = form_body(&args.token, &json!(items).to_string());
        let r = http
            .post(format!("{base}/pushgps"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("registering vehicles: the push receiver answered {}", r.status());
        }
    }
    sqlx::query(
        "update fleet.devices set cost_centre = 'cc-' || (device_id % $1),
                city = (array['Nairobi','Mombasa','Kisumu','Kampala'])[1 + device_id % 4]
          where imei like '86200%'",
    )
    .bind(COST_CENTRES as i32)
    .execute(pool)
    .await?;
    Ok(())
}

/// `rules` rules, all telling the one webhook: one for every safety and power alarm of the
/// fleet, the rest each for one alarm kind in one cost centre, some active only at night, some
/// throttled — so an event matches about two rules and routing has to look at all of them.
async fn seed_rules(pool: &PgPool, hook: &str, rules: usize) -> anyhow::Result<()> {
    let secret = format!("{:032x}", rand::random::<u128>());
    let webhook: i32 = sqlx::query_scalar(
        "insert into fleet.notify_webhooks (name, url, secret) values ('benchmark', $1, $2)
         returning webhook_id",
    )
    .bind(hook)
    .bind(&secret)
    .fetch_one(pool)
    .await?;
    for i in 0..rules {
        let (kinds, scope, schedule, throttle) = if i == 0 {
            (vec!["alarm.safety", "alarm.power"], json!({}), None, 0)
        } else {
            let kind = ALARMS[i % ALARMS.len()].2;
            let cc = format!("cc-{}", i % COST_CENTRES);
            let night =
                json!({"days": [1, 2, 3, 4, 5, 6, 7], "from": "20:00:00", "to": "06:00:00"});
            (
                vec![kind],
                json!({"cost_centres": [cc]}),
                (i % 5 == 0).then_some(night),
                if i % 7 == 0 { 600 } else { 0 },
            )
        };
        sqlx::query(
            "insert into fleet.notify_rules (name, kinds, scope, schedule, throttle_s, channels,
                    webhook_ids, severity)
             values ($1, $2, $3, $4, $5, array['webhook'], array[$6], 'warning')",
        )
        .bind(format!("benchmark rule {i}"))
        .bind(&kinds)
        .bind(&scope)
        .bind(&schedule)
        .bind(throttle)
        .bind(webhook)
        .execute(pool)
        .await?;
    }
    eprintln!("notify-load: {rules} rules telling {hook}");
    Ok(())
}
