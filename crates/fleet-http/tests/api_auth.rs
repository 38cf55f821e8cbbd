//! Authentication over real HTTP and a real database: login and the session cookie, logout,
//! the first failed-login delay (the limits themselves: api_login_limits.rs), bearer tokens and their revocation, user management rules, CORS and
//! the problem bodies of malformed requests.

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::json;
use support::{kind, password_of, session_cookie, App, As};

async fn login_response(app: &App, username: &str, password: &str) -> reqwest::Response {
    app.call(Method::POST, "/auth/login", &As::Anonymous)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login")
}

#[tokio::test]
async fn login_sets_an_http_only_lax_cookie_that_authenticates_me() {
    let app = App::start().await;
    app.user("olga", Role::Operator).await;
    let resp = login_response(&app, "OLGA", &password_of("olga")).await;
    assert_eq!(resp.status(), 200, "usernames ignore case");
    let set_cookie = resp.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(set_cookie.starts_with("fleetd_session="), "{set_cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(set_cookie.contains(attr), "{attr} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = session_cookie(&resp).expect("cookie");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["username"], "olga");
    assert_eq!(body["role"], "operator");
    assert_eq!(body["authenticated_by"], "session");
    assert!(body.get("password_hash").is_none(), "{body}");

    let (status, me) = app.get("/auth/me", &As::Session(cookie.clone())).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["username"].as_str(), me["authenticated_by"].as_str()),
        (Some("olga"), Some("session"))
    );
    assert!(me["session_expires_at"].is_string(), "{me}");
    assert!(me["last_login_at"].is_string(), "{me}");

    // only the hash of the session id is stored
    let stored: Vec<String> = sqlx::query_scalar("select session_hash from fleet.sessions")
        .fetch_all(&app.db.pool)
        .await
        .expect("sessions");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], cookie);
    assert_eq!(stored[0], fleet_accounts::secret::hash(&cookie));
}

#[tokio::test]
async fn behind_a_tls_proxy_the_cookie_is_host_prefixed_and_secure_and_logout_clears_that_one() {
    let app = App::start().await;
    app.user("tom", Role::Viewer).await;
    let resp = app
        .call(Method::POST, "/auth/login", &As::Anonymous)
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "tom", "password": password_of("tom")}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let set_cookie = resp.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(set_cookie.starts_with("__Host-fleetd_session="), "{set_cookie}");
    assert!(set_cookie.contains("; Path=/;") && set_cookie.ends_with("; Secure"), "{set_cookie}");
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert_eq!(session_cookie(&resp), None, "not the plain name");
    let id = set_cookie["__Host-fleetd_session=".len()..].split(';').next().expect("id").to_owned();
    let with_cookie = |method: Method, path: &str| {
        app.call(method, path, &As::Anonymous)
            .header("cookie", format!("__Host-fleetd_session={id}"))
            .header("x-forwarded-proto", "https")
    };
    let me = with_cookie(Method::GET, "/auth/me").send().await.expect("me");
    assert_eq!(me.status(), 200, "the prefixed cookie authenticates");
    let out = with_cookie(Method::POST, "/auth/logout").send().await.expect("logout");
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cleared.starts_with("__Host-fleetd_session=;") && cleared.contains("Max-Age=0"));
    assert_eq!(with_cookie(Method::GET, "/auth/me").send().await.expect("me").status(), 401);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_the_same_401_problem() {
    let app = App::start().await;
    app.user("vic", Role::Viewer).await;
    for (user, pw) in [("vic", "wrong password"), ("nobody", "whatever1")] {
        let resp = login_response(&app, user, pw).await;
        assert!(resp.headers().get("set-cookie").is_none());
        assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"fleetd\"");
        let (status, body) = support::json(resp).await;
        assert_eq!((status, kind(&body)), (401, "unauthenticated"), "{user}: {body}");
        assert_eq!(body["detail"], "wrong username or password");
    }
    // a form no account can have is refused before anything else
    for (user, pw, field) in
        [("", "x", "username"), ("bad name!", "x", "username"), ("vic", "", "password")]
    {
        let (status, body) = support::json(login_response(&app, user, pw).await).await;
        assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some(field)), "{body}");
    }
    let (status, body) = app.get("/auth/me", &As::Anonymous).await;
    assert_eq!((status, kind(&body)), (401, "unauthenticated"));
    let (status, _) = app.get("/auth/me", &As::Session("forged".into())).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn after_five_failures_from_one_address_the_account_must_wait_even_with_the_right_password() {
    let app = App::start().await;
    app.user("ann", Role::Admin).await;
    app.user("ben", Role::Viewer).await;
    for _ in 0..5 {
        assert_eq!(login_response(&app, "ann", "guess-guess").await.status(), 401);
    }
    let resp = login_response(&app, "ann", &password_of("ann")).await;
    assert_eq!(resp.headers()["retry-after"], "1", "the first delay");
    let (status, body) = support::json(resp).await;
    assert_eq!((status, kind(&body)), (429, "rate-limited"), "{body}");
    // per account: another user from the same address still logs in
    assert_eq!(login_response(&app, "ben", &password_of("ben")).await.status(), 200);
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = App::start().await;
    app.user("lou", Role::Viewer).await;
    let cookie = app.login("lou").await;
    let other = app.login("lou").await;
    let resp = app
        .call(Method::POST, "/auth/logout", &As::Session(cookie.clone()))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    assert!(resp.headers()["set-cookie"].to_str().expect("ascii").contains("Max-Age=0"));
    let (status, body) = app.get("/auth/me", &As::Session(cookie.clone())).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("log in again"), "{body}");
    assert_eq!(app.get("/auth/me", &As::Session(other)).await.0, 200, "other sessions live on");
    assert_eq!(app.bare(Method::POST, "/auth/logout", &As::Session(cookie)).await.0, 401);
}

