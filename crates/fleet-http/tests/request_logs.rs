//! What a handler logs inside a request names its method, route and request id. Alone in its
//! test binary: tracing decides once per call site whether a span is wanted, and a test on
//! another thread without a log capture can settle that while this one is starting its capture,
//! which leaves the request span out of the captured line.

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use support::{App, As};

#[tokio::test]
async fn an_internal_error_is_logged_with_the_route_and_request_id() {
    // the test runtime runs on this thread, the server's connection tasks included
    let log = fleet_testkit::logs::capture(tracing::Level::ERROR);
    let app = App::start().await;
    let viewer = app.user("viewer", Role::Viewer).await;
    let token = app.token(viewer).await;
    // the registry gone from under the handler: its query fails with an unexpected error
    sqlx::query("alter table fleet.devices rename to devices_elsewhere")
        .execute(&app.db.pool)
        .await
        .expect("renamed");
    let resp = app
        .call(Method::GET, "/devices/1", &As::Bearer(token))
        .header("x-request-id", "req-500-here")
        .send()
        .await
        .expect("request");
    let (status, body) = support::json(resp).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["request_id"], "req-500-here");

    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("the error is logged: {text}"));
    assert!(line.contains("request_id=req-500-here"), "{line}");
    assert!(line.contains("route=/api/v1/devices/{id}"), "{line}");
    assert!(line.contains("method=GET"), "{line}");
}
