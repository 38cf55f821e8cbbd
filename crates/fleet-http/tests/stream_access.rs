//! Who may hold live streams open: a cap per user and per server (429 beyond), streams ended
//! as soon as their credential ends (token revoked, user deactivated, logout) and at the
//! periodic re-check, and notifications that do not come from fleetd's own sessions ignored.

mod support;

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use fleet_config::Secret;
use fleet_http::auth::{token, Role};
use fleet_http::StreamLimits;
use reqwest::Method;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use support::live::{fix, live, live_with, Client};
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
    // a closed stream frees its place
    drop(open.pop());
    for _ in 0..100 {
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
    // expiring needs no write, so nothing announces it: only the re-check notices
    let expires = Utc::now() + chrono::TimeDelta::milliseconds(1500);
    let short = token::create(&l.app.db.pool, vera, "short", Some(expires)).await.expect("token");
    let mut c = Client::open_as(&l.app, &As::Bearer(short.token), "", None).await;
    assert!(!c.ends_within(Duration::from_millis(500)).await, "valid for now");
    assert!(c.ends_within(Duration::from_secs(3)).await, "ended after expiry");
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
