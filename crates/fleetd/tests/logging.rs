//! `FLEETD_LOG_FORMAT=json`: every line fleetd logs is one JSON object, and a request's lines
//! carry its span (method, route, request id) with the response's status and latency.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use fleet_testkit::TestDb;
use serde_json::Value;
use support::fleetd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let mut child = fleetd()
        .args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("FLEETD_MAP_TILE_URL", "none")
        .env("FLEETD_LOG_FORMAT", "json")
        // the access line of each request is at debug
        .env("FLEETD_LOG", "info,fleet_http::access=debug")
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("spawn fleetd");
    let stdout = child.stdout.take().expect("stdout");
    // read stdout to its end: fleetd fails writing to a closed pipe
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("fleetd listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let base = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(60)));
    let Ok(base) = base else {
        let _ = child.kill();
        panic!("fleetd did not start: {}", std::fs::read_to_string(&log_path).unwrap_or_default())
    };

    let resp = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "json-log-1")
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "json-log-1");
    tokio::task::block_in_place(|| {
        support::stop(child, nix::sys::signal::Signal::SIGTERM, Duration::from_secs(30))
    });

    let text = std::fs::read_to_string(&log_path).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let access = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request finished")
        .unwrap_or_else(|| panic!("an access line: {text}"));
    assert_eq!(access["target"], "fleet_http::access");
    assert_eq!(access["level"], "DEBUG");
    assert_eq!(access["fields"]["status"], 200);
    assert!(access["fields"]["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{access}");
    let span = &access["span"];
    assert_eq!(span["name"], "request", "{access}");
    assert_eq!(span["method"], "GET", "{access}");
    assert_eq!(span["route"], "/healthz", "{access}");
    assert_eq!(span["request_id"], "json-log-1", "{access}");
}
