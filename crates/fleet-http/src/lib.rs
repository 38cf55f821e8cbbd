//! fleetd's HTTP server. The server takes its listener and its shutdown signal as arguments,
//! so tests bind port 0 and stop it deterministically.

mod health;

use std::future::Future;

use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use health::{Readiness, READINESS_TIMEOUT};

/// What request handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// Every route fleetd serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(http.addr = %addr, "HTTP server listening");
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
