//! The soak's other clients of fleetd: live-map viewers holding the Server-Sent Events stream
//! open, a light API load (live map, trips, KPIs) and the webhook receiver the notification
//! rules tell. Each counts what it saw per sampling interval.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio_util::sync::CancellationToken;

/// Counters the clients share with the sampler.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Events received on the live streams (`data:` lines).
    pub sse_events: AtomicU64,
    /// Live streams (re)opened and refused or broken.
    pub sse_connects: AtomicU64,
    pub sse_failures: AtomicU64,
    pub api_errors: AtomicU64,
    /// API latencies since the last sample, ms.
    pub api_latencies_ms: Mutex<Vec<f64>>,
    pub webhooks: AtomicU64,
    /// Webhook deliveries received more than once (same `x-fleetd-delivery`).
    pub webhook_repeats: AtomicU64,
    seen_deliveries: Mutex<HashSet<String>>,
}

/// One live-map viewer: keeps `/api/v1/stream` open, counting events, and reopens it a second
/// after it is refused or breaks.
pub async fn sse_client(
    http: reqwest::Client,
    url: String,
    token: String,
    stats: Arc<ClientStats>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        stats.sse_connects.fetch_add(1, Ordering::Relaxed);
        let response = tokio::select! {
            _ = stop.cancelled() => return,
            r = http.get(&url).bearer_auth(&token).header("accept", "text/event-stream").send() => r,
        };
        match response {
            Ok(mut r) if r.status().is_success() => {
                let mut partial = String::new();
                loop {
                    let chunk = tokio::select! {
                        _ = stop.cancelled() => return,
                        c = r.chunk() => c,
                    };
                    match chunk {
                        Ok(Some(bytes)) => {
                            partial.push_str(&String::from_utf8_lossy(&bytes));
                            let complete = partial.rfind('\n').map_or(0, |i| i + 1);
                            let events =
                                partial[..complete].lines().filter(|l| l.starts_with("data:"));
                            stats.sse_events.fetch_add(events.count() as u64, Ordering::Relaxed);
                            partial.drain(..complete);
                        }
                        _ => break,
                    }
                }
                stats.sse_failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.sse_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The `k`-th path of the API load: a dashboard's mix — the whole live map one request in
/// six, today's trips and daily KPIs two each, one vehicle's day one.
pub fn api_path(vehicles: usize, k: usize) -> String {
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    match k % 6 {
        0 => "/api/v1/fleet/live".to_owned(),
        1 | 4 => format!("/api/v1/trips?from={today}T00:00:00Z&to={tomorrow}T00:00:00Z&limit=100"),
        2 | 5 => format!("/api/v1/kpis/daily?from={today}&to={today}&limit=100"),
        _ => format!("/api/v1/devices/{}/day?date={today}", 1 + (k * 7919) % vehicles.max(1)),
    }
}

/// `per_s` GET requests a second, evenly spaced, each on its own task so a slow answer does
/// not slow the rate.
pub async fn api_load(
    http: reqwest::Client,
    base: String,
    token: String,
    per_s: f64,
    vehicles: usize,
    stats: Arc<ClientStats>,
    stop: CancellationToken,
) {
    if per_s <= 0.0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0.. {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let url = format!("{base}{}", api_path(vehicles, k));
        let (http, token, stats) = (http.clone(), token.clone(), stats.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let ok = match http.get(&url).bearer_auth(&token).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            if ok {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                if let Ok(mut l) = stats.api_latencies_ms.lock() {
                    l.push(ms);
                }
            } else {
                stats.api_errors.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Starts the webhook receiver on a free loopback port; returns its URL.
pub async fn webhook_receiver(stats: Arc<ClientStats>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| async move {
            stats.webhooks.fetch_add(1, Ordering::Relaxed);
            if let Some(id) = headers.get("x-fleetd-delivery").and_then(|v| v.to_str().ok()) {
                let fresh = stats.seen_deliveries.lock().map(|mut s| s.insert(id.to_owned()));
                if matches!(fresh, Ok(false)) {
                    stats.webhook_repeats.fetch_add(1, Ordering::Relaxed);
                }
            }
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
