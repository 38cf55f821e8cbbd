//! Who may hold live streams open: a cap per user and per server (429 beyond), streams ended
//! as soon as their credential ends (token revoked, user deactivated, logout) and at the
//! periodic re-check, notifications that do not come from fleetd's own sessions (or replay
//! one) ignored with a bounded number of warnings, and changes delivered while the API's pool
//! is exhausted.

mod support;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use fleet_accounts::{token, Role};
use fleet_config::Secret;
use fleet_http::StreamLimits;
use reqwest::Method;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use support::live::{fix, live, live_on, live_with, Client};
use support::{kind, As};

fn limits(per_user: usize, total: usize) -> StreamLimits {
    StreamLimits { per_user, total, ..StreamLimits::default() }
}

async fn user_id(l: &support::live::Live, username: &str) -> i32 {
    sqlx::query_scalar("select user_id from fleet.users where username = $1")
        .bind(username)
        .fetch_one(&l.app.db.pool)
        .await
        .expect("user")
}

#[tokio::test]
async fn the_sixth_stream_of_a_user_is_refused_while_other_users_still_get_theirs() {
    let l = live_with(|s| s.with_stream_limits(limits(5, 7))).await;
    // five streams over two tokens of one user: the limit is per user, not per credential
    let second = As::Bearer(l.app.token(user_id(&l, "vera").await).await);
    let mut open = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { &l.viewer } else { &second };
        open.push(Client::open_as(&l.app, who, "", None).await);
    }
    let resp = l.app.call(Method::GET, "/stream", &second).send().await.expect("sixth");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = support::json(resp).await;
    assert_eq!(kind(&body), "rate-limited");
    // another user still gets one, and the server keeps answering
    let other = l.app.user("otto", Role::Viewer).await;
    let other = As::Bearer(l.app.token(other).await);
    let _sixth = Client::open_as(&l.app, &other, "", None).await;
    let (status, _) = l.app.get("/healthz", &As::Anonymous).await;
    assert_eq!(status, 200);
    // the server's total (7) is reached by the next stream; the one after is refused
    let _seventh = Client::open_as(&l.app, &other, "", None).await;
    let resp = l.app.call(Method::GET, "/stream", &other).send().await.expect("eighth");
    assert_eq!(resp.status(), 429, "the server's total is reached");
    // a closed stream frees its place (as soon as the server notices the connection closed)
    drop(open.pop());
    for _ in 0..500 {
        if l.hub.open_streams().len() < 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _again = Client::open_as(&l.app, &second, "", None).await;
}

#[tokio::test]
async fn revoking_a_token_ends_its_open_stream_at_once_and_leaves_others_open() {
    let l = live().await;
    let admin = l.app.user("ada", Role::Admin).await;
    let admin = As::Bearer(l.app.token(admin).await);
    let vera = user_id(&l, "vera").await;
    let doomed = token::create(&l.app.db.pool, vera, "doomed", None).await.expect("token");
    let mut revoked = Client::open_as(&l.app, &As::Bearer(doomed.token), "", None).await;
    let mut kept = Client::open(&l, "", None).await;
    l.writer.write("push.gps", vec![fix(Utc::now(), 30.0)]).await.expect("stored");
    revoked.until("position").await;
    kept.until("position").await;

    let (status, _) =
        l.app.bare(Method::DELETE, &format!("/tokens/{}", doomed.info.token_id), &admin).await;
    assert!(status == 204 || status == 200, "{status}");
    assert!(revoked.ends_within(Duration::from_secs(1)).await, "the revoked token's stream ends");
    assert!(!kept.ends_within(Duration::from_millis(300)).await, "the other token's stream stays");
    l.writer
        .write("push.gps", vec![fix(Utc::now() + chrono::TimeDelta::seconds(1), 31.0)])
        .await
        .expect("stored");
    kept.until("position").await;
}

