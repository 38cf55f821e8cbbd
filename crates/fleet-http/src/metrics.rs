//! `/metrics` in the Prometheus text format. Metrics are recorded through the `metrics` facade
//! (the ingest writer records its own without knowing about HTTP); this module installs the
//! process's Prometheus recorder, times every request by its route template, and samples the
//! database pool and the trip builder's lag at each scrape (the database at most once per
//! [`PROBE_TTL`](crate::health::PROBE_TTL), whatever the scrape rate). With
//! `FLEETD_METRICS_TOKEN` set, a scrape needs `Authorization: Bearer <token>`.
//!
//! Every label takes its values from a fixed set, so no client can grow the exposition: methods
//! outside the standard ones are `other`, routes are templates or `unmatched`, statuses outside
//! the registered codes are `other`, channels and stream events are named by fleetd's code, and
//! alert names are fleetd's own, at most [`MAX_ALERTS`] of them.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `fleetd_http_requests_total` | counter | method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, other), route (template), status |
//! | `fleetd_http_request_duration_seconds` | histogram | method, route |
//! | `fleetd_http_connections` | gauge | (open connections) |
//! | `fleetd_http_in_flight` | gauge | (requests whose response has not ended) |
//! | `fleetd_http_body_buffer_bytes` | gauge | (request body bytes held beyond each body's free allowance) |
//! | `fleetd_http_rejections_total` | counter | reason (see [`REJECTION_REASONS`](crate::server::REJECTION_REASONS)) |
//! | `fleetd_ingest_records_total` | counter | channel, outcome (received, new, duplicate, rejected) |
//! | `fleetd_writer_queue_depth` | gauge | |
//! | `fleetd_writer_flush_seconds` | histogram | result |
//! | `fleetd_writer_flush_rows` | histogram | |
//! | `fleetd_db_pool_connections` | gauge | state (size, idle, in_use) |
//! | `fleetd_trip_builder_lag_seconds` | gauge | (now − oldest mark in `fleet.analytics_backlog`; 0 when empty) |
//! | `fleetd_stream_clients` | gauge | |
//! | `fleetd_stream_events_total` | counter | event |
//! | `fleetd_stream_skipped_total` | counter | (changes skipped while no client was connected) |
//! | `fleetd_ops_alert_active` | gauge | alert (1 while raised, 0 once cleared; from `fleet.ops_alerts`) |
//! | `fleetd_login_refused_total` | counter | reason (malformed, delayed, wrong) |
//! | `fleetd_http_cross_site_refused_total` | counter | (unsafe API requests from another site) |
//! | `fleetd_exports_running` | gauge | |
//! | `fleetd_exports_refused_total` | counter | reason (per_user, total) |
//! | `fleetd_exports_aborted_total` | counter | reason (stalled: the client stopped reading) |
//! | `fleetd_stream_refused_total` | counter | reason (per_user, total) |
//! | `fleetd_stream_ended_total` | counter | reason (credential: its token, session or user ended) |
//! | `fleetd_stream_notifications_rejected_total` | counter | (change notifications without fleetd's signature) |
//! | `fleetd_analyst_watchdog_active` | gauge | (1 while the watchdog may cancel `fleet_ro` queries) |
//! | `fleetd_analyst_queries_cancelled_total` | counter | (`fleet_ro` queries past their time cancelled) |

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fleet_config::Secret;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{ApiError, AppState};

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

/// Most ops alerts the gauge shows; fleetd raises a handful, this only guards the exposition.
pub const MAX_ALERTS: usize = 64;

/// The `method` label: the standard methods by name, anything else `other` (a client may send
/// any token as a method, and each distinct label value is kept for good).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `status` label: a registered status code, or `other`.
pub fn status_label(status: StatusCode) -> String {
    if status.canonical_reason().is_some() {
        status.as_u16().to_string()
    } else {
        "other".to_owned()
    }
}

/// An alert name fit for a label: fleetd's own names are short and plain.
fn alert_label(alert: &str) -> bool {
    !alert.is_empty()
        && alert.len() <= 64
        && alert.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
}

/// Middleware: counts and times each routed request by its route template
/// (`/api/v1/devices/{id}`, never the raw URI).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = status_label(response.status());
    metrics::histogram!(
        "fleetd_http_request_duration_seconds",
        "method" => method,
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

/// `GET /metrics`: open unless a metrics token is configured, then only with it.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        if !bearer_matches(&headers, token) {
            return ApiError::Unauthenticated(
                "/metrics needs Authorization: Bearer with the metrics token".to_owned(),
            )
            .into_response();
        }
    }
    let size = state.pool.size();
    let idle = state.pool.num_idle() as u32;
    metrics::gauge!("fleetd_db_pool_connections", "state" => "size").set(f64::from(size));
    metrics::gauge!("fleetd_db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("fleetd_db_pool_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("fleetd_stream_clients").set(state.stream.clients() as f64);
    let pool = state.pool.clone();
    // the gauges keep what was sampled; the database is asked once per interval
    state.probes.metrics.get(|| sample_database(pool)).await;
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
fn bearer_matches(headers: &HeaderMap, token: &Secret<String>) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    token.matches(sent)
}

/// The gauges read from the database: the trip builder's lag and the ops alerts.
async fn sample_database(pool: sqlx::PgPool) {
    let lag = fleet_db::analytics::backlog_lag_s(&pool).await;
    match lag {
        Ok(s) => metrics::gauge!("fleetd_trip_builder_lag_seconds").set(s),
        Err(e) => tracing::warn!(error = %e, "trip builder lag not sampled"),
    }
    let alerts = fleet_db::ops_alerts::states(&pool, MAX_ALERTS as i64).await;
    match alerts {
        Ok(rows) => {
            for (alert, active) in rows.into_iter().filter(|(a, _)| alert_label(a)) {
                metrics::gauge!("fleetd_ops_alert_active", "alert" => alert).set(if active {
                    1.0
                } else {
                    0.0
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "ops alerts not sampled"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        let odd = Method::from_bytes(b"XYZZY").expect("a method token");
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(status_label(StatusCode::NOT_FOUND), "404");
        assert_eq!(status_label(StatusCode::from_u16(599).expect("code")), "other");
        assert!(alert_label("ingest_failing:poll.live"));
        assert!(!alert_label("a b") && !alert_label(&"x".repeat(65)));
    }

    #[test]
    fn the_metrics_token_is_compared_whole() {
        let mut h = HeaderMap::new();
        let token = Secret::new("secret-token".to_owned());
        assert!(!bearer_matches(&h, &token));
        h.insert(header::AUTHORIZATION, "Bearer secret-toke".parse().expect("value"));
        assert!(!bearer_matches(&h, &token));
        h.insert(header::AUTHORIZATION, "Bearer secret-token".parse().expect("value"));
        assert!(bearer_matches(&h, &token));
    }
}
