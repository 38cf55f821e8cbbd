//! `fleetd serve` under a low open-files limit: it fits its connection limit under the limit at
//! start, and hundreds of connections sending half a request head neither exhaust its files nor
//! keep /healthz and pushes from answering within a second.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use fleet_testkit::TestDb;
use support::Running;

const PUSH_TOKEN: &str = "open-files-push-token";

/// fleetd with a clean environment, started by a shell that first lowers the open-files limit
/// (soft and hard) to `limit`.
fn fleetd_with_open_files(limit: u32) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_fleetd"));
    support::clean_environment(&mut c);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_beyond_the_open_files_limit_leave_health_and_pushes_answering() {
    let db = TestDb::migrated().await;
    let mut cmd = fleetd_with_open_files(256);
    cmd.args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("FLEETD_PUSH_TOKEN", PUSH_TOKEN)
        .env("FLEETD_LOG", "warn");
    let (fleetd, base) = Running::serve(&mut cmd);
    let host = base.trim_start_matches("http://").to_owned();

    // more half-sent heads than the process has files
    let mut attackers = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(&host).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: fleetd\r\n").expect("send");
        attackers.push(s);
    }

    let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client");
    let started = Instant::now();
    let health = http.get(format!("{base}/healthz")).send().await.expect("/healthz within 1 s");
    assert_eq!(health.status(), 200);
    let push = http
        .post(format!("{base}/push/pushgps"))
        .form(&[("token", PUSH_TOKEN), ("data_list", "[]")])
        .send()
        .await
        .expect("a push within 1 s");
    assert_eq!(push.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    drop(attackers);

    fleetd.stop(Duration::from_secs(30));
}
