//! Request tracing over real HTTP: every response carries a request id (the client's when it
//! is a sane token), problem bodies repeat it, and what a handler logs names the request's
//! method, route and id (that last in tests/request_logs.rs).

mod support;

use reqwest::Method;
use support::{App, As};

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an X-Request-Id header")
        .to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_is_replaced() {
    let app = App::start().await;
    let sent = app
        .call(Method::GET, "/healthz", &As::Anonymous)
        .header("x-request-id", "lb-7f3a:42")
        .send()
        .await
        .expect("request");
    assert_eq!(request_id(&sent), "lb-7f3a:42");

    let none = app.call(Method::GET, "/healthz", &As::Anonymous).send().await.expect("request");
    let other = app.call(Method::GET, "/healthz", &As::Anonymous).send().await.expect("request");
    assert!(is_generated(&request_id(&none)), "{}", request_id(&none));
    assert_ne!(request_id(&none), request_id(&other), "a new id per request");

    for odd in ["two words", &"x".repeat(65), "tab\tin"] {
        let resp = app
            .call(Method::GET, "/healthz", &As::Anonymous)
            .header("x-request-id", odd)
            .send()
            .await
            .expect("request");
        let id = request_id(&resp);
        assert!(is_generated(&id), "{odd:?} replaced, got {id:?}");
    }
}

#[tokio::test]
async fn a_problem_body_carries_the_request_id() {
    let app = App::start().await;
    let resp = app
        .call(Method::GET, "/devices", &As::Anonymous)
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .expect("request");
    assert_eq!(request_id(&resp), "trace-me-1");
    let (status, body) = support::json(resp).await;
    assert_eq!(status, 401);
    assert_eq!(body["request_id"], "trace-me-1", "{body}");

    // an unmatched path is answered with a problem too, with a generated id
    let resp = app.call(Method::GET, "/no-such-route", &As::Anonymous).send().await.expect("req");
    let id = request_id(&resp);
    let (status, body) = support::json(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["request_id"].as_str(), Some(id.as_str()), "{body}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_request_id_of_problems() {
    let app = App::start().await;
    let (status, doc) = app.get("/openapi.json", &As::Anonymous).await;
    assert_eq!(status, 200);
    let field = &doc["components"]["schemas"]["Problem"]["properties"]["request_id"];
    assert_eq!(field["type"], serde_json::json!(["string", "null"]), "{field}");
}
