//! Requests whose body never comes, from one address, against the in-flight limit: more of
//! them than the whole limit must leave `/healthz`, pushes and the API answering within a
//! second for everyone else, and the liveness probe must answer even when pushes fill the
//! reserve.

#[path = "support/transport.rs"]
mod transport;

use std::time::Duration;

use fleet_http::server::Limits;
use futures_util::future::join_all;
use tokio::net::TcpStream;
use transport::{stall_after, status_within, within_a_second, Server};

const SMALL: Limits = Limits {
    max_connections: 1000,
    header_timeout: Duration::from_secs(30),
    body_timeout: Duration::from_secs(30),
    body_memory: 64 << 20,
    send_timeout: Duration::from_secs(30),
    max_in_flight: 40,
    priority_reserve: 10,
    uploads_per_address: 8,
    trusted_proxies: Vec::new(),
};

/// `n` connections from 127.0.0.1, each sending `head` (a body of 100 bytes announced, none
/// sent); returns the statuses answered within two seconds (`None`: still waiting).
async fn stall(server: &Server, head: &str, n: usize) -> Vec<Option<String>> {
    let mut stalled: Vec<TcpStream> = Vec::new();
    for _ in 0..n {
        stalled.push(stall_after(server.addr, head.as_bytes()).await);
    }
    let statuses =
        join_all(stalled.iter_mut().map(|s| status_within(s, Duration::from_secs(2)))).await;
    // the stalled connections stay open while the caller checks the service
    std::mem::forget(stalled);
    statuses
}

fn refused(statuses: &[Option<String>], status: &str) -> usize {
    statuses.iter().flatten().filter(|l| l.starts_with(status)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_push_bodies_from_one_address_leave_health_and_other_pushes_answering() {
    let server = Server::start(SMALL).await;
    let head = "POST /push/pushgps HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    // more than the whole in-flight limit
    let statuses = stall(&server, head, 60).await;
    assert_eq!(refused(&statuses, "HTTP/1.1 429"), 52, "all but its share refused: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| s.is_none()).count(), 8, "its share is still waiting");

    assert_eq!(within_a_second("/healthz", server.get_from("127.0.0.2", "/healthz")).await, 200);
    assert_eq!(within_a_second("a push", server.push_from("127.0.0.2", 1)).await, 200);
    assert_eq!(within_a_second("the API", server.get_from("127.0.0.2", "/readyz")).await, 200);
    // (the recorder is shared by this file's tests, which run at once)
    let metrics = server.metrics().await;
    let counted =
        transport::gauge(&metrics, "fleetd_http_rejections_total{reason=\"uploads_per_address\"}");
    assert!(counted.unwrap_or(0.0) >= 52.0, "the refusals are counted: {counted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_login_bodies_from_one_address_leave_health_and_the_api_answering() {
    let server = Server::start(SMALL).await;
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    let statuses = stall(&server, head, 60).await;
    assert_eq!(refused(&statuses, "HTTP/1.1 429"), 52, "all but its share refused: {statuses:?}");

    assert_eq!(within_a_second("/healthz", server.get_from("127.0.0.2", "/healthz")).await, 200);
    assert_eq!(within_a_second("the API", server.get_from("127.0.0.2", "/readyz")).await, 200);
    assert_eq!(within_a_second("a push", server.push_from("127.0.0.2", 1)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_filling_the_reserve_leave_places_for_the_liveness_probe() {
    // no per-address cap to speak of: pushes from many vendor addresses look like this
    let server = Server::start(Limits { uploads_per_address: 1000, ..SMALL }).await;
    let head = "POST /push/pushgps HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    let statuses = stall(&server, head, 50).await;
    let places = SMALL.max_in_flight - fleet_http::server::HEALTH_ONLY_PLACES;
    assert_eq!(refused(&statuses, "HTTP/1.1 503"), 50 - places, "{statuses:?}");

    assert_eq!(within_a_second("/healthz", server.get("/healthz")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_a_wrong_token_in_its_url_is_refused_before_its_body_arrives() {
    let server = Server::start(SMALL).await;
    let head = "POST /push/pushgps?token=wrong HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    let mut stalled = stall_after(server.addr, head.as_bytes()).await;
    let status = status_within(&mut stalled, Duration::from_secs(1)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"));
    assert_eq!(within_a_second("a push", server.push(1)).await, 200);
}
