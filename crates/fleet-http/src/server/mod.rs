//! fleetd's HTTP/1 server on hyper, with the transport limits `axum::serve` lacks: a header-read
//! timeout, a body deadline, a deadline on stalled response writes, a connection limit that
//! evicts idle connections first, an in-flight limit with a reserve for pushes and `/healthz`,
//! and a per-address cap on requests still receiving their body (see [`Limits`] for why each
//! exists). Every refusal, eviction and timeout is counted in
//! `fleetd_http_rejections_total{reason}`; every response carries the security headers.

mod admission;
pub mod body;
mod conns;
mod headers;
mod io;
pub mod limits;
mod uploads;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;

pub use admission::HEALTH_ONLY_PLACES;
pub use limits::Limits;

use crate::auth::client::client_address;
use crate::trace::{self, RequestId};
use crate::ApiError;
use admission::{class, Admission, GuardedBody, RequestGuard};
use body::{BodyBudget, WatchedBody};
use conns::{Admitted, ConnState, Connections};
use uploads::Uploads;

/// Why the server refused, cut off or closed something: the values of the `reason` label.
pub const REJECTION_REASONS: [&str; 8] = [
    "connection_evicted",
    "connection_refused",
    "header_timeout",
    "body_timeout",
    "send_timeout",
    "over_capacity",
    "uploads_per_address",
    "accept_error",
];

/// Largest read buffer of a connection, which bounds a request head (larger: 431). Every open
/// connection may fill it with an unfinished head, so it is the per-connection part of what
/// clients without a login can make fleetd hold: 16 KiB × 8,192 connections is 128 MiB. The web
/// apps send under 2 KiB of headers (one session cookie); nginx refuses a header line over
/// 8 KiB by default.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Counts one refusal, eviction or timeout.
pub(crate) fn rejected(reason: &'static str) {
    debug_assert!(REJECTION_REASONS.contains(&reason));
    metrics::counter!("fleetd_http_rejections_total", "reason" => reason).increment(1);
}

/// What every connection task shares.
struct Shared {
    router: Router,
    admission: Arc<Admission>,
    uploads: Arc<Uploads>,
    trusted_proxies: Vec<ipnet::IpNet>,
    body_budget: Arc<BodyBudget>,
    http1: http1::Builder,
    body_timeout: Duration,
    send_timeout: Duration,
    /// `Keep-Alive: timeout=<n>`: a little less than the idle close, so clients that honour it
    /// drop a pooled connection before fleetd closes it under a request they are sending.
    keep_alive: axum::http::HeaderValue,
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets requests in progress finish (idle connections close at once) and returns
/// when every connection has closed. Handlers see the peer address as `ConnectInfo`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(http.addr = %addr, "HTTP server listening");
    }
    let connections = Connections::new(limits.max_connections);
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        // a connection's read buffer, and so the largest request head: hyper's default lets
        // each connection grow it to about 400 KiB
        .max_buf_size(READ_BUFFER_BYTES);
    let shared = Arc::new(Shared {
        router,
        admission: Admission::new(limits.max_in_flight, limits.priority_reserve),
        uploads: Uploads::new(limits.uploads_per_address),
        keep_alive: keep_alive_value(limits.header_timeout),
        trusted_proxies: limits.trusted_proxies,
        body_budget: BodyBudget::new(limits.body_memory),
        http1,
        body_timeout: limits.body_timeout,
        send_timeout: limits.send_timeout,
    });
    let draining = CancellationToken::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // at the limit with every connection busy: closed unanswered
                    if let Some(admitted) = connections.admit() {
                        let conn = serve_connection(
                            stream, peer, admitted, shared.clone(), draining.clone(),
                        );
                        tasks.spawn(conn);
                    }
                }
                Err(e) => accept_failed(e).await,
            },
        }
    }
    drop(listener);
    draining.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A failed accept: per-connection errors (the peer reset it) are skipped; running out of
