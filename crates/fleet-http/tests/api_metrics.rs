//! `/metrics`: Prometheus text with requests by route template and status, latency
//! histograms, the ingest writer's counters, pool gauges and the trip builder's lag.

mod support;

use fleet_core::{FixKind, Imei, LatLon, PositionFix, PositionSource};
use fleet_http::auth::Role;
use fleet_ingest::{Record, Writer, WriterConfig};
use support::{App, As};
use tokio_util::sync::CancellationToken;

fn fix(base: chrono::DateTime<chrono::Utc>, n: i64) -> Record {
    Record::Position(PositionFix {
        imei: Imei::parse("861234567800077").expect("imei"),
        gps_time: base + chrono::TimeDelta::seconds(n),
        location: LatLon::new(-1.2921, 36.8219).expect("valid"),
        speed_kmh: Some(30.0),
        course_deg: None,
        altitude_m: None,
        ignition: Some(true),
        satellites: None,
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: None,
        odometer_m: None,
        source: PositionSource::Push,
        extra: None,
    })
}

#[tokio::test]
async fn metrics_show_routes_latencies_ingest_counters_and_gauges_without_a_login() {
    let app = App::start().await;
    let id = app.user("mia", Role::Viewer).await;
    let who = As::Bearer(app.token(id).await);
    let device = app.device("861234567800055", "Van").await;
    for _ in 0..3 {
        let (status, _) = app.get(&format!("/devices/{device}"), &who).await;
        assert_eq!(status, 200);
    }
    let (status, _) = app.get("/devices/999999", &who).await;
    assert_eq!(status, 404);

    let stop = CancellationToken::new();
    let (writer, _) = Writer::spawn(app.db.pool.clone(), WriterConfig::default(), stop.clone());
    let base = chrono::Utc::now() - chrono::TimeDelta::seconds(100);
    let report =
        writer.write("test.metrics", vec![fix(base, 1), fix(base, 2)]).await.expect("stored");
    assert_eq!(report.new, 2);
    writer.write("test.metrics", vec![fix(base, 1)]).await.expect("stored");

    let resp = reqwest::get(format!("http://{}/metrics", app.addr)).await.expect("metrics");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().expect("ct").starts_with("text/plain"));
    let text = resp.text().await.expect("text");
    let has = |needle: &str| {
        assert!(text.lines().any(|l| l.contains(needle)), "{needle} missing in:\n{text}");
    };
    let line = |prefix: &str| -> f64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}:\n{text}"));
        l.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value")
    };
    assert!(
        line(
            r#"fleetd_http_requests_total{method="GET",route="/api/v1/devices/{id}",status="200"}"#
        ) >= 3.0
    );
    has(r#"fleetd_http_requests_total{method="GET",route="/api/v1/devices/{id}",status="404"}"#);
    assert!(!text.contains(&format!("/devices/{device}\"")), "raw URIs are no labels");
    has(
        r#"fleetd_http_request_duration_seconds_bucket{method="GET",route="/api/v1/devices/{id}",le="0.005"}"#,
    );
    has(r#"fleetd_http_request_duration_seconds_count{method="GET",route="/api/v1/devices/{id}"}"#);
    assert_eq!(
        line(r#"fleetd_ingest_records_total{channel="test.metrics",outcome="received"}"#),
        3.0
    );
    assert_eq!(line(r#"fleetd_ingest_records_total{channel="test.metrics",outcome="new"}"#), 2.0);
    assert_eq!(
        line(r#"fleetd_ingest_records_total{channel="test.metrics",outcome="duplicate"}"#),
        1.0
    );
    has("fleetd_writer_flush_seconds_bucket");
    has("fleetd_writer_queue_depth");
    assert!(line(r#"fleetd_db_pool_connections{state="size"}"#) >= 1.0);
    has(r#"fleetd_db_pool_connections{state="idle"}"#);
    // the two new fixes marked the device for the trip builder
    assert!(line("fleetd_trip_builder_lag_seconds") >= 0.0);
    let marks: i64 = sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&app.db.pool)
        .await
        .expect("backlog");
    assert_eq!(marks, 1);
    stop.cancel();
}

/// Sends one request with `method` on a connection of its own and reads the answer.
async fn raw_request(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_long_methods_do_not_grow_the_metrics() {
    use rand::{Rng, SeedableRng};
    let app = App::start().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    for i in 0..500 {
        let len = rng.gen_range(2048..4096);
        let method: String = (0..len).map(|_| char::from(rng.gen_range(b'A'..=b'Z'))).collect();
        let path = if i % 2 == 0 { "/healthz" } else { "/api/v1/devices" };
        let answer = raw_request(app.addr, &method, path).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{}", &answer[..answer.len().min(80)]);
    }
    let resp = reqwest::get(format!("http://{}/metrics", app.addr)).await.expect("metrics");
    let text = resp.text().await.expect("text");
    assert!(text.len() < 256 * 1024, "/metrics grew to {} bytes", text.len());
    let fixed = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];
    for line in text.lines().filter(|l| l.starts_with("fleetd_http_request")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no method label: {line}"));
        assert!(fixed.contains(&method), "method label {method:.40}… in {line:.120}");
    }
    assert!(text.contains("method=\"other\""), "the odd methods are counted as other");
}
