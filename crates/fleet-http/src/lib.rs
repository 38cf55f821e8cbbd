//! fleetd's HTTP server: `/healthz`, `/readyz` and the JSON API under `/api/v1` with its
//! authentication and OpenAPI document. The server takes its listener and its shutdown signal
//! as arguments, so tests bind port 0 and stop it deterministically.

pub mod api;
pub mod auth;
pub mod error;
mod health;
pub mod metrics;
mod quota;
pub mod server;
pub mod stream;
pub mod trace;

use std::future::Future;
use std::sync::Arc;

use axum::http::HeaderValue;
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use api::export_limit::ExportLimits;
pub use api::openapi;
pub use error::{ApiError, FieldError, Problem};
pub use fleet_accounts::throttle::{Backoff, LoginLimits};
pub use health::{ProbeCache, Readiness, PROBE_TTL, READINESS_TIMEOUT};
pub use stream::access::StreamLimits;
pub use trace::RequestId;

/// What request handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub(crate) login_limiter: Arc<fleet_accounts::throttle::LoginLimiter>,
    /// Origins allowed to call the API from a browser (CORS); empty: no CORS headers at all.
    pub(crate) cors_origins: Arc<[HeaderValue]>,
    /// The live stream's events (fed by [`stream::spawn_listener`]).
    pub stream: Arc<stream::StreamHub>,
    /// Reverse proxies whose `X-Forwarded-For` is believed; empty: the TCP peer is the client.
    pub(crate) trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The database-derived results of `/readyz` and `/metrics`, reused for a short while.
    pub(crate) probes: Arc<Probes>,
    /// When set, `/metrics` needs `Authorization: Bearer` with this token.
    pub(crate) metrics_token: Option<fleet_config::Secret<String>>,
    /// The running exports and their limits.
    pub(crate) exports: Arc<api::export_limit::Exports>,
    /// `/fleet/live` snapshots shared by the requests waiting for them.
    pub(crate) live: Arc<api::live_snapshots::LiveSnapshots>,
}

/// The probe results cached per server.
#[derive(Debug)]
pub(crate) struct Probes {
    pub(crate) readiness: ProbeCache<Readiness>,
    pub(crate) metrics: ProbeCache<()>,
}

impl Probes {
    fn new(ttl: std::time::Duration) -> Arc<Self> {
        Arc::new(Self { readiness: ProbeCache::new(ttl), metrics: ProbeCache::new(ttl) })
    }
}

impl AppState {
    /// State with the default login limits and CORS off.
    pub fn new(pool: PgPool) -> Self {
        // the recorder first, so the writer's metrics are kept from the start
        let _ = metrics::handle();
        Self {
            stream: Arc::new(stream::StreamHub::new(stream::RING_CAPACITY)),
            pool,
            login_limiter: Arc::new(fleet_accounts::throttle::LoginLimiter::new(
                LoginLimits::default(),
            )),
            cors_origins: Arc::new([]),
            trusted_proxies: Arc::new([]),
            probes: Probes::new(PROBE_TTL),
            metrics_token: None,
            exports: Arc::new(api::export_limit::Exports::new(Default::default())),
            live: Arc::default(),
        }
    }

    /// Requires `Authorization: Bearer <token>` on `/metrics` (`None`: open).
    pub fn with_metrics_token(mut self, token: Option<fleet_config::Secret<String>>) -> Self {
        self.metrics_token = token;
        self
    }

    /// Reuses `/readyz` and the sampled `/metrics` gauges for `ttl` (default [`PROBE_TTL`]).
    pub fn with_probe_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.probes = Probes::new(ttl);
        self
    }

    /// How many times `/readyz` has asked the database (and how many times `/metrics` has).
    pub fn probe_refreshes(&self) -> (u64, u64) {
        (self.probes.readiness.refreshes(), self.probes.metrics.refreshes())
    }

    /// How many times `/fleet/live` has read the live view from the database.
    pub fn live_reads(&self) -> u64 {
        self.live.reads()
    }

    /// How many `/fleet/live` requests wait for a read another request is making.
    pub fn live_waiting(&self) -> usize {
        self.live.waiting()
    }

    /// Replaces the limits on concurrent exports and stalled export clients.
    pub fn with_export_limits(mut self, limits: api::export_limit::ExportLimits) -> Self {
        self.exports = Arc::new(api::export_limit::Exports::new(limits));
        self
    }

    /// Replaces the limits on live streams (a new, empty hub: call before the listener starts).
    pub fn with_stream_limits(mut self, limits: stream::access::StreamLimits) -> Self {
        self.stream = Arc::new(stream::StreamHub::with_limits(stream::RING_CAPACITY, limits));
        self
    }

    /// Allows these origins (`https://ops.example.com`) to call the API from a browser, with
    /// credentials. Values that cannot be header values are skipped with a warning (the
    /// configuration validates them first).
    pub fn with_cors_origins<I: IntoIterator<Item = String>>(mut self, origins: I) -> Self {
        self.cors_origins = origins
            .into_iter()
            .filter_map(|o| match HeaderValue::from_str(&o) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(
                        cors.origin = %o,
                        "ignoring a CORS origin that is not a valid header value"
                    );
                    None
                }
            })
            .collect();
        self
    }

    /// Believes `X-Forwarded-For` from peers in these networks (the reverse proxies in front
    /// of fleetd).
    pub fn with_trusted_proxies<I: IntoIterator<Item = ipnet::IpNet>>(mut self, nets: I) -> Self {
        self.trusted_proxies = nets.into_iter().collect();
        self
    }

    /// Replaces the failed-login limits (tests use small windows).
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Self {
        self.login_limiter = Arc::new(fleet_accounts::throttle::LoginLimiter::new(limits));
        self
    }
}

/// Every route fleet-http serves: health, readiness, metrics and `/api/v1`; each routed
/// request is counted and timed by its route template, which its `request` span records.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .nest("/api/v1", api::router(&state))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .route_layer(axum::middleware::from_fn(trace::record_route))
        .with_state(state)
}

/// Counts and times the routes of another router (the push receivers) like fleet-http's own,
/// and records their route templates on the request spans.
pub fn with_http_metrics(router: Router) -> Router {
    router
        .route_layer(axum::middleware::from_fn(metrics::track))
        .route_layer(axum::middleware::from_fn(trace::record_route))
}

/// Serves `router` on `listener` with the default [`server::Limits`] until `shutdown`
/// resolves, then lets in-flight requests finish. Handlers see the peer address (login rate
/// limits are per client address).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router, server::Limits::default(), shutdown).await
}