/// files or memory is logged, counted and waited out briefly instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    rejected("accept_error");
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    shared: Arc<Shared>,
    draining: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let conn_state = admitted.state.clone();
    let handler = shared.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        handle(req, peer, handler.clone(), conn_state.clone())
    });
    let io = TokioIo::new(io::StallGuarded::new(stream, shared.send_timeout));
    let conn = shared.http1.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        // dropping the connection closes it; only idle connections are evicted
        () = admitted.evicted.cancelled() => return,
        () = draining.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Err(e) if e.is_timeout() => rejected("header_timeout"),
        Err(e) => tracing::debug!(error = %e, client.addr = %peer, "HTTP connection ended"),
        Ok(()) => {}
    }
}

/// One request, in its `request` span and with its request id echoed (see [`crate::trace`]):
/// within its address's share of bodies being received (or refused with 429) and its share of
/// the in-flight limit (or refused with 503), its body under the deadline, the security headers
/// added, and its place held until the response ends.
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
) -> Result<Response<GuardedBody>, Infallible> {
    let tls = crate::auth::client::is_https(req.headers());
    let keep_alive = headers::keeps_alive(&req);
    let started = Instant::now();
    let request_id = RequestId::from_headers(req.headers());
    let span = trace::request_span(req.method(), &request_id);
    let mut response =
        request_id.clone().scope(respond(req, peer, &shared, conn).instrument(span.clone())).await;
    trace::finish(&span, &request_id, started, &mut response);
    headers::apply(response.headers_mut(), tls);
    if keep_alive && !headers::closes(response.headers()) {
        response.headers_mut().insert("keep-alive", shared.keep_alive.clone());
    }
    Ok(response.map(|(b, guard)| GuardedBody::new(b, guard)))
}

/// The response to one request within the limits above, with the guard that holds its place.
async fn respond(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared,
    conn: Arc<ConnState>,
) -> Response<(Body, RequestGuard)> {
    // counted before an in-flight place is taken, so one address's unsent bodies take at most
    // its share of the places
    let upload = if http_body::Body::is_end_stream(req.body()) {
        Ok(None)
    } else {
        let client = client_address(peer.ip(), req.headers(), &shared.trusted_proxies);
        shared.uploads.try_start(client).map(Some).ok_or(())
    };
    let in_flight = upload.is_ok().then(|| shared.admission.try_admit(class(req.uri().path())));
    let guard = RequestGuard::new(conn, in_flight.flatten());
    let response = match (upload, guard.admitted()) {
        (Ok(upload), true) => {
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let (body, received) = WatchedBody::new(body, shared.body_budget.clone(), upload);
            let routed = shared.router.clone().call(Request::from_parts(parts, Body::new(body)));
            within_body_deadline(routed, received, shared.body_timeout).await
        }
        (Ok(_), false) => {
            rejected("over_capacity");
            ApiError::Overloaded.into_response()
        }
        (Err(()), _) => {
            rejected("uploads_per_address");
            ApiError::TooBusy {
                detail: "this address is already sending as many request bodies as fleetd \
                         allows at once; try again shortly"
                    .to_owned(),
                retry_after: Duration::from_secs(1),
            }
            .into_response()
        }
    };
    response.map(|b| (b, guard))
}

/// `timeout=<n>` with `n` a second under the idle close (hyper closes a keep-alive connection
/// idle for the header timeout; a client counts from when the response reached it, later).
fn keep_alive_value(header_timeout: Duration) -> axum::http::HeaderValue {
    let secs = header_timeout.as_secs().saturating_sub(1).max(1);
    axum::http::HeaderValue::from_str(&format!("timeout={secs}"))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("timeout=1"))
}

/// The handler's response, or 408 when the body has not arrived in full `timeout` after the
/// head (the handler, and the body buffered so far, are dropped; hyper then closes the
/// connection, whose body was not read to its end). A slow handler with its body received
/// is not cut off.
async fn within_body_deadline(
    routed: impl Future<Output = Result<Response, Infallible>>,
    received: Arc<AtomicBool>,
    timeout: Duration,
) -> Response {
    let respond = |r: Result<Response, Infallible>| r.unwrap_or_else(|never| match never {});
    if received.load(Ordering::Acquire) {
        return respond(routed.await);
    }
    tokio::pin!(routed);
    tokio::select! {
        r = &mut routed => respond(r),
        () = tokio::time::sleep(timeout) => {
            if received.load(Ordering::Acquire) {
                respond(routed.await)
            } else {
                rejected("body_timeout");
                ApiError::RequestTimeout.into_response()
            }
        }
    }
}
