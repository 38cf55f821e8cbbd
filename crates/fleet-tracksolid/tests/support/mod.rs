//! A fake of the vendor's `/route/rest` endpoint for the client's tests: it records every
//! request and answers with whatever the test's script says.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use fleet_config::Secret;
use fleet_tracksolid::ClientConfig;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const APP_KEY: &str = "8FB345B8693CCD00TESTKEY000000000";
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const USER: &str = "demo";
pub const PASSWORD: &str = "secret123";

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub content_type: Option<String>,
    pub params: BTreeMap<String, String>,
    /// Parameter names that occurred more than once.
    pub repeated: Vec<String>,
    pub at: Instant,
}

impl Recorded {
    pub fn method(&self) -> &str {
        self.params.get("method").map_or("", String::as_str)
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: Value) -> Self {
        Self { status: 200, body: body.to_string(), delay: Duration::ZERO }
    }

    /// A success with `payload` in `result`.
    pub fn ok(payload: Value) -> Self {
        Self::json(json!({"code": 0, "message": "success", "result": payload}))
    }

    pub fn code(code: i64, message: &str) -> Self {
        Self::json(json!({"code": code, "message": message}))
    }

    pub fn raw(status: u16, body: &str) -> Self {
        Self { status, body: body.to_owned(), delay: Duration::ZERO }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Answers a request, given how many earlier requests had the same `method`.
pub type Script = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct FakeState {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Script>,
}

pub struct FakeApi {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeApi {
    pub async fn start(script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState { requests: requests.clone(), script: Arc::new(script) };
        let app = Router::new().route("/route/rest", post(answer)).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url: format!("http://{addr}/route/rest"), requests }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method() == method).collect()
    }

    /// A client of this fake with test-sized timeouts and backoff.
    pub fn config(&self) -> ClientConfig {
        config_for(&self.url)
    }
}

pub fn config_for(url: &str) -> ClientConfig {
    let mut config = ClientConfig::new(
        url,
        APP_KEY,
        Secret::new(APP_SECRET.to_owned()),
        USER,
        Secret::new(PASSWORD.to_owned()),
    );
    config.request_timeout = Duration::from_secs(5);
    config.track_request_timeout = Duration::from_secs(5);
    config.backoff_base = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(40);
    config
}

async fn answer(State(state): State<FakeState>, headers: HeaderMap, body: String) -> Response {
    let mut params = BTreeMap::new();
    let mut repeated = Vec::new();
    for (name, value) in url::form_urlencoded::parse(body.as_bytes()) {
        if params.insert(name.to_string(), value.to_string()).is_some() {
            repeated.push(name.to_string());
        }
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let recorded = Recorded { content_type, params, repeated, at: Instant::now() };
    let nth = {
        let mut requests = state.requests.lock().expect("lock");
        let nth = requests.iter().filter(|r| r.method() == recorded.method()).count();
        requests.push(recorded.clone());
        nth
    };
    let reply = (state.script)(&recorded, nth);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).expect("status");
    (status, [(header::CONTENT_TYPE, "application/json;charset=utf-8")], reply.body).into_response()
}

/// The token grant the fake issues for its `nth` login.
pub fn grant(nth: usize, expires_in: Value) -> Reply {
    Reply::ok(json!({
        "appKey": APP_KEY,
        "account": USER,
        "accessToken": format!("token-{nth}"),
        "expiresIn": expires_in,
        "refreshToken": format!("refresh-{nth}"),
        "time": "2026-03-26 12:00:00",
    }))
}

/// Logs in and refreshes like the vendor; `None` for every other method.
pub fn token_methods(request: &Recorded, nth: usize) -> Option<Reply> {
    match request.method() {
        "jimi.oauth.token.get" => Some(grant(nth, json!(7200))),
        "jimi.oauth.token.refresh" => Some(Reply::ok(json!({
            "accessToken": format!("refreshed-{nth}"),
            "expiresIn": "7200",
            "refreshToken": format!("refresh-again-{nth}"),
        }))),
        _ => None,
    }
}
