//! `/readyz` and `/metrics` do not hand the database to whoever polls them: their database
//! results are reused for a while and shared by concurrent callers, and `/metrics` can require
//! a token.

mod support;

use std::time::Duration;

use fleet_http::AppState;
use futures_util::future::join_all;
use support::App;

/// Starts the API with `configure` applied; returns it and a handle on its state.
async fn start(configure: impl FnOnce(AppState) -> AppState) -> (App, AppState) {
    let mut kept = None;
    let app = App::start_with(|s| {
        let s = configure(s);
        kept = Some(s.clone());
        s
    })
    .await;
    (app, kept.expect("state"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_repeated_probes_ask_the_database_once_per_interval() {
    let (app, state) = start(|s| s.with_probe_ttl(Duration::from_secs(60))).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", app.addr);
    let answers = join_all((0..50).map(|_| client.get(url("/readyz")).send())).await;
    for a in answers {
        assert_eq!(a.expect("readyz").status(), 200);
    }
    for _ in 0..20 {
        assert_eq!(client.get(url("/readyz")).send().await.expect("readyz").status(), 200);
    }
    let scrapes = join_all((0..20).map(|_| client.get(url("/metrics")).send())).await;
    for s in scrapes {
        assert_eq!(s.expect("metrics").status(), 200);
    }
    assert_eq!(
        state.probe_refreshes(),
        (1, 1),
        "one database round each for 70 readyz and 20 scrapes"
    );
}

#[tokio::test]
async fn with_a_metrics_token_metrics_refuse_scrapes_without_it() {
    let token = "scrape-token-0123456789";
    let (app, state) =
        start(|s| s.with_metrics_token(Some(fleet_config::Secret::new(token.to_owned())))).await;
    assert!(!format!("{state:?}").contains(token), "the token never prints");
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics", app.addr);
    let bare = client.get(&url).send().await.expect("metrics");
    let (status, body) = support::json(bare).await;
    assert_eq!(status, 401, "{body}");
    let wrong = client.get(&url).bearer_auth("scrape-token-0123456780").send().await;
    assert_eq!(wrong.expect("metrics").status(), 401);
    let basic = client.get(&url).basic_auth("scrape", Some(token)).send().await;
    assert_eq!(basic.expect("metrics").status(), 401, "only a bearer token");
    let right = client.get(&url).bearer_auth(token).send().await.expect("metrics");
    assert_eq!(right.status(), 200);
    assert!(right.text().await.expect("text").contains("fleetd_db_pool_connections"));
}
