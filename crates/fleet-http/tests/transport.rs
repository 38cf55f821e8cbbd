//! The server's transport limits against the attacks they exist for, over real TCP: hundreds of
//! half-sent heads, stalled push bodies and a flood of API requests must not keep `/healthz`
//! and pushes from answering within a second.

#[path = "support/transport.rs"]
mod transport;

use std::time::Duration;

use fleet_http::server::Limits;
use futures_util::future::join_all;
use transport::{closed_within, stall_after, within_a_second, Server};

const GENEROUS: Limits = Limits {
    max_connections: 1000,
    header_timeout: Duration::from_secs(30),
    body_timeout: Duration::from_secs(30),
    body_memory: 64 << 20,
    send_timeout: Duration::from_secs(30),
    max_in_flight: 200,
    priority_reserve: 20,
    uploads_per_address: 1000,
    trusted_proxies: Vec::new(),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_evicted_at_the_limit_and_health_and_pushes_still_answer() {
    let server = Server::start(Limits { max_connections: 100, ..GENEROUS }).await;
    let mut attackers = Vec::new();
    for _ in 0..300 {
        attackers
            .push(stall_after(server.addr, b"GET /healthz HTTP/1.1\r\nHost: fleetd\r\n").await);
    }

    // while they are held open, the service answers
    assert_eq!(within_a_second("/healthz", server.get("/healthz")).await, 200);
    assert_eq!(within_a_second("a push", server.push(1)).await, 200);

    // the server holds at most its limit: the oldest half-open connections were closed
    let closed = join_all(attackers.iter_mut().map(|s| closed_within(s, Duration::from_secs(2))))
        .await
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert!(closed >= 200, "only {closed} of 300 half-open connections were closed");
    let metrics = server.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fleetd_http_rejections_total{reason=\"connection_evicted\"}")),
        "evictions are counted"
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from fleet.positions")
            .fetch_one(&server.db.pool)
            .await
            .expect("count"),
        1,
        "the push was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_push_bodies_are_bounded_in_memory_and_cut_off_by_the_deadline_while_pushes_succeed(
) {
    const BUDGET: usize = 4 << 20;
    let server = Server::start(Limits {
        body_timeout: Duration::from_secs(2),
        body_memory: BUDGET,
        ..GENEROUS
    })
    .await;
    // a hundred clients each send half a megabyte of a 1 MB push body, then stall: without a
    // budget the server would hold 50 MB
    let head = "POST /push/pushgps HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n";
    let mut part = head.as_bytes().to_vec();
    part.extend(std::iter::repeat_n(b'x', 512 * 1024));
    let mut attackers = Vec::new();
    for _ in 0..100 {
        attackers.push(transport::send_in_background(server.addr, part.clone()).await);
    }

    assert_eq!(within_a_second("a push", server.push(1)).await, 200);
    assert_eq!(within_a_second("/healthz", server.get("/healthz")).await, 200);
    // the body bytes held beyond each body's free allowance stay within the budget
    let started = tokio::time::Instant::now();
    loop {
        let held = transport::gauge(&server.metrics().await, "fleetd_http_body_buffer_bytes");
        let held = held.unwrap_or(0.0);
        assert!(held <= BUDGET as f64, "{held} bytes held over a budget of {BUDGET}");
        if held > 0.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the budget is never drawn on");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // two seconds after its head each one is answered 408 and closed; nothing is held longer
    let answers =
        join_all(attackers.iter_mut().map(|s| closed_within(s, Duration::from_secs(6)))).await;
    for answer in answers {
        let answer = answer.expect("a stalled body is cut off within 6 s");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    let metrics = server.metrics().await;
    let cut: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fleetd_http_rejections_total{reason=\"body_timeout\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(cut >= 100.0, "{cut} body timeouts counted");
    assert_eq!(transport::gauge(&metrics, "fleetd_http_body_buffer_bytes"), Some(0.0));
    assert_eq!(within_a_second("a push after", server.push(2)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_general_share_get_503_at_once_while_health_and_pushes_use_the_reserve() {
    let mut server =
        Server::start(Limits { max_in_flight: 4, priority_reserve: 2, ..GENEROUS }).await;
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url("/test/hold");
            tokio::spawn(async move { transport::fresh_client().get(url).send().await })
        })
        .collect();
    for _ in 0..2 {
        server.held.recv().await.expect("a held request");
    }

    // the general share (4 - 2) is taken: refused at once, with a problem and Retry-After
    let refused =
        within_a_second("a refusal", transport::fresh_client().get(server.url("/readyz")).send())
            .await
            .expect("request");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "https://fleetd.dev/problems/unavailable");

    // the reserve is there for the liveness probe and the pushes
    assert_eq!(within_a_second("/healthz", server.get("/healthz")).await, 200);
    assert_eq!(within_a_second("a push", server.push(1)).await, 200);

    server.release.cancel();
    for h in holders {
        assert_eq!(h.await.expect("join").expect("held request").status(), 200);
    }
    assert_eq!(within_a_second("/readyz after", server.get("/readyz")).await, 200);
    // places are given back when responses end, also those without a body and on a
    // keep-alive connection: many more requests than places all succeed
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let head = client.head(server.url("/readyz")).send().await.expect("head");
        assert_eq!(head.status(), 200, "HEAD, answered without a body");
        let get = client.get(server.url("/readyz")).send().await.expect("get");
        assert_eq!(get.status(), 200);
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("fleetd_http_rejections_total{reason=\"over_capacity\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_and_idle_keep_alive_connections_close_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(Limits { header_timeout: Duration::from_secs(1), ..GENEROUS }).await;
    let mut half = stall_after(server.addr, b"GET /healthz HTTP/1.1\r\nHost: fleetd\r\n").await;

    // a keep-alive connection: one full exchange, then silence
    let mut idle = stall_after(server.addr, b"GET /healthz HTTP/1.1\r\nHost: fleetd\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let (half_closed, idle_closed) = tokio::join!(
        closed_within(&mut half, Duration::from_secs(5)),
        closed_within(&mut idle, Duration::from_secs(5)),
    );
    assert!(half_closed.is_some(), "a half-sent head is cut off");
    assert!(idle_closed.is_some(), "an idle keep-alive connection is closed");
    // a connection that keeps sending its head slowly is cut off all the same
    let mut slow = stall_after(server.addr, b"GET /healthz HTTP/1.1\r\n").await;
    let dripping = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(b"X-Drip: 1\r\n").await.is_err() {
                return true;
            }
        }
        false
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), dripping).await.unwrap_or(false)
            || closed_within(&mut slow, Duration::from_secs(1)).await.is_some(),
        "a head dripped line by line is cut off"
    );
    let metrics = server.metrics().await;
    assert!(metrics.contains("fleetd_http_rejections_total{reason=\"header_timeout\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_are_cut_off_and_free_their_places() {
    use tokio::io::AsyncReadExt;
    let server = Server::start(Limits {
        send_timeout: Duration::from_secs(1),
        max_in_flight: 4,
        priority_reserve: 2,
        ..GENEROUS
    })
    .await;
    // two clients read the start of an endless response, then stop reading
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s =
            stall_after(server.addr, b"GET /test/endless HTTP/1.1\r\nHost: fleetd\r\n\r\n").await;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.expect("response head");
        assert_eq!(&head, b"HTTP/1.1 200");
        stalled.push(s);
    }
    // their responses hold the general share
    assert_eq!(within_a_second("a refusal", server.get("/readyz")).await, 503);
    assert_eq!(within_a_second("/healthz", server.get("/healthz")).await, 200);

    // a second after their writes stall they are cut off, and the share is free again
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.get("/readyz").await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the stalled responses were never cut off");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("fleetd_http_rejections_total{reason=\"send_timeout\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_the_read_buffer_get_431_and_ordinary_heads_pass() {
    use fleet_http::server::READ_BUFFER_BYTES;
    let server = Server::start(GENEROUS).await;
    let head = |filler: usize| {
        let mut head = "GET /healthz HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n".to_owned();
        head.push_str(&format!("Cookie: fleetd_session={}\r\n\r\n", "a".repeat(filler)));
        head
    };
    let answer = |head: String| async move {
        let mut s = stall_after(server.addr, head.as_bytes()).await;
        let got = closed_within(&mut s, Duration::from_secs(5)).await.expect("answered and closed");
        String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned()
    };
    // a head with 8 KiB of cookies (far more than the web apps send) is read
    assert!(answer(head(8 * 1024)).await.starts_with("HTTP/1.1 200"));
    // one a little over the buffer is refused: a connection cannot hold more than it
    let refused = answer(head(READ_BUFFER_BYTES + 1024)).await;
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    assert_eq!(READ_BUFFER_BYTES, 16 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_responses_tell_clients_to_drop_idle_connections_before_fleetd_closes_them() {
    let server =
        Server::start(Limits { header_timeout: Duration::from_secs(10), ..GENEROUS }).await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/no/such/page"] {
        let r = client.get(server.url(path)).send().await.expect("request");
        assert_eq!(r.headers()["keep-alive"], "timeout=9", "{path}");
    }
    let closing = client
        .get(server.url("/healthz"))
        .header("connection", "close")
        .send()
        .await
        .expect("request");
    assert!(closing.headers().get("keep-alive").is_none(), "nothing to keep alive");
}
