//! The simulator's HTTP face: the vendor's OpenAPI at `/route/rest`, with request signing,
//! timestamps, tokens, rate limiting, the vendor's error codes and its wire types.

mod auth;
mod clock;
mod methods;
pub(crate) mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use fleet_config::Secret;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::Fleet;
pub use auth::Credentials;
pub use clock::SimClock;

/// Unix seconds in the vendor's time format (`yyyy-MM-dd HH:mm:ss`, UTC).
pub fn wire_time(t: i64) -> String {
    wire::format_time(t)
}

/// The vendor's time format (`yyyy-MM-dd HH:mm:ss`, UTC) to unix seconds.
pub fn parse_wire_time(s: &str) -> Option<i64> {
    wire::parse_time(s)
}

/// How the simulated service behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub credentials: Credentials,
    /// Upper bound on token lifetimes, seconds (tests shorten it to exercise expiry).
    pub max_token_lifetime_s: u64,
    /// Calls per second per app key before answering 1006; `None` disables rate limiting.
    pub rate_limit_per_s: Option<u32>,
    /// Whether issuing a new token invalidates the previous one (undocumented by the vendor).
    pub invalidate_on_reissue: bool,
    pub clock: SimClock,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            credentials: Credentials::default(),
            max_token_lifetime_s: 7200,
            rate_limit_per_s: None,
            invalidate_on_reissue: false,
            clock: SimClock::real_time(),
        }
    }
}

/// Shared state of the simulated service.
#[derive(Debug)]
pub struct SimState {
    pub fleet: Arc<Fleet>,
    pub config: SimConfig,
    pub(crate) auth: auth::AuthState,
    calls: Mutex<HashMap<String, u64>>,
    faults: Mutex<HashMap<i64, u64>>,
    /// While set, the account is refused: logins fail and every issued token is invalid
    /// (a revoked or expired account, for tests of how fleetd notices).
    rejecting: AtomicBool,
}

impl SimState {
    pub fn new(fleet: Arc<Fleet>, config: SimConfig) -> Arc<Self> {
        Arc::new(Self {
            fleet,
            config,
            auth: auth::AuthState::default(),
            calls: Mutex::default(),
            faults: Mutex::default(),
            rejecting: AtomicBool::new(false),
        })
    }

    /// Starts (true) or stops (false) refusing the account: while refusing, every token
    /// issued so far is revoked and logins answer "Incorrect user name or password".
    pub fn set_rejecting(&self, rejecting: bool) {
        self.rejecting.store(rejecting, Ordering::SeqCst);
        if rejecting {
            self.auth.revoke_all();
        }
    }

    pub(crate) fn is_rejecting(&self) -> bool {
        self.rejecting.load(Ordering::SeqCst)
    }

    /// Error answers given with vendor code `code`.
    pub fn faults(&self, code: i64) -> u64 {
        self.faults.lock().map(|c| c.get(&code).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Calls received per method (those that passed the request checks).
    pub fn calls(&self, method: &str) -> u64 {
        self.calls.lock().map(|c| c.get(method).copied().unwrap_or(0)).unwrap_or(0)
    }
}

/// The simulator's routes.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/route/rest", post(rest).get(rest))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: Arc<SimState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// One OpenAPI call: parameters from the query string and the form body (the body wins).
async fn rest(
    State(state): State<Arc<SimState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Json<Value> {
    let mut params: HashMap<String, String> = HashMap::new();
    if let Some(q) = query {
        params.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    params.extend(url::form_urlencoded::parse(&body).into_owned());
    let answer = handle(&state, &params);
    if let Some(code) = answer["code"].as_i64().filter(|c| *c != 0) {
        if let Ok(mut faults) = state.faults.lock() {
            *faults.entry(code).or_default() += 1;
        }
    }
    Json(answer)
}

fn handle(state: &SimState, params: &HashMap<String, String>) -> Value {
    let method = match auth::check_request(state, params) {
        Ok(m) => m,
        Err(e) => return e.into_envelope(),
    };
    if let Ok(mut calls) = state.calls.lock() {
        *calls.entry(method.clone()).or_default() += 1;
    }
    let result = match method.as_str() {
        "jimi.oauth.token.get" => auth::token_get(state, params),
        "jimi.oauth.token.refresh" => auth::token_refresh(state, params),
        other => match auth::check_token(state, params) {
            Err(e) => Err(e),
            Ok(()) => methods::dispatch(state, other, params),
        },
    };
    result.unwrap_or_else(|e| e.into_envelope())
}

/// The documented default credentials of `fleetd sim`.
pub fn default_credentials() -> Credentials {
    Credentials {
        app_key: "8FB345B8693CCD00SIMULATOR0000001".to_owned(),
        app_secret: Secret::new("fleetd-sim-secret".to_owned()),
        user: "fleetd-demo".to_owned(),
        password: Secret::new("demo-password".to_owned()),
    }
}
