//! A server for the transport tests: fleetd's router, the push receivers with a real writer and
//! a route that holds its requests until released, served on port 0 within given limits, and
//! raw-socket clients that send part of a request and stall.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use fleet_config::Secret;
use fleet_http::server::Limits;
use fleet_http::AppState;
use fleet_ingest::{push_routes, PushReceiver, Writer, WriterConfig};
use fleet_testkit::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const PUSH_TOKEN: &str = "transport-push-token";

/// A running server; stops (and drains its writer) when dropped.
pub struct Server {
    pub db: TestDb,
    pub addr: SocketAddr,
    pub state: AppState,
    /// Releases every request held by `GET /test/hold`.
    pub release: CancellationToken,
    /// One message per request that has entered `GET /test/hold`.
    pub held: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.release.cancel();
        self.stop.cancel();
    }
}

impl Server {
    pub async fn start(limits: Limits) -> Server {
        let db = TestDb::migrated().await;
        let stop = CancellationToken::new();
        let (writer, _task) = Writer::spawn(db.pool.clone(), WriterConfig::default(), stop.clone());
        let receiver = PushReceiver {
            writer,
            token: Some(Secret::new(PUSH_TOKEN.to_owned())),
            max_body_bytes: 2 << 20,
        };
        let release = CancellationToken::new();
        let (entered, held) = mpsc::unbounded_channel();
        let gate = release.clone();
        let hold = get(move || {
            let (gate, entered) = (gate.clone(), entered.clone());
            async move {
                let _ = entered.send(());
                gate.cancelled().await;
                "released"
            }
        });
        let state = AppState::new(db.pool.clone());
        let app = fleet_http::router(state.clone())
            .merge(fleet_http::with_http_metrics(push_routes(receiver)))
            .merge(Router::new().route("/test/hold", hold).route("/test/endless", get(endless)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stopped = stop.clone();
        tokio::spawn(fleet_http::server::serve(listener, app, limits, stopped.cancelled_owned()));
        Server { db, addr, state, release, held, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A push of one fix on a connection of its own: its status.
    pub async fn push(&self, minute: u32) -> u16 {
        self.push_with(fresh_client(), minute).await
    }

    /// A push sent from the local address `from` (any of 127.0.0.0/8 on Linux): its status.
    pub async fn push_from(&self, from: &str, minute: u32) -> u16 {
        self.push_with(client_from(from), minute).await
    }

    /// GET from the local address `from` on a connection of its own: its status.
    pub async fn get_from(&self, from: &str, path: &str) -> u16 {
        client_from(from).get(self.url(path)).send().await.expect("get").status().as_u16()
    }

    async fn push_with(&self, client: reqwest::Client, minute: u32) -> u16 {
        let fix = serde_json::json!([{
            "deviceImei": "868120303960873",
            "gpsTime": format!("2026-11-20 07:{minute:02}:00"),
            "gateTime": "2026-11-20 07:00:01",
            "lat": -1.2921, "lng": 36.8219, "gpsSpeed": 35, "direction": 180, "acc": 1,
            "satelliteNum": 9, "postType": 1
        }])
        .to_string();
        let form = [("token", PUSH_TOKEN), ("data_list", fix.as_str())];
        client
            .post(self.url("/push/pushgps"))
            .form(&form)
            .send()
            .await
            .expect("push")
            .status()
            .as_u16()
    }

    /// GET on a connection of its own: its status.
    pub async fn get(&self, path: &str) -> u16 {
        fresh_client().get(self.url(path)).send().await.expect("get").status().as_u16()
    }

    /// The /metrics text.
    pub async fn metrics(&self) -> String {
        fresh_client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

/// A response that never ends, 64 KiB at a time, for clients that stop reading it.
async fn endless() -> axum::body::Body {
    let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    axum::body::Body::from_stream(chunks)
}

/// A client that opens a new connection per request (pooled ones may be evicted while idle).
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client")
}

/// A client like [`fresh_client`] whose connections come from the local address `from`.
pub fn client_from(from: &str) -> reqwest::Client {
    let from: std::net::IpAddr = from.parse().expect("address");
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .local_address(from)
        .build()
        .expect("client")
}

/// The status line of the response head that arrives on `stream` within `wait`, if any.
pub async fn status_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()?;
    let text = String::from_utf8_lossy(&got);
    text.lines().next().filter(|l| !l.is_empty()).map(str::to_owned)
}

/// Connects and sends `bytes`, then sends nothing more.
pub async fn stall_after(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("send");
    s
}

/// Connects and keeps sending `bytes` in the background for as long as the server reads them
/// (the connection stays open after); returns the reading half.
pub async fn send_in_background(addr: SocketAddr, bytes: Vec<u8>) -> OwnedReadHalf {
    let (read, mut write) = TcpStream::connect(addr).await.expect("connect").into_split();
    tokio::spawn(async move {
        let _ = write.write_all(&bytes).await;
        std::future::pending::<()>().await;
        drop(write);
    });
    read
}

/// A gauge's value in /metrics text.
pub fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// What the server sent before closing `stream`, or `None` if it is still open after `wait`.
pub async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    wait: Duration,
) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

/// Runs `f` and fails the test unless it finishes within a second.
pub async fn within_a_second<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(1), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than a second"))
}
