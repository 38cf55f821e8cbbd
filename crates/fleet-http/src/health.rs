//! `/healthz` (the process is up) and `/readyz` (it can do its job: database reachable and the
//! schema current). Load balancers and orchestrators poll these; neither needs auth, so
//! `/readyz` answers from a result at most [`PROBE_TTL`] old: however often anyone asks, the
//! database is asked at most once per interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::AppState;

/// Longest `/readyz` waits for the database before calling it unreachable.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(3);

/// Liveness: answers as long as the process serves HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// How long a database-derived probe result (`/readyz`, the sampled `/metrics` gauges) is
/// reused.
pub const PROBE_TTL: Duration = Duration::from_secs(2);

/// A value read from the database at most once per `ttl`; concurrent callers of an expired one
/// wait for a single refresh and share it.
#[derive(Debug)]
pub struct ProbeCache<T> {
    ttl: Duration,
    last: tokio::sync::Mutex<Option<(Instant, T)>>,
    refreshes: AtomicU64,
}

impl<T: Clone> ProbeCache<T> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, last: tokio::sync::Mutex::new(None), refreshes: AtomicU64::new(0) }
    }

    /// The cached value, or `refresh`'s while the cached one is older than the ttl.
    pub async fn get<F: std::future::Future<Output = T>>(&self, refresh: impl FnOnce() -> F) -> T {
        let mut last = self.last.lock().await;
        if let Some((at, value)) = last.as_ref() {
            if at.elapsed() < self.ttl {
                return value.clone();
            }
        }
        let value = refresh().await;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        *last = Some((Instant::now(), value.clone()));
        value
    }

    /// How many times the value has been read from the database.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }
}

/// The body of `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub status: &'static str,
    pub database: String,
    pub migrations: String,
    /// Active ops alerts (ingest failing, fleet data stale). They are shown, not counted
    /// against readiness: the API still serves what is stored.
    pub alerts: Vec<OpsAlert>,
}

/// An active ops alert, from `fleet.ops_alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct OpsAlert {
    pub alert: String,
    pub message: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// The active ops alerts; empty when they cannot be read (readiness reports the database).
async fn active_alerts(pool: &sqlx::PgPool) -> Vec<OpsAlert> {
    fleet_db::ops_alerts::active(pool)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|a| OpsAlert { alert: a.alert, message: a.message, since: a.raised_at })
                .collect()
        })
        .unwrap_or_default()
}

/// Readiness: 200 when the database answers and every migration is applied, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let pool = state.pool.clone();
    let readiness = state.probes.readiness.get(|| readiness(pool)).await;
    let code =
        if readiness.status == "ready" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(readiness))
}

/// Asks the database whether fleetd is ready.
async fn readiness(pool: sqlx::PgPool) -> Readiness {
    let status = tokio::time::timeout(READINESS_TIMEOUT, fleet_db::migrate::status(&pool)).await;
    let (database, migrations) = match status {
        Err(_) => ("unreachable: no answer within 3 s".to_owned(), "unknown".to_owned()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            ("unreachable".to_owned(), "unknown".to_owned())
        }
        Ok(Ok(m)) if m.is_current() => ("ok".to_owned(), "current".to_owned()),
        Ok(Ok(m)) => (
            "ok".to_owned(),
            format!(
                "not current: {} pending, {} changed, {} unknown to this fleetd",
                m.pending.len(),
                m.mismatched.len(),
                m.unknown.len()
            ),
        ),
    };
    let ready = database == "ok" && migrations == "current";
    let alerts = if database == "ok" { active_alerts(&pool).await } else { Vec::new() };
    Readiness { status: if ready { "ready" } else { "not ready" }, database, migrations, alerts }
}
