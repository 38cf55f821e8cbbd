//! `fleetd sim` as documented: serves the vendor API to a real client, pushes to a receiver,
//! stops on SIGTERM.

mod support;

use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use fleet_sim::server::default_credentials;
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use nix::sys::signal::Signal;
use support::{fleetd, spawn_until, stop};

fn start_sim(extra: &[&str]) -> (Child, String) {
    let mut c = fleetd();
    c.args(["sim", "--vehicles", "5", "--seed", "7", "--listen", "127.0.0.1:0"]).args(extra);
    spawn_until(&mut c, "fleetd sim listening on ", Duration::from_secs(30))
}

fn stop_sim(child: Child) {
    stop(child, Signal::SIGTERM, Duration::from_secs(10));
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
    stop_sim(child);
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
    stop_sim(child);
}
