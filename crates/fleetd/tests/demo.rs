//! `fleetd demo` on the embedded database: comes up ready with a demo admin who can log in,
//! stops PostgreSQL on SIGTERM.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{fleetd, spawn_until, spawn_until_all, stop};

/// Starts fleetd with the given arguments and waits (bounded) for its `listening on` line.
fn start(args: &[&str], data_dir: &std::path::Path) -> (Child, String) {
    spawn_until(&mut command(args, data_dir), "fleetd listening on ", Duration::from_secs(120))
}

fn command(args: &[&str], data_dir: &std::path::Path) -> std::process::Command {
    let mut c = fleetd();
    c.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("FLEETD_TRIPS_INTERVAL_S", "1")
        .current_dir(data_dir);
    c
}

fn pg_running(pgdata: &std::path::Path) -> bool {
    pgdata.join("postmaster.pid").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_on_the_embedded_database_is_ready_and_sigterm_stops_it_and_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let pgdata = dir.path().join("postgres/pgdata");

    let (child, lines) = spawn_until_all(
        &mut command(&["demo"], dir.path()),
        &["fleetd listening on ", "  login      user admin, password "],
        Duration::from_secs(120),
    );
    let url = lines[0].clone();
    let resp = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["migrations"], "current");

    // the printed demo admin logs in to the API
    let password = lines[1].split_whitespace().next().expect("password").to_owned();
    let login = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let live = reqwest::Client::new()
        .get(format!("{url}/api/v1/fleet/live"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("live");
    assert_eq!(live.status().as_u16(), 200);
    // the web apps are served, and responses are compressed for browsers that accept it, the
    // live stream excepted (an event stream must reach the client event by event)
    for path in ["/now", "/ops", "/api/v1/fleet/live"] {
        let resp = reqwest::Client::new()
            .get(format!("{url}{path}"))
            .header("cookie", &cookie)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect(path);
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(
            resp.headers().get("content-encoding").map(|v| v.as_bytes()),
            Some(&b"gzip"[..]),
            "{path}"
        );
    }
    let stream = reqwest::Client::new()
        .get(format!("{url}/api/v1/stream"))
        .header("cookie", &cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert!(stream.headers().get("content-encoding").is_none());
    drop(stream);
    assert!(pg_running(&pgdata), "the embedded cluster lives in the data directory");

    // the built-in simulator pushes to fleetd's own receivers: positions arrive within seconds
    let root = dir.path().join("postgres");
    let password = std::fs::read_to_string(root.join("superuser.password")).expect("password");
    let port = std::fs::read_to_string(root.join("port")).expect("port");
    let url = format!("postgres://fleetd:{}@127.0.0.1:{}/fleetd", password.trim(), port.trim());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("connect");
    let mut stored = 0i64;
    for _ in 0..300 {
        stored = sqlx::query_scalar("select count(*) from fleet.positions")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        if stored > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored > 0, "no pushed positions within 60 s");
    let devices: i64 = sqlx::query_scalar("select count(*) from fleet.devices")
        .fetch_one(&mut conn)
        .await
        .expect("devices");
    assert!(devices > 0);
    // the trip builder runs in the demo: the devices' fixes become stops and trips
    let mut segments = 0i64;
    for _ in 0..300 {
        segments = sqlx::query_scalar(
            "select (select count(*) from fleet.stops) + (select count(*) from fleet.trips)",
        )
        .fetch_one(&mut conn)
        .await
        .expect("segments");
        if segments > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(segments > 0, "no trips or stops derived within 60 s");
    drop(conn);

    stop(child, Signal::SIGTERM, Duration::from_secs(60));
    assert!(!pg_running(&pgdata), "PostgreSQL stopped with fleetd");
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err(), "nothing listens any more");

    // the next start reuses the cluster: the schema is still there, nothing to migrate
    let (child, url) = start(&["serve"], dir.path());
    let resp = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    assert_eq!(resp.status().as_u16(), 200);
    stop(child, Signal::SIGINT, Duration::from_secs(60));
    assert!(!pg_running(&pgdata));
}
