//! The silent-token-expiry scenario: `fleetd serve` polls the simulator, the simulator starts
//! refusing the account, and fleetd raises one ops alert (webhook, /readyz, /metrics); when the
//! simulator accepts the account again the alert clears, once.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use fleet_sim::server::{default_credentials, SimConfig, SimState};
use fleet_sim::Fleet;
use fleet_testkit::eventually;
use fleet_testkit::TestDb;
use support::{fleetd, Running};
use tokio_util::sync::CancellationToken;

type Posts = Arc<Mutex<Vec<serde_json::Value>>>;

async fn webhook_receiver() -> (String, Posts) {
    let posts: Posts = Arc::default();
    let app = Router::new()
        .route(
            "/alerts",
            post(|State(p): State<Posts>, Json(body): Json<serde_json::Value>| async move {
                p.lock().expect("lock").push(body);
                "ok"
            }),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

fn states(posts: &Posts, alert: &str) -> Vec<String> {
    posts
        .lock()
        .expect("lock")
        .iter()
        .filter(|p| p["alert"] == alert)
        .map(|p| p["state"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// How many poll jobs have had a successful run.
/// fleetd's `/readyz` body and `/metrics` text.
async fn readiness_and_metrics(http: &reqwest::Client, base: &str) -> (serde_json::Value, String) {
    let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
    let ready = ready.json().await.expect("json");
    let metrics = http.get(format!("{base}/metrics")).send().await.expect("metrics");
    (ready, metrics.text().await.expect("text"))
}

async fn jobs_succeeded(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(distinct job) from fleet.ingestion_log
         where status = 'ok' and detail ->> 'source' = 'poller'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("count")
}

/// The simulator on a runtime of its own: its handlers compute tracks synchronously, and must
/// not starve the test's webhook receiver (or the other way round).
struct SimServer {
    state: Arc<SimState>,
    url: String,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("sim runtime");
            rt.block_on(async move {
                let state = SimState::new(Arc::new(Fleet::new(5, 2)), SimConfig::default());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let url = format!("http://{}/route/rest", listener.local_addr().expect("addr"));
                tx.send((state.clone(), url)).expect("hand over");
                let _ = fleet_sim::serve(listener, state, stopped.cancelled_owned()).await;
            });
        });
        let (state, url) = rx.recv().expect("sim started");
        Self { state, url, stop, thread: Some(thread) }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ops_alert_fires_once_when_the_token_is_refused_and_clears_once_on_recovery() {
    let db = TestDb::migrated().await;
    let sim_server = SimServer::start();
    let (sim, sim_url) = (sim_server.state.clone(), sim_server.url.clone());
    let (hook, posts) = webhook_receiver().await;

    let c = default_credentials();
    let mut cmd = fleetd();
    cmd.args(["serve", "--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("FLEETD_TRACKSOLID_URL", &sim_url)
        .env("FLEETD_TRACKSOLID_APP_KEY", &c.app_key)
        .env("FLEETD_TRACKSOLID_APP_SECRET", c.app_secret.expose())
        .env("FLEETD_TRACKSOLID_USER", &c.user)
        .env("FLEETD_TRACKSOLID_PASSWORD", c.password.expose())
        // only the live poll repeats during the test; the others ran once at start
        .env("FLEETD_POLL_LIVE_S", "5")
        .env("FLEETD_POLL_TRACK_S", "86400")
        .env("FLEETD_POLL_ALARMS_S", "86400")
        .env("FLEETD_POLL_TRIPS_S", "86400")
        .env("FLEETD_POLL_DEVICES_S", "86400")
        .env("FLEETD_ALERT_WEBHOOKS", &hook)
        .env("FLEETD_ALERT_FAILURES", "2")
        .env("FLEETD_ALERT_CHECK_S", "1")
        .env("FLEETD_ALERT_STALE_AFTER_S", "86400")
        .env("FLEETD_LOG", "warn");
    let (fleetd, base) = Running::serve(&mut cmd);
    let http = reqwest::Client::new();

    // every job's first run is done, so from here on only the live poll runs
    eventually("a successful run of every poll job", Duration::from_secs(90), async || {
        jobs_succeeded(&db).await == 5
    })
    .await;
    assert!(posts.lock().expect("lock").is_empty(), "no alert while polling works");

    // the account is refused from now on: tokens revoked, logins fail
    sim.set_rejecting(true);
    eventually("the alert", Duration::from_secs(60), async || {
        states(&posts, "ingest_failing:poll.live") == ["raised"]
    })
    .await;
    let raised = posts.lock().expect("lock")[0].clone();
    assert!(raised["text"].as_str().unwrap_or("").contains("poll.live"), "{raised}");
    let (ready, metrics) = readiness_and_metrics(&http, &base).await;
    assert_eq!(ready["alerts"][0]["alert"], "ingest_failing:poll.live", "{ready}");
    assert!(
        metrics.contains("fleetd_ops_alert_active{alert=\"ingest_failing:poll.live\"} 1"),
        "{metrics}"
    );
    // it keeps failing, and the alert is not repeated
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(states(&posts, "ingest_failing:poll.live"), ["raised"]);

    // the client waits 60 s after a refused login before it logs in again (repeated wrong
    // passwords can lock a vendor account), so recovery shows within about a minute
    sim.set_rejecting(false);
    eventually("the clear", Duration::from_secs(120), async || {
        states(&posts, "ingest_failing:poll.live") == ["raised", "cleared"]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(states(&posts, "ingest_failing:poll.live"), ["raised", "cleared"], "cleared once");
    let all = posts.lock().expect("lock").clone();
    assert_eq!(all.len(), 2, "no other alert: {all:?}");
    let (ready, metrics) = readiness_and_metrics(&http, &base).await;
    assert_eq!(ready["alerts"], serde_json::json!([]), "{ready}");
    assert!(
        metrics.contains("fleetd_ops_alert_active{alert=\"ingest_failing:poll.live\"} 0"),
        "{metrics}"
    );

    fleetd.stop(Duration::from_secs(30));
    drop(sim_server);
}
