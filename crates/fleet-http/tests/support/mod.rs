//! Shared by the API tests: fleetd's router served on port 0 over a fresh migrated database,
//! users of each role, and requests as anonymous, with a session cookie or with a token.

#![allow(dead_code)]

pub mod live;

use std::net::SocketAddr;

use fleet_accounts::users::{self, NewUser};
use fleet_accounts::{token, Role};
use fleet_http::AppState;
use fleet_testkit::TestDb;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running API over its own database. Stops when dropped.
pub struct App {
    pub db: TestDb,
    pub addr: SocketAddr,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum As {
    Anonymous,
    /// The `fleetd_session` cookie value.
    Session(String),
    Bearer(String),
}

/// The password every test user gets.
pub fn password_of(username: &str) -> String {
    format!("pw-of-{username}")
}

impl App {
    pub async fn start() -> App {
        Self::start_with(|s| s).await
    }

    /// Starts with the state adjusted by `configure` (CORS origins, login limits).
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> App {
        let db = TestDb::migrated().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = fleet_http::router(configure(AppState::new(db.pool.clone())));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(fleet_http::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        App { db, addr, client: reqwest::Client::new(), _stop: stop }
    }

    /// Creates a user with [`password_of`] its name; returns its id.
    pub async fn user(&self, username: &str, role: Role) -> i32 {
        let new = NewUser {
            username: username.to_owned(),
            display_name: format!("{username} (test)"),
            role,
            password: password_of(username),
        };
        users::create(&self.db.pool, new).await.expect("create user").user_id
    }

    /// Logs in and returns the session cookie's value.
    pub async fn login(&self, username: &str) -> String {
        let resp = self
            .call(Method::POST, "/auth/login", &As::Anonymous)
            .json(&serde_json::json!({"username": username, "password": password_of(username)}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200, "login of {username}");
        session_cookie(&resp).expect("session cookie")
    }

    /// A bearer token for the user.
    pub async fn token(&self, user_id: i32) -> String {
        token::create(&self.db.pool, user_id, "test", None).await.expect("token").token
    }

    /// A request to `path` under /api/v1 (paths starting with `/api/` and the health routes as
    /// they are).
    pub fn call(&self, method: Method, path: &str, who: &As) -> RequestBuilder {
        let path = if path.starts_with("/api/") || path == "/healthz" || path == "/readyz" {
            path.to_owned()
        } else {
            format!("/api/v1{path}")
        };
        let req = self.client.request(method, format!("http://{}{path}", self.addr));
        match who {
            As::Anonymous => req,
            As::Session(c) => req.header("cookie", format!("fleetd_session={c}")),
            As::Bearer(t) => req.bearer_auth(t),
        }
    }

    /// GET and decode: (status, body).
    pub async fn get(&self, path: &str, who: &As) -> (u16, Value) {
        json(self.call(Method::GET, path, who).send().await.expect("request")).await
    }

    /// A request with a JSON body: (status, body).
    pub async fn send(&self, method: Method, path: &str, who: &As, body: Value) -> (u16, Value) {
        json(self.call(method, path, who).json(&body).send().await.expect("request")).await
    }

    /// A request without a body: (status, body or null).
    pub async fn bare(&self, method: Method, path: &str, who: &As) -> (u16, Value) {
        json(self.call(method, path, who).send().await.expect("request")).await
    }

    /// Inserts a device; returns its id.
    pub async fn device(&self, imei: &str, name: &str) -> i32 {
        sqlx::query_scalar(
            "insert into fleet.devices (imei, name) values ($1, $2) returning device_id",
        )
        .bind(imei)
        .bind(name)
        .fetch_one(&self.db.pool)
        .await
        .expect("device")
    }
}

/// Another fleetd process: its own state and pool on `app`'s database, served on its own port.
/// Stops when dropped.
pub struct Process {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl App {
    /// Starts another process on this app's database, its state adjusted by `configure`.
    pub async fn another_process(&self, configure: impl FnOnce(AppState) -> AppState) -> Process {
        let pool = self.db.another_pool().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = fleet_http::router(configure(AppState::new(pool)));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(fleet_http::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        Process { addr, _stop: stop }
    }
}

/// Status and JSON body (null when empty). Problems must come as application/problem+json.
pub async fn json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = resp.bytes().await.expect("body");
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "status {status} with {ct}: {bytes:?}");
    }
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
    };
    if status >= 400 {
        assert_problem(&body, status);
    }
    (status, body)
}

/// Checks a problem body's shape and status.
pub fn assert_problem(body: &Value, status: u16) {
    let t = body["type"].as_str().unwrap_or_default();
    assert!(t.starts_with("https://fleetd.dev/problems/"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
}

/// The problem kind of an error body: the last segment of its `type`.
pub fn kind(body: &Value) -> &str {
    body["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default()
}

/// The `fleetd_session` value a response sets, if any.
pub fn session_cookie(resp: &Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("fleetd_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}
