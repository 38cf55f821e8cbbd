//! Login under attack, over real HTTP and a real database: credentials of an impossible form
//! are refused before they are stored or logged whole; failed logins delay the guessing
//! address, never the account's owner elsewhere; trusted proxies are explicit; the limits live
//! in the database, shared by every process.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use fleet_http::auth::Role;
use fleet_http::{AppState, Backoff, LoginLimits};
use serde_json::json;
use support::{kind, password_of, App};

/// Limits where delays start after `free` failures of an account from one address; the
/// address limit is out of the way unless a test lowers it.
fn limits(free: u32, base: Duration) -> LoginLimits {
    let day = Duration::from_secs(86_400);
    let backoff =
        Backoff { free_failures: free, base_delay: base, max_delay: day, decay_every: day };
    LoginLimits {
        per_account_address: backoff,
        per_address: Backoff { free_failures: 1000, ..backoff },
    }
}

fn trusting_loopback(state: AppState) -> AppState {
    state.with_trusted_proxies(["127.0.0.1/32".parse().expect("net")])
}

/// A login posted to `addr` from the local address `from`, naming `xff` as the client.
async fn login_at(
    addr: SocketAddr,
    from: &str,
    xff: Option<&str>,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let local: IpAddr = from.parse().expect("ip");
    let client = reqwest::Client::builder().local_address(local).build().expect("client");
    let mut req = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.expect("login")
}

async fn status_of(resp: reqwest::Response) -> u16 {
    resp.status().as_u16()
}

async fn throttle_rows(app: &App) -> i64 {
    sqlx::query_scalar("select count(*) from fleet.login_throttle")
        .fetch_one(&app.db.pool)
        .await
        .expect("count")
}

/// Moves every counted failure `secs` into the past, as if that much time had passed.
async fn let_time_pass(app: &App, secs: u64) {
    sqlx::query(
        "update fleet.login_throttle
            set last_failure_at = last_failure_at - make_interval(secs => $1),
                forget_at = forget_at - make_interval(secs => $1)",
    )
    .bind(secs as f64)
    .execute(&app.db.pool)
    .await
    .expect("age");
}

