//! `/metrics` in the Prometheus text format. Metrics are recorded through the `metrics` facade
//! (the ingest writer records its own without knowing about HTTP); this module installs the
//! process's Prometheus recorder, times every request by its route template, and samples the
//! database pool and the trip builder's lag at each scrape.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `fleetd_http_requests_total` | counter | method, route (template), status |
//! | `fleetd_http_request_duration_seconds` | histogram | method, route |
//! | `fleetd_ingest_records_total` | counter | channel, outcome (received, new, duplicate, rejected) |
//! | `fleetd_writer_queue_depth` | gauge | |
//! | `fleetd_writer_flush_seconds` | histogram | result |
//! | `fleetd_writer_flush_rows` | histogram | |
//! | `fleetd_db_pool_connections` | gauge | state (size, idle, in_use) |
//! | `fleetd_trip_builder_lag_seconds` | gauge | (now − oldest mark in `fleet.analytics_backlog`; 0 when empty) |
//! | `fleetd_stream_clients` | gauge | |
//! | `fleetd_stream_events_total` | counter | event |
//! | `fleetd_ops_alert_active` | gauge | alert (1 while raised, 0 once cleared; from `fleet.ops_alerts`) |

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Media type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const ROWS_BUCKETS: [f64; 8] = [1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

/// The process's recorder, installed on first use. `None` if another recorder was installed
/// first (then /metrics shows only what is sampled at scrape time).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_rows".to_owned()), &ROWS_BUCKETS)
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    tracing::error!(error = %e, "metrics recorder not built");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware: counts and times each routed request by its route template
/// (`/api/v1/devices/{id}`, never the raw URI).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "fleetd_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "fleetd_http_requests_total",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .increment(1);
    response
}

/// `GET /metrics`: no authentication (bind the listener or filter at a proxy to restrict it).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let size = state.pool.size();
    let idle = state.pool.num_idle() as u32;
    metrics::gauge!("fleetd_db_pool_connections", "state" => "size").set(f64::from(size));
    metrics::gauge!("fleetd_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("fleetd_db_pool_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("fleetd_stream_clients").set(state.stream.clients() as f64);
    let lag: Result<f64, sqlx::Error> = sqlx::query_scalar(
        "select coalesce(extract(epoch from now() - min(marked_at)), 0)::float8
         from fleet.analytics_backlog",
    )
    .fetch_one(&state.pool)
    .await;
    match lag {
        Ok(s) => metrics::gauge!("fleetd_trip_builder_lag_seconds").set(s),
        Err(e) => tracing::warn!(error = %e, "trip builder lag not sampled"),
    }
    let alerts: Result<Vec<(String, bool)>, sqlx::Error> =
        sqlx::query_as("select alert, active from fleet.ops_alerts").fetch_all(&state.pool).await;
    match alerts {
        Ok(rows) => {
            for (alert, active) in rows {
                metrics::gauge!("fleetd_ops_alert_active", "alert" => alert).set(if active {
                    1.0
                } else {
                    0.0
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "ops alerts not sampled"),
    }
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}
