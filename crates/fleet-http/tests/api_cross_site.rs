//! Cross-site requests over real HTTP: a form another site posts with the browser's session
//! cookie is refused and changes nothing; fleetd's own pages, configured CORS origins, bearer
//! tokens and clients that are no browser (no `Origin`, no `Sec-Fetch-Site`) go through.

mod support;

use fleet_http::auth::Role;
use reqwest::{Method, RequestBuilder};
use serde_json::json;
use support::{kind, password_of, App, As};

/// What a browser adds to a form posted from `https://evil.example`.
fn from_evil_site(req: RequestBuilder) -> RequestBuilder {
    req.header("origin", "https://evil.example").header("sec-fetch-site", "cross-site")
}

#[tokio::test]
async fn a_cross_site_form_post_cannot_log_out_or_edit_a_device_and_changes_nothing() {
    let app = App::start().await;
    app.user("olga", Role::Operator).await;
    let session = As::Session(app.login("olga").await);
    let id = app.device("868120303960001", "Van 1").await;
    let path = format!("/devices/{id}");

    let logout = from_evil_site(app.call(Method::POST, "/auth/logout", &session))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("logout");
    assert!(logout.headers().get("set-cookie").is_none());
    let (status, body) = support::json(logout).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"), "{body}");

    // a JSON PATCH a page could send with fetch(…, {credentials: 'include'}): the Origin alone
    let patch = app
        .call(Method::PATCH, &path, &session)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "Hijacked"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), 403);
    // from a sibling subdomain: same-site is not same-origin
    let sibling = app
        .call(Method::PATCH, &path, &session)
        .header("sec-fetch-site", "same-site")
        .json(&json!({"name": "Hijacked"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(sibling.status(), 403);

    let (status, me) = app.get("/auth/me", &session).await;
    assert_eq!(status, 200, "still logged in: {me}");
    let (_, device) = app.get(&path, &session).await;
    assert_eq!(device["name"], "Van 1", "unchanged");
}

#[tokio::test]
async fn login_from_another_site_is_refused_so_nobody_is_logged_in_to_an_attackers_account() {
    let app = App::start().await;
    app.user("mallory", Role::Viewer).await;
    let resp = from_evil_site(app.call(Method::POST, "/auth/login", &As::Anonymous))
        .json(&json!({"username": "mallory", "password": password_of("mallory")}))
        .send()
        .await
        .expect("login");
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn same_origin_cors_origin_bearer_and_headerless_requests_work() {
    let app =
        App::start_with(|s| s.with_cors_origins(["https://ops.example.com".to_owned()])).await;
    let uid = app.user("olga", Role::Operator).await;
    let session = As::Session(app.login("olga").await);
    let id = app.device("868120303960001", "Van 1").await;
    let path = format!("/devices/{id}");
    let own = format!("http://{}", app.addr);

    let same_origin = app
        .call(Method::PATCH, &path, &session)
        .header("origin", &own)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"name": "Van 1A"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(same_origin.status(), 200);
    let cors = app
        .call(Method::PATCH, &path, &session)
        .header("origin", "https://ops.example.com")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "Van 1B"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(cors.status(), 200, "a configured CORS origin");
    let (status, d) = app.send(Method::PATCH, &path, &session, json!({"name": "Van 1C"})).await;
    assert_eq!((status, d["name"].as_str()), (200, Some("Van 1C")), "no Origin: curl");
    let bearer = As::Bearer(app.token(uid).await);
    let with_token = from_evil_site(app.call(Method::PATCH, &path, &bearer))
        .json(&json!({"name": "Van 1D"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(with_token.status(), 200, "a browser never adds a bearer token by itself");
    // reading is never refused
    let read = from_evil_site(app.call(Method::GET, &path, &session)).send().await.expect("get");
    assert_eq!(read.status(), 200);

    let logout = app
        .call(Method::POST, "/auth/logout", &session)
        .header("origin", &own)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 204, "the web app's own logout");
}