#[tokio::test]
async fn a_huge_or_forged_username_is_refused_whole_never_stored_and_logged_only_as_an_escaped_excerpt(
) {
    let logs = fleet_testkit::logs::capture(tracing::Level::INFO);
    let app = App::start().await;
    app.user("admin", Role::Admin).await;

    let huge = format!("{}TAIL", "a".repeat(1_900_000));
    let forged = "mallory\nINFO fleet_http::api::auth: logged in user.name=admin";
    let flood = (0..40).map(|i| {
        let username = if i % 2 == 0 { huge.as_str() } else { forged };
        login_at(app.addr, "127.0.0.1", None, username, "whatever1")
    });
    // the flood and a health check at once: the check answers within a second
    let health = async {
        let started = std::time::Instant::now();
        let resp = reqwest::get(format!("http://{}/healthz", app.addr)).await.expect("healthz");
        (resp.status().as_u16(), started.elapsed())
    };
    let (responses, (health_status, health_took)) =
        tokio::join!(futures_util::future::join_all(flood), health);
    assert_eq!(health_status, 200);
    assert!(health_took < Duration::from_secs(1), "/healthz took {health_took:?}");
    for resp in responses {
        assert!(resp.headers().get("set-cookie").is_none());
        let (status, body) = support::json(resp).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{body}");
        assert_eq!(body["errors"][0]["field"], "username", "{body}");
        assert!(body.to_string().len() < 1000, "the name is not echoed: {body}");
    }
    let (status, _) =
        support::json(login_at(app.addr, "127.0.0.1", None, "admin", &"p".repeat(100_000)).await)
            .await;
    assert_eq!(status, 422, "a password longer than any account can have");
    assert_eq!(throttle_rows(&app).await, 0, "nothing was stored for the limiter");

    let text = logs.text();
    println!("41 refused logins (20 with a 1.9 MB name) and one login logged {} bytes", text.len());
    assert!(!text.contains(&"a".repeat(100)), "the huge name is cut");
    assert!(!text.contains("TAIL"));
    assert!(text.len() < 40 * 1024, "40 refused logins logged {} bytes", text.len());
    assert!(text.contains("…(1900004 chars)"), "the length is noted: {text}");
    assert!(
        !text.contains("\nINFO fleet_http::api::auth: logged in"),
        "a newline in a name cannot start a log line:\n{text}"
    );
    assert!(text.contains(r#"mallory\u{a}INFO"#), "escaped: {text}");
    // the service answers as before
    assert_eq!(
        status_of(login_at(app.addr, "127.0.0.1", None, "admin", &password_of("admin")).await)
            .await,
        200
    );
}

#[tokio::test]
async fn the_owner_logs_in_from_another_address_while_the_attackers_address_is_delayed() {
    let app = App::start_with(|s| {
        trusting_loopback(s).with_login_limits(limits(3, Duration::from_secs(60)))
    })
    .await;
    app.user("ann", Role::Admin).await;
    let attacker = Some("203.0.113.5");
    for _ in 0..3 {
        let resp = login_at(app.addr, "127.0.0.1", attacker, "ann", "guess-guess").await;
        assert_eq!(resp.status(), 401);
    }
    // the attacker is delayed, even with the right password
    let resp = login_at(app.addr, "127.0.0.1", attacker, "ann", &password_of("ann")).await;
    let retry: u64 = resp.headers()["retry-after"].to_str().expect("ascii").parse().expect("s");
    assert!((59..=60).contains(&retry), "{retry}");
    let (status, body) = support::json(resp).await;
    assert_eq!((status, kind(&body)), (429, "rate-limited"), "{body}");
    // the owner, elsewhere, is not
    let owner =
        login_at(app.addr, "127.0.0.1", Some("198.51.100.7"), "ann", &password_of("ann")).await;
    assert_eq!(owner.status(), 200);
    // and another account from the attacker's address is not delayed by ann's failures
    app.user("ben", Role::Viewer).await;
    let ben = login_at(app.addr, "127.0.0.1", attacker, "ben", &password_of("ben")).await;
    assert_eq!(ben.status(), 200);
}

#[tokio::test]
async fn a_rotated_forwarded_for_is_ignored_from_an_untrusted_peer_and_honoured_from_a_trusted_proxy(
) {
    let app = App::start_with(|s| {
        trusting_loopback(s).with_login_limits(limits(3, Duration::from_secs(60)))
    })
    .await;
    app.user("cat", Role::Viewer).await;
    // 127.0.0.2 is not a trusted proxy: its X-Forwarded-For is the client's own invention
    let mut statuses = Vec::new();
    for i in 0..5 {
        let xff = format!("198.51.100.{i}");
        statuses.push(
            status_of(login_at(app.addr, "127.0.0.2", Some(&xff), "cat", "guess-guess").await)
                .await,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "counted against the peer 127.0.0.2");
    // 127.0.0.1 is: the client is the right-most hop it did not add itself, so a client
    // rotating what it sends left of that gains nothing
    let mut statuses = Vec::new();
    for i in 0..5 {
        let xff = format!("10.9.9.{i}, 203.0.113.77");
        statuses.push(
            status_of(login_at(app.addr, "127.0.0.1", Some(&xff), "cat", "guess-guess").await)
                .await,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "counted against 203.0.113.77");
    // and a different real client behind the proxy is a different address
    let other =
        login_at(app.addr, "127.0.0.1", Some("203.0.113.78"), "cat", &password_of("cat")).await;
    assert_eq!(other.status(), 200);
    let addresses: Vec<String> = sqlx::query_scalar(
        "select address from fleet.login_throttle where username = 'cat' order by address",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("rows");
    assert_eq!(addresses, ["127.0.0.2", "203.0.113.77"]);
}

#[tokio::test]
async fn without_trusted_proxies_forwarded_for_is_never_believed_not_even_from_loopback() {
    let app = App::start_with(|s| s.with_login_limits(limits(2, Duration::from_secs(60)))).await;
    app.user("dan", Role::Viewer).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let xff = format!("198.51.100.{i}");
        statuses.push(
            status_of(login_at(app.addr, "127.0.0.1", Some(&xff), "dan", "guess-guess").await)
                .await,
        );
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
}

#[tokio::test]
async fn two_processes_on_one_database_share_the_limit() {
    let app = App::start_with(|s| s.with_login_limits(limits(4, Duration::from_secs(60)))).await;
    app.user("eve", Role::Viewer).await;
    let other =
        app.another_process(|s| s.with_login_limits(limits(4, Duration::from_secs(60)))).await;
    for addr in [app.addr, other.addr, app.addr, other.addr] {
        assert_eq!(
            status_of(login_at(addr, "127.0.0.1", None, "eve", "guess-guess").await).await,
            401
        );
    }
    for addr in [app.addr, other.addr] {
        let resp = login_at(addr, "127.0.0.1", None, "eve", &password_of("eve")).await;
        assert_eq!(resp.status(), 429, "four failures across both processes");
    }
}

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_limit() {
    let app = App::start_with(|s| s.with_login_limits(limits(3, Duration::from_secs(600)))).await;
    app.user("fay", Role::Viewer).await;
    let guesses = (0..24).map(|i| {
        login_at(
            app.addr,
            "127.0.0.1",
            None,
            "fay",
            if i % 2 == 0 { "guess-one" } else { "guess-two" },
        )
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(guesses).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 21, "{statuses:?}");
}

#[tokio::test]
async fn delays_grow_with_each_failure_and_decay_after_a_quiet_period() {
    let backoff = Backoff {
        free_failures: 2,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        decay_every: Duration::from_secs(3600),
    };
    let limits = LoginLimits {
        per_account_address: backoff,
        per_address: Backoff { free_failures: 1000, ..backoff },
    };
    let app = App::start_with(|s| s.with_login_limits(limits)).await;
    app.user("gus", Role::Viewer).await;
    let guess = || login_at(app.addr, "127.0.0.1", None, "gus", "guess-guess");
    for _ in 0..2 {
        assert_eq!(guess().await.status(), 401, "free failures");
    }
    let mut waits = Vec::new();
    for _ in 0..6 {
        let resp = guess().await;
        assert_eq!(resp.status(), 429);
        let retry: u64 = resp.headers()["retry-after"].to_str().expect("ascii").parse().expect("s");
        waits.push(retry);
        // the next attempt comes once the delay has passed, and fails again
        let_time_pass(&app, retry).await;
        assert_eq!(guess().await.status(), 401);
    }
    assert_eq!(waits, [1, 2, 4, 8, 8, 8], "doubling up to the cap");
    // an hour without failures forgets one failure, and the delay owed has long passed
    let_time_pass(&app, 3600).await;
    let resp = guess().await;
    assert_eq!(resp.status(), 401, "allowed after the quiet hour");
    let_time_pass(&app, 3600 * 10).await;
    assert_eq!(
        login_at(app.addr, "127.0.0.1", None, "gus", &password_of("gus")).await.status(),
        200
    );
    // counts that have decayed to nothing are deleted by a later login
    assert_eq!(
        status_of(login_at(app.addr, "127.0.0.1", None, "zed", "guess-guess").await).await,
        401
    );
    let_time_pass(&app, 3600 * 24).await;
    assert_eq!(
        status_of(login_at(app.addr, "127.0.0.1", None, "gus", "guess-guess").await).await,
        401
    );
    let left: Vec<String> =
        sqlx::query_scalar("select username from fleet.login_throttle order by username")
            .fetch_all(&app.db.pool)
            .await
            .expect("rows");
    assert_eq!(left, ["", "gus"], "the address's own row and the new attempt's");
}

#[tokio::test]
async fn one_address_spraying_many_accounts_is_delayed_across_accounts() {
    let backoff = Backoff {
        free_failures: 3,
        base_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(600),
        decay_every: Duration::from_secs(3600),
    };
    let limits = LoginLimits {
        per_account_address: Backoff { free_failures: 100, ..backoff },
        per_address: backoff,
    };
    let app = App::start_with(|s| trusting_loopback(s).with_login_limits(limits)).await;
    app.user("hal", Role::Viewer).await;
    let sprayer = Some("203.0.113.9");
    for name in ["x1", "x2", "x3"] {
        assert_eq!(
            status_of(login_at(app.addr, "127.0.0.1", sprayer, name, "guess-guess").await).await,
            401
        );
    }
    assert_eq!(
        status_of(login_at(app.addr, "127.0.0.1", sprayer, "hal", &password_of("hal")).await).await,
        429
    );
    assert_eq!(
        status_of(
            login_at(app.addr, "127.0.0.1", Some("198.51.100.1"), "hal", &password_of("hal")).await
        )
        .await,
        200,
        "another address"
    );
}
