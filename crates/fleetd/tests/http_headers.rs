//! `fleetd serve` answers every kind of request (health, readiness, metrics, API, pushes, pages,
//! errors and 404s) with the security headers, keeps the pages' own policy, sends HSTS only
//! behind an HTTPS proxy, guards /metrics with FLEETD_METRICS_TOKEN, and refuses bodies over
//! FLEETD_HTTP_UPLOADS_PER_ADDRESS.

mod support;

use std::time::Duration;

use fleet_testkit::TestDb;
use support::{fleetd, Running};

const PUSH_TOKEN: &str = "headers-push-token";
const METRICS_TOKEN: &str = "headers-metrics-token-0123";

fn assert_secured(what: &str, resp: &reqwest::Response) {
    let h = resp.headers();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert!(!header("referrer-policy").is_empty(), "{what}");
    assert_eq!(header("cross-origin-opener-policy"), "same-origin", "{what}");
    assert_eq!(header("cross-origin-resource-policy"), "same-origin", "{what}");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{what}");
    assert!(h.get("strict-transport-security").is_none(), "{what}: HSTS only behind HTTPS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_response_carries_the_security_headers() {
    let db = TestDb::migrated().await;
    let mut cmd = fleetd();
    cmd.args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("FLEETD_PUSH_TOKEN", PUSH_TOKEN)
        .env("FLEETD_METRICS_TOKEN", METRICS_TOKEN)
        .env("FLEETD_HTTP_MAX_CONNECTIONS", "500")
        .env("FLEETD_HTTP_MAX_IN_FLIGHT", "100")
        .env("FLEETD_HTTP_PRIORITY_RESERVE", "10")
        .env("FLEETD_HTTP_UPLOADS_PER_ADDRESS", "1")
        .env("FLEETD_MAP_TILE_URL", "none")
        .env("FLEETD_LOG", "warn");
    let (fleetd, base) = Running::serve(&mut cmd);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}"));

    for (what, path, status) in [
        ("liveness", "/healthz", 200),
        ("readiness", "/readyz", 200),
        ("the API without a login", "/api/v1/devices", 401),
        ("the OpenAPI document", "/api/v1/openapi.json", 200),
        ("an unknown path", "/no/such/path", 404),
        ("metrics without the token", "/metrics", 401),
    ] {
        let resp = get(path).send().await.expect(what);
        assert_eq!(resp.status().as_u16(), status, "{what}");
        assert_secured(what, &resp);
        assert_eq!(
            resp.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{what}"
        );
        assert_eq!(resp.headers()["referrer-policy"], "no-referrer", "{what}");
    }

    let metrics = get("/metrics").bearer_auth(METRICS_TOKEN).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert_secured("metrics with the token", &metrics);
    let wrong = get("/metrics").bearer_auth("headers-metrics-token-0124").send().await;
    assert_eq!(wrong.expect("metrics").status(), 401, "a wrong token");

    let push = |token: &'static str| {
        http.post(format!("{base}/push/pushgps")).form(&[("token", token), ("data_list", "[]")])
    };
    let accepted = push(PUSH_TOKEN).send().await.expect("push");
    assert_eq!(accepted.status(), 200);
    assert_secured("a push", &accepted);
    let refused = push("wrong-push-token").send().await.expect("push");
    assert_eq!(refused.status(), 401);
    assert_secured("a refused push", &refused);

    // the pages keep their own policy and referrer rule; framing is refused there too
    let page = get("/").send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert_secured("a page", &page);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src") || csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");

    // behind an HTTPS proxy, browsers are told to keep to HTTPS
    let tls = get("/healthz").header("x-forwarded-proto", "https").send().await.expect("tls");
    assert!(tls.headers()["strict-transport-security"]
        .to_str()
        .expect("hsts")
        .contains("max-age="));

    // one address may have one body on the way (FLEETD_HTTP_UPLOADS_PER_ADDRESS=1): while a
    // stalled one holds it, the next is refused at once, secured and with Retry-After
    let host = base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&host).await.expect("connect");
    let head = "POST /push/pushgps HTTP/1.1\r\nHost: fleetd\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut stalled, head.as_bytes()).await.expect("head");
    let over = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let r = push(PUSH_TOKEN).send().await.expect("push");
            // the stalled head may not have been read yet
            if r.status() != 200 {
                return r;
            }
        }
    })
    .await
    .expect("refused within a second");
    assert_eq!(over.status(), 429);
    assert_eq!(over.headers()["retry-after"], "1");
    assert_secured("a push over the address's share", &over);
    drop(stalled);

    fleetd.stop(Duration::from_secs(30));
}