#[tokio::test]
async fn logging_in_again_replaces_the_session_sent_with_the_request() {
    let app = App::start().await;
    app.user("rex", Role::Viewer).await;
    let first = app.login("rex").await;
    let resp = app
        .call(Method::POST, "/auth/login", &As::Session(first.clone()))
        .json(&json!({"username": "rex", "password": password_of("rex")}))
        .send()
        .await
        .expect("login");
    let second = session_cookie(&resp).expect("cookie");
    assert_ne!(first, second);
    assert_eq!(app.get("/auth/me", &As::Session(first)).await.0, 401);
    assert_eq!(app.get("/auth/me", &As::Session(second)).await.0, 200);
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let app = App::start().await;
    app.user("eve", Role::Viewer).await;
    let cookie = app.login("eve").await;
    sqlx::query("update fleet.sessions set expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .expect("expire");
    assert_eq!(app.get("/auth/me", &As::Session(cookie)).await.0, 401);
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_stop_working_when_revoked() {
    let app = App::start().await;
    let admin_id = app.user("root", Role::Admin).await;
    let viewer_id = app.user("erp", Role::Viewer).await;
    let admin = As::Session(app.login("root").await);

    let (status, created) = app
        .send(Method::POST, "/tokens", &admin, json!({"user_id": viewer_id, "name": "erp-sync"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token shown").to_owned();
    assert!(token.starts_with("fltd_") && token.len() == 48, "{token}");
    assert_eq!(created["token_prefix"], &token[..12]);
    assert_eq!(
        (created["username"].as_str(), created["name"].as_str()),
        (Some("erp"), Some("erp-sync"))
    );
    let id = created["token_id"].as_i64().expect("id");

    let stored: String =
        sqlx::query_scalar("select token_hash from fleet.api_tokens where token_id = $1")
            .bind(id as i32)
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert_eq!(stored, fleet_accounts::secret::hash(&token), "only the SHA-256 is stored");

    let bearer = As::Bearer(token.clone());
    let (status, me) = app.get("/auth/me", &bearer).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["username"].as_str(), me["authenticated_by"].as_str()),
        (Some("erp"), Some("token"))
    );
    assert_eq!(me["role"], "viewer", "a token acts with its user's role");
    assert_eq!(app.get("/users", &bearer).await.0, 403);

    let (_, list) = app.get("/tokens", &admin).await;
    let listed = &list["items"][0];
    assert_eq!(listed["token_id"], id);
    assert!(listed.get("token").is_none() && listed.get("token_hash").is_none(), "{listed}");
    assert!(listed["last_used_at"].is_string(), "use is noted: {listed}");

    assert_eq!(app.bare(Method::DELETE, &format!("/tokens/{id}"), &admin).await.0, 204);
    let (status, body) = app.get("/auth/me", &bearer).await;
    assert_eq!((status, kind(&body)), (401, "unauthenticated"), "{body}");
    assert_eq!(app.bare(Method::DELETE, &format!("/tokens/{id}"), &admin).await.0, 204, "again");
    assert_eq!(app.bare(Method::DELETE, "/tokens/999999", &admin).await.0, 404);
    let (_, list) = app.get("/tokens", &admin).await;
    assert!(list["items"][0]["revoked_at"].is_string());

    // a token for the caller by default; expiry in the past is refused, expiry reached stops it
    let (status, mine) = app
        .send(
            Method::POST,
            "/tokens",
            &admin,
            json!({"name": "mine", "expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((status, mine["user_id"].as_i64()), (201, Some(admin_id as i64)), "{mine}");
    let mine_token = As::Bearer(mine["token"].as_str().expect("token").to_owned());
    assert_eq!(app.get("/auth/me", &mine_token).await.0, 200);
    sqlx::query(
        "update fleet.api_tokens set expires_at = now() - interval '1 second' where token_id = $1",
    )
    .bind(mine["token_id"].as_i64().expect("id") as i32)
    .execute(&app.db.pool)
    .await
    .expect("expire");
    assert_eq!(app.get("/auth/me", &mine_token).await.0, 401);
    let (status, body) = app
        .send(
            Method::POST,
            "/tokens",
            &admin,
            json!({"name": " ", "expires_at": "2001-01-01T00:00:00Z", "user_id": 424242}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "expires_at", "user_id"]);
}

#[tokio::test]
async fn malformed_credentials_are_401() {
    let app = App::start().await;
    for header in
        ["Basic dXNlcjpwYXNz", "Bearer", "Bearer fltd_not-a-real-token", "Bearer something-else"]
    {
        let resp = app
            .call(Method::GET, "/auth/me", &As::Anonymous)
            .header("authorization", header)
            .send()
            .await
            .expect("me");
        let (status, body) = support::json(resp).await;
        assert_eq!(status, 401, "{header}: {body}");
    }
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_and_tokens() {
    let app = App::start().await;
    app.user("root", Role::Admin).await;
    let op = app.user("op", Role::Operator).await;
    let admin = As::Session(app.login("root").await);
    let session = As::Session(app.login("op").await);
    let token = As::Bearer(app.token(op).await);
    let (status, user) =
        app.send(Method::PATCH, &format!("/users/{op}"), &admin, json!({"active": false})).await;
    assert_eq!((status, user["active"].as_bool()), (200, Some(false)), "{user}");
    assert_eq!(app.get("/auth/me", &session).await.0, 401);
    assert_eq!(app.get("/auth/me", &token).await.0, 401);
    assert_eq!(login_response(&app, "op", &password_of("op")).await.status(), 401);
    // reactivated: the token works again, the session stays ended
    app.send(Method::PATCH, &format!("/users/{op}"), &admin, json!({"active": true})).await;
    assert_eq!(app.get("/auth/me", &token).await.0, 200);
    assert_eq!(app.get("/auth/me", &session).await.0, 401);
}

#[tokio::test]
async fn a_new_password_ends_the_users_sessions_and_is_the_one_that_logs_in() {
    let app = App::start().await;
    app.user("root", Role::Admin).await;
    let vid = app.user("vee", Role::Viewer).await;
    let admin = As::Session(app.login("root").await);
    let old = As::Session(app.login("vee").await);
    let (status, _) = app
        .send(
            Method::PATCH,
            &format!("/users/{vid}"),
            &admin,
            json!({"password": "a brand new one"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/auth/me", &old).await.0, 401);
    assert_eq!(login_response(&app, "vee", &password_of("vee")).await.status(), 401);
    assert_eq!(login_response(&app, "vee", "a brand new one").await.status(), 200);
    let (status, body) = app
        .send(Method::PATCH, &format!("/users/{vid}"), &admin, json!({"password": "short"}))
        .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("password")), "{body}");
}

#[tokio::test]
async fn users_are_validated_unique_ignoring_case_and_never_show_hashes() {
    let app = App::start().await;
    app.user("root", Role::Admin).await;
    let admin = As::Session(app.login("root").await);
    let (status, user) = app
        .send(
            Method::POST,
            "/users",
            &admin,
            json!({
                "username": "Dana", "password": "long enough", "role": "operator",
                "display_name": "Dana K"
            }),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        (user["role"].as_str(), user["display_name"].as_str()),
        (Some("operator"), Some("Dana K"))
    );
    let (status, body) = app
        .send(
            Method::POST,
            "/users",
            &admin,
            json!({"username": "dana", "password": "long enough", "role": "viewer"}),
        )
        .await;
    assert_eq!((status, kind(&body)), (409, "conflict"), "{body}");
    let (status, body) = app
        .send(
            Method::POST,
            "/users",
            &admin,
            json!({"username": "no spaces", "password": "short", "role": "boss"}),
        )
        .await;
    assert_eq!((status, kind(&body)), (422, "validation"), "{body}");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort();
    assert_eq!(fields, ["password", "role", "username"]);
    let (status, body) = app
        .send(
            Method::POST,
            "/users",
            &admin,
            json!({"username": "eve", "password": "long enough", "role": "viewer",
                   "display_name": "Eve\u{202E}nimda"}),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("display_name")),
        "{body}"
    );
    let (status, body) = app.send(Method::POST, "/users", &admin, json!({"username": "x"})).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("password")),
        "missing field: {body}"
    );

    let (_, list) = app.get("/users", &admin).await;
    let text = list.to_string();
    assert!(!text.contains("password") && !text.contains("argon2"), "{text}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.get("/users/999999", &admin).await.0, 404);
    let (status, body) = app.get("/users/abc", &admin).await;
    assert_eq!((status, kind(&body)), (400, "bad-request"), "{body}");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = App::start().await;
    let root = app.user("root", Role::Admin).await;
    let admin = As::Session(app.login("root").await);
    for change in [json!({"role": "viewer"}), json!({"active": false})] {
        let (status, body) =
            app.send(Method::PATCH, &format!("/users/{root}"), &admin, change).await;
        assert_eq!((status, kind(&body)), (409, "conflict"), "{body}");
    }
    assert_eq!(app.bare(Method::DELETE, &format!("/users/{root}"), &admin).await.0, 409);
    let (_, me) = app.get("/auth/me", &admin).await;
    assert_eq!(me["role"], "admin", "nothing changed");

    let second = app.user("second", Role::Admin).await;
    assert_eq!(app.bare(Method::DELETE, &format!("/users/{second}"), &admin).await.0, 204);
    let third = app.user("third", Role::Admin).await;
    let (status, _) =
        app.send(Method::PATCH, &format!("/users/{root}"), &admin, json!({"role": "viewer"})).await;
    assert_eq!(status, 200, "another admin remains");
    assert_eq!(app.get("/users", &admin).await.0, 403, "the role applies at once");
    assert_eq!(
        app.bare(Method::DELETE, &format!("/users/{third}"), &As::Bearer(app.token(third).await))
            .await
            .0,
        409
    );
}

#[tokio::test]
async fn malformed_requests_get_problem_bodies() {
    let app = App::start().await;
    app.user("root", Role::Admin).await;
    let admin = As::Session(app.login("root").await);
    let send_raw = |ct: &'static str, body: &'static str| {
        app.call(Method::POST, "/users", &admin).header("content-type", ct).body(body).send()
    };
    let (status, body) =
        support::json(send_raw("application/json", "{\"username\": ").await.expect("send")).await;
    assert_eq!((status, kind(&body)), (400, "bad-request"), "{body}");
    let (status, body) = support::json(send_raw("text/plain", "{}").await.expect("send")).await;
    assert_eq!((status, kind(&body)), (415, "unsupported-media-type"), "{body}");
    let (status, body) = app.get("/no/such/route", &admin).await;
    assert_eq!((status, kind(&body)), (404, "not-found"), "{body}");
    let (status, body) = app.bare(Method::PUT, "/users", &admin).await;
    assert_eq!((status, kind(&body)), (405, "method-not-allowed"), "{body}");
    let big = format!("{{\"username\": \"{}\"}}", "x".repeat(3 << 20));
    let resp = app
        .call(Method::POST, "/users", &admin)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("send");
    let (status, body) = support::json(resp).await;
    assert_eq!((status, kind(&body)), (413, "payload-too-large"), "{body}");
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = App::start().await;
    let resp = app
        .call(Method::GET, "/openapi.json", &As::Anonymous)
        .header("origin", "https://ops.example.com")
        .send()
        .await
        .expect("get");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_answers_only_allow_listed_origins_with_credentials() {
    let app =
        App::start_with(|s| s.with_cors_origins(["https://ops.example.com".to_owned()])).await;
    let preflight = |origin: &'static str| {
        app.call(Method::OPTIONS, "/devices/1", &As::Anonymous)
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://ops.example.com").await.expect("preflight");
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://ops.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-methods"].to_str().expect("ascii").contains("PATCH"));
    let other = preflight("https://evil.example.net").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple = app
        .call(Method::GET, "/auth/me", &As::Anonymous)
        .header("origin", "https://ops.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(simple.status(), 401);
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://ops.example.com");
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after_and_locks_nobody_out() {
    let app = App::start().await;
    let id = app.user("vic", Role::Viewer).await;
    let token = As::Bearer(app.token(id).await);
    app.db.pool.close().await;
    let resp = app.call(Method::GET, "/devices", &token).send().await.expect("get");
    assert_eq!(resp.headers()["retry-after"], "5");
    let (status, body) = support::json(resp).await;
    assert_eq!((status, kind(&body)), (503, "unavailable"), "{body}");
    // logins the database could not decide are not failures: no lock-out after the outage
    for _ in 0..6 {
        let (status, body) = support::json(login_response(&app, "vic", "pw-of-vic").await).await;
        assert_eq!(status, 503, "{body}");
    }
}
