//! `fleetd sim` as documented: serves the vendor API to a real client, pushes to a receiver,
//! stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use fleet_sim::server::default_credentials;
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn start_sim(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetd"))
        .args(["sim", "--vehicles", "5", "--seed", "7", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn fleetd sim");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("fleetd sim listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("fleetd sim did not start within 30 s")
    });
    (child, url)
}

fn stop(mut child: Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "clean exit: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("fleetd sim did not stop within 10 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_sim_serves_its_fleet_to_a_client_with_the_documented_default_credentials() {
    let (child, url) = start_sim(&[]);
    let c = default_credentials();
    let client =
        TracksolidClient::new(ClientConfig::new(url, c.app_key, c.app_secret, c.user, c.password))
            .expect("client");
    let devices = client.device_list(None).await.expect("device list");
    assert_eq!(devices.len(), 5);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_sim_pushes_to_the_given_receiver() {
    let gps_pushes = Arc::new(AtomicUsize::new(0));
    let counter = gps_pushes.clone();
    let app = Router::new()
        .route(
            "/push/pushgps",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "{\"code\":0,\"msg\":\"success\"}"
                }
            }),
        )
        .fallback(|| async { "{\"code\":0}" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/push", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (child, _url) = start_sim(&["--push-to", &base, "--speedup", "600", "--push-delay-s", "0"]);
    for _ in 0..150 {
        if gps_pushes.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gps_pushes.load(Ordering::SeqCst) > 0, "GPS pushes arrive within 15 s at 600x");
    stop(child);
}