#[tokio::test]
async fn deactivating_a_user_ends_their_streams() {
    let l = live().await;
    let admin = l.app.user("ada", Role::Admin).await;
    let admin = As::Bearer(l.app.token(admin).await);
    let mut c = Client::open(&l, "", None).await;
    let vera = user_id(&l, "vera").await;
    let (status, body) = l
        .app
        .send(
            Method::PATCH,
            &format!("/users/{vera}"),
            &admin,
            serde_json::json!({"active": false}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(c.ends_within(Duration::from_secs(1)).await, "the deactivated user's stream ends");
}

#[tokio::test]
async fn a_new_password_or_deleting_the_user_ends_their_streams() {
    let l = live().await;
    let admin = l.app.user("ada", Role::Admin).await;
    let admin = As::Bearer(l.app.token(admin).await);
    let olga = l.app.user("olga", Role::Viewer).await;
    let session = As::Session(l.app.login("olga").await);
    let mut by_session = Client::open_as(&l.app, &session, "", None).await;
    let (status, body) = l
        .app
        .send(
            Method::PATCH,
            &format!("/users/{olga}"),
            &admin,
            serde_json::json!({"password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(by_session.ends_within(Duration::from_secs(1)).await, "a new password ends sessions");

    let token = As::Bearer(l.app.token(olga).await);
    let mut by_token = Client::open_as(&l.app, &token, "", None).await;
    let (status, _) = l.app.bare(Method::DELETE, &format!("/users/{olga}"), &admin).await;
    assert!(status == 204 || status == 200, "{status}");
    assert!(by_token.ends_within(Duration::from_secs(1)).await, "a deleted user's stream ends");
}

#[tokio::test]
async fn logging_out_ends_the_sessions_stream() {
    let l = live().await;
    l.app.user("sam", Role::Viewer).await;
    let cookie = As::Session(l.app.login("sam").await);
    let mut c = Client::open_as(&l.app, &cookie, "", None).await;
    let (status, _) = l.app.bare(Method::POST, "/auth/logout", &cookie).await;
    assert!(status == 204 || status == 200, "{status}");
    assert!(c.ends_within(Duration::from_secs(1)).await, "the logged-out session's stream ends");
}

#[tokio::test]
async fn an_expired_token_loses_its_stream_at_the_next_periodic_recheck() {
    let recheck = StreamLimits { recheck_every: Duration::from_millis(300), ..limits(5, 50) };
    let l = live_with(|s| s.with_stream_limits(recheck)).await;
    let vera = user_id(&l, "vera").await;
    let expires = Utc::now() + chrono::TimeDelta::hours(1);
    let short = token::create(&l.app.db.pool, vera, "short", Some(expires)).await.expect("token");
    let mut c = Client::open_as(&l.app, &As::Bearer(short.token), "", None).await;
    // a valid token's stream survives re-checks (500 ms spans at least one)
    assert!(!c.ends_within(Duration::from_millis(500)).await, "valid for now");
    // a token expires as time passes, with no write that a trigger could announce: moving its
    // expiry into the past with the announcing trigger switched off stands for that, so only
    // the periodic re-check can notice
    let pool = &l.app.db.pool;
    sqlx::query("alter table fleet.api_tokens disable trigger api_tokens_auth_change")
        .execute(pool)
        .await
        .expect("trigger off");
    sqlx::query(
        "update fleet.api_tokens set expires_at = now() - interval '1 second' where token_id = $1",
    )
    .bind(short.info.token_id)
    .execute(pool)
    .await
    .expect("expired");
    assert!(c.ends_within(Duration::from_secs(3)).await, "ended at the next re-check");
}

#[tokio::test]
async fn notifications_from_the_analyst_role_never_reach_a_stream() {
    let l = live().await;
    let mut c = Client::open(&l, "", None).await;
    l.writer.write("push.gps", vec![fix(Utc::now(), 30.0)]).await.expect("stored");
    // a first fix brings a position and a status event
    let device_id =
        c.until("status").await.pop().expect("status").data["device_id"].as_i64().expect("id");

    // the analyst logs in and notifies the channel: unsigned, and with a made-up signature
    let password = Secret::new("analyst-password-123".to_owned());
    fleet_db::roles::apply_analyst_login(&l.app.db.pool, Some(&password))
        .await
        .expect("analyst login");
    let opts = PgConnectOptions::from_str(l.app.db.url())
        .expect("url")
        .username("fleet_ro")
        .password(password.expose());
    let mut analyst = opts.connect().await.expect("fleet_ro connects");
    let forged = format!(r#"{{"p":[{device_id}],"a":[]}}"#);
    for payload in [forged.clone(), format!("{}.{forged}", "0".repeat(64))] {
        sqlx::query("select pg_notify('fleet_changes', $1)")
            .bind(&payload)
            .execute(&mut analyst)
            .await
            .expect("any role may notify");
    }
    analyst.close().await.ok();
    // nothing arrives from them; the next real change does
    let t = Utc::now() + chrono::TimeDelta::seconds(2);
    let forged_event = c.next(1).await;
    assert!(forged_event.is_none(), "a forged notification produced {forged_event:?}");
    l.writer.write("push.gps", vec![fix(t, 35.0)]).await.expect("stored");
    let p = c.until("position").await.pop().expect("position");
    assert_eq!(p.data["speed_kmh"], 35.0);
    let metrics = reqwest::get(format!("http://{}/metrics", l.app.addr)).await.expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("fleetd_stream_notifications_rejected_total"),
        "counted: {}",
        text.lines().filter(|l| l.contains("stream")).collect::<Vec<_>>().join("\n")
    );
}

async fn rejected_total(l: &support::live::Live) -> u64 {
    let metrics = reqwest::get(format!("http://{}/metrics", l.app.addr)).await.expect("metrics");
    let text = metrics.text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("fleetd_stream_notifications_rejected_total "))
        .map_or(0, |v| v.trim().parse::<f64>().expect("number") as u64)
}

#[tokio::test]
async fn a_flood_of_unsigned_notifications_is_counted_but_logged_once() {
    // the test runtime runs on this thread, the listener task included
    let log = fleet_testkit::logs::capture(tracing::Level::WARN);
    let l = live().await;
    let before = rejected_total(&l).await;
    let mut c = Client::open(&l, "", None).await;
    // any role may notify: 2,000 distinct forged payloads in one statement, half unsigned and
    // half with a made-up signature
    sqlx::query(
        "select pg_notify('fleet_changes', case when g % 2 = 0 then '{\"p\":[' || g || ']}'
                 else repeat('0', 64) || '.' || lpad(g::text, 15, '0') || '.0000000000000000.{}' end)
         from generate_series(1, 2000) g",
    )
    .execute(&l.app.db.pool)
    .await
    .expect("notified");
    // notifications arrive in order: once the real change is out, every forged one was seen
    l.writer.write("push.gps", vec![fix(Utc::now(), 30.0)]).await.expect("stored");
    let p = c.until("position").await.pop().expect("position");
    assert_eq!(p.data["speed_kmh"], 30.0);
    let warnings = log.lines_with("ignoring fleet_changes notifications");
    assert_eq!(warnings, 1, "one warning for the whole flood");
    assert!(rejected_total(&l).await >= before + 2000, "every one counted");
}

#[tokio::test]
async fn a_replayed_or_stale_genuine_notification_republishes_nothing() {
    let l = live().await;
    let pool = &l.app.db.pool;
    let mut c = Client::open(&l, "", None).await;
    let mut spy = PgListener::connect_with(pool).await.expect("listener");
    spy.listen("fleet_changes").await.expect("listen");
    l.writer.write("push.gps", vec![fix(Utc::now(), 30.0)]).await.expect("stored");
    // a first fix brings a position and a status event
    c.until("status").await;
    let genuine = spy.recv().await.expect("the writer's notification").payload().to_owned();

    // a session that can read the channel copies the payload and sends it again
    for _ in 0..3 {
        sqlx::query("select pg_notify('fleet_changes', $1)")
            .bind(&genuine)
            .execute(pool)
            .await
            .expect("replayed");
    }
    // and a payload signed with the real key long ago
    let key = fleet_db::notify::NotifyKey::load(pool).await.expect("key");
    let device_id: i32 = sqlx::query_scalar("select device_id from fleet.devices")
        .fetch_one(pool)
        .await
        .expect("device");
    let old = Utc::now().timestamp_millis() - 5 * 60_000;
    let stale = key.sign_at("fleet_changes", &format!(r#"{{"p":[{device_id}],"a":[]}}"#), old);
    sqlx::query("select pg_notify('fleet_changes', $1)")
        .bind(&stale)
        .execute(pool)
        .await
        .expect("stale sent");
    let replayed = c.next(1).await;
    assert!(replayed.is_none(), "a replayed notification produced {replayed:?}");
    // the next genuine change still arrives
    let t = Utc::now() + chrono::TimeDelta::seconds(2);
    l.writer.write("push.gps", vec![fix(t, 35.0)]).await.expect("stored");
    let p = c.until("position").await.pop().expect("position");
    assert_eq!(p.data["speed_kmh"], 35.0);
}

#[tokio::test]
async fn a_change_reaches_an_open_stream_while_the_api_pool_is_exhausted_and_no_reset_is_sent() {
    // the pool fleetd gives the listener is the API's: small, and with a short acquire timeout
    // here so that reading through it would fail within the test
    let api = Arc::new(Mutex::new(None::<sqlx::PgPool>));
    let keep = api.clone();
    let l = live_on(
        |s| s,
        move |app| {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_millis(200))
                .connect_lazy_with((*app.db.pool.connect_options()).clone());
            *keep.lock().expect("lock") = Some(pool.clone());
            pool
        },
    )
    .await;
    let api = api.lock().expect("lock").clone().expect("api pool");
    let mut c = Client::open(&l, "", None).await;
    l.writer.write("push.gps", vec![fix(Utc::now(), 30.0)]).await.expect("stored");
    c.until("position").await;

    // exports and requests hold every connection of the API's pool
    let held = vec![api.acquire().await.expect("one"), api.acquire().await.expect("two")];
    let t = Utc::now() + chrono::TimeDelta::seconds(1);
    l.writer.write("push.gps", vec![fix(t, 40.0)]).await.expect("stored");
    let seen = c.until("position").await;
    assert_eq!(seen.last().expect("position").data["speed_kmh"], 40.0);
    drop(held);
    // and once it frees, changes keep coming the same way
    let t = t + chrono::TimeDelta::seconds(1);
    l.writer.write("push.gps", vec![fix(t, 45.0)]).await.expect("stored");
    let more = c.until("position").await;
    assert_eq!(more.last().expect("position").data["speed_kmh"], 45.0);
    let resets: Vec<_> = seen.iter().chain(&more).filter(|e| e.event == "reset").collect();
    assert!(resets.is_empty(), "clients were told to reload: {resets:?}");
}
