//! Exports cannot starve ingest: clients that open track exports and never read them hold no
//! more than the export limit allows, only from the API's own pool, and are cut off after the
//! stall timeout, while pushes, health and the rest of the API keep answering within a second.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use fleet_accounts::users::{self, NewUser};
use fleet_accounts::{token, Role};
use fleet_testkit::TestDb;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const PUSH_TOKEN: &str = "export-test-push";
const IMEI: &str = "861234567800777";
/// Fixes seeded for the device: a CSV of ~15 MB, far more than the socket buffers hold.
const FIXES: i64 = 170_000;
const STALL_MS: u64 = 2_500;

async fn seed(db: &TestDb) -> i32 {
    let device_id: i32 = sqlx::query_scalar(
        "insert into fleet.devices (imei, name) values ($1, 'exported') returning device_id",
    )
    .bind(IMEI)
    .fetch_one(&db.pool)
    .await
    .expect("device");
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, source)
         select $1, now() - interval '24 hours' + make_interval(secs => n * 0.5),
                -1.29 + n * 1e-6, 36.82, 40, 'push'
         from generate_series(1, $2) n",
    )
    .bind(device_id)
    .bind(FIXES)
    .execute(&db.pool)
    .await
    .expect("fixes");
    device_id
}

/// Sends a GET for `path` on a socket with a tiny receive buffer and returns it with the first
/// bytes of the answer (its status line and headers, at least).
async fn open_unread(addr: SocketAddr, path: &str, bearer: &str) -> (TcpStream, String) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stream = socket.connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: fleetd\r\nAuthorization: Bearer {bearer}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("answer within 10 s")
            .expect("read");
        assert!(n > 0, "closed before the headers");
        head.extend_from_slice(&buf[..n]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// Reads what is left until the server closes the connection.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut rest))
        .await
        .expect("the server ends the transfer")
        .expect("read");
    rest
}

async fn active_exports(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'
           and query like '%from fleet.positions%where device_id = $1 and gps_time >= $2%'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_that_are_never_read_are_capped_and_cut_off_while_pushes_still_succeed() {
    let db = TestDb::migrated().await;
    let mut cmd = support::fleetd();
    cmd.args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("FLEETD_PUSH_TOKEN", PUSH_TOKEN)
        // small budgets: two leases (trip builder, ops alerts), the writer and the trip steps
        // share four; before the API had its own pool, stalled exports took them all
        .env("FLEETD_DB_MAX_CONNECTIONS", "4")
        .env("FLEETD_DB_API_CONNECTIONS", "3")
        .env("FLEETD_EXPORTS_MAX", "2")
        .env("FLEETD_EXPORTS_PER_USER", "4")
        .env("FLEETD_EXPORT_STALL_TIMEOUT_MS", STALL_MS.to_string())
        .env("FLEETD_DB_ACQUIRE_TIMEOUT_MS", "5000")
        .env("FLEETD_LOG", "warn");
    let (fleetd, base) = support::Running::serve(&mut cmd);
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("address");
    let device_id = seed(&db).await;
    let user = users::create(
        &db.pool,
        NewUser {
            username: "exporter".into(),
            display_name: "Exporter".into(),
            role: Role::Viewer,
            password: "exporter-password".into(),
        },
    )
    .await
    .expect("user")
    .user_id;
    let bearer = token::create(&db.pool, user, "exports", None).await.expect("token").token;
    let from = (Utc::now() - TimeDelta::days(2)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let path = format!("/api/v1/devices/{device_id}/track?from={from}&to={to}&format=csv");

    // seven slow readers, as in the attack: two exports run (and stall), five are refused
    let seeded: i64 =
        sqlx::query_scalar("select count(*) from fleet.positions where device_id = $1")
            .bind(device_id)
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert_eq!(seeded, FIXES);
    let started = Instant::now();
    let mut opened = Vec::new();
    for _ in 0..7 {
        opened.push(open_unread(addr, &path, &bearer).await);
    }
    let (mut stalled, refused): (Vec<_>, Vec<_>) =
        opened.into_iter().partition(|(_, head)| head.starts_with("HTTP/1.1 200"));
    assert_eq!(
        stalled.len(),
        2,
        "{:?}; {} exports active",
        stalled.iter().map(|r| &r.1).collect::<Vec<_>>(),
        active_exports(&db).await
    );
    for (_, head) in &refused {
        assert!(head.starts_with("HTTP/1.1 429"), "{head}");
        assert!(head.to_ascii_lowercase().contains("retry-after: "), "{head}");
        assert!(head.contains("application/problem+json"), "{head}");
    }
    assert_eq!(active_exports(&db).await, 2, "the stalled exports hold their queries");

    // meanwhile ingest, health and the rest of the API answer within a second
    let http = reqwest::Client::new();
    let t = Utc::now() - TimeDelta::seconds(3);
    let list = json!([{"deviceImei": IMEI, "gpsTime": t.format("%Y-%m-%d %H:%M:%S").to_string(),
        "lat": -1.2921, "lng": 36.8219, "gpsSpeed": 35, "direction": 180, "acc": 1,
        "satelliteNum": 9, "postType": 1}])
    .to_string();
    for round in 0..3 {
        let asked = Instant::now();
        let push = http
            .post(format!("{base}/push/pushgps"))
            .form(&[("token", PUSH_TOKEN), ("data_list", &list)])
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .expect("push answered within a second");
        assert_eq!(push.status(), 200, "push {round}");
        for path in ["/healthz", "/readyz", "/api/v1/devices"] {
            let resp = http
                .get(format!("{base}{path}"))
                .bearer_auth(&bearer)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} within a second: {e}"));
            assert_eq!(resp.status(), 200, "{path}");
        }
        assert!(asked.elapsed() < Duration::from_secs(1), "round {round}: {:?}", asked.elapsed());
    }
    let stored: i64 =
        sqlx::query_scalar("select count(*) from fleet.positions where device_id = $1")
            .bind(device_id)
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert_eq!(stored, FIXES + 1, "the pushed fix is durable");

    // after the stall timeout the exports' queries are gone and their connections returned
    while active_exports(&db).await > 0 {
        assert!(
            started.elapsed() < Duration::from_millis(STALL_MS + 5_000),
            "stalled exports still hold their queries after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and their transfers end cut short: no closing chunk of the chunked body
    for (stream, _) in &mut stalled {
        let rest = read_to_close(stream, Duration::from_secs(20)).await;
        assert!(!rest.ends_with(b"\r\n0\r\n\r\n"), "a stalled export must not look complete");
        assert!(rest.len() < 170_000 * 60, "{} bytes", rest.len());
    }
    let metrics = http.get(format!("{base}/metrics")).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("metrics text");
    assert!(
        metrics.contains("fleetd_exports_aborted_total{reason=\"stalled\"} 2"),
        "{}",
        metrics.lines().filter(|l| l.contains("export")).collect::<Vec<_>>().join("\n")
    );

    // the places are free again: a complete export works
    let short_from = (Utc::now() - TimeDelta::hours(2)).format("%Y-%m-%dT%H:%M:%SZ");
    let resp = http
        .get(format!(
            "{base}/api/v1/devices/{device_id}/track?from={short_from}&to={to}&format=csv"
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.expect("a complete body");
    assert!(csv.lines().count() > 1000, "{} lines", csv.lines().count());

    fleetd.stop(Duration::from_secs(20));
}
