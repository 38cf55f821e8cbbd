//! SMS against local stand-ins: Africa's Talking's messaging API as its documentation describes
//! it (https://developers.africastalking.com/docs/sms/sending/bulk: `apiKey` header, form fields,
//! recipient status codes) and a generic JSON gateway.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use fleet_core::notification::Channel;
use fleet_notify::channels::Outcome;
use support::{channels, channels_of, delivery, message, record, serve, Log};

const API_KEY: &str = "atsk_test_key_0123456789";

/// `POST /version1/messaging`: 401 without the API key; otherwise the recipient's status by
/// number: ...403 invalid, ...405 no balance, ...500 answers HTTP 500, anything else sent.
async fn africastalking(log: Log) -> std::net::SocketAddr {
    let router = Router::new().route(
        "/version1/messaging",
        post(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                record(&log, &uri, &headers, &body);
                if headers.get("apikey").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        "The supplied authentication is invalid".to_owned(),
                    );
                }
                let form: HashMap<String, String> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                let to = form.get("to").cloned().unwrap_or_default();
                let (code, status) = match to.as_str() {
                    "+254711000403" => (403, "InvalidPhoneNumber"),
                    "+254711000405" => (405, "InsufficientBalance"),
                    "+254711000500" => {
                        return (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Internal Server Error".to_owned(),
                        )
                    }
                    _ => (101, "Success"),
                };
                let answer = serde_json::json!({"SMSMessageData": {
                    "Message": "Sent to 1/1 Total Cost: KES 0.8000",
                    "Recipients": [{"statusCode": code, "number": to, "status": status,
                                    "cost": "KES 0.8000", "messageId": "ATXid_test1"}]}});
                (StatusCode::CREATED, answer.to_string())
            }
        }),
    );
    serve(router).await
}

#[tokio::test]
async fn africastalking_gets_the_documented_form_and_codes_map_to_outcomes() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let addr = africastalking(log.clone()).await;
    let url = format!("http://{addr}");
    let settings = |key: &'static str| {
        vec![
            ("FLEETD_SMS_URL", url.clone()),
            ("FLEETD_SMS_USERNAME", "sandbox".to_owned()),
            ("FLEETD_SMS_API_KEY", key.to_owned()),
            ("FLEETD_SMS_SENDER", "FLEETD".to_owned()),
        ]
    };
    let ch = channels_of(&settings(API_KEY), Duration::from_secs(5));
    assert!(ch.configured(Channel::Sms));
    let m = message();
    let send = |to: &'static str| {
        let (ch, m) = (&ch, &m);
        async move { ch.send(&delivery(Channel::Sms, to, m, None)).await }
    };

    let sent = send("+254711000001").await;
    assert!(
        matches!(&sent, Outcome::Sent { status: Some(101), response } if response.contains("ATXid_test1")),
        "{sent:?}"
    );
    let got = log.lock().expect("log").clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/version1/messaging");
    assert_eq!(r.headers["apikey"], API_KEY);
    assert_eq!(r.headers["accept"], "application/json");
    assert_eq!(r.headers["content-type"], "application/x-www-form-urlencoded");
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&r.body).expect("form");
    assert_eq!(form["username"], "sandbox");
    assert_eq!(form["to"], "+254711000001");
    assert_eq!(form["message"], m.short);
    assert_eq!(form["from"], "FLEETD");
    assert_eq!(form.len(), 4);

    let invalid = send("+254711000403").await;
    assert!(
        matches!(&invalid, Outcome::Permanent { status: Some(403), error } if error.contains("InvalidPhoneNumber")),
        "{invalid:?}"
    );
    let broke = send("+254711000405").await;
    assert!(
        matches!(&broke, Outcome::Retry { status: Some(405), error } if error.contains("InsufficientBalance")),
        "{broke:?}"
    );
    let down = send("+254711000500").await;
    assert!(matches!(&down, Outcome::Retry { status: Some(500), .. }), "{down:?}");
    let local = send("0711000001").await;
    assert!(
        matches!(&local, Outcome::Permanent { status: None, error } if error.contains("E.164")),
        "{local:?}"
    );
    assert_eq!(log.lock().expect("log").len(), 4, "a number not in E.164 form is not sent");

    let wrong = channels_of(&settings("wrong-key-xyz"), Duration::from_secs(5));
    let refused = wrong.send(&delivery(Channel::Sms, "+254711000001", &m, None)).await;
    assert!(matches!(&refused, Outcome::Permanent { status: Some(401), .. }), "{refused:?}");
    assert!(!refused.detail().contains("wrong-key-xyz"));

    let none = channels(&[], Duration::from_secs(5));
    assert!(!none.configured(Channel::Sms));
    let outcome = none.send(&delivery(Channel::Sms, "+254711000001", &m, None)).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { error, .. } if error.contains("not configured: set FLEETD_SMS_USERNAME")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_generic_gateway_gets_json_with_a_bearer_token_and_statuses_decide() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let hook_log = log.clone();
    let router = Router::new().route(
        "/send",
        post(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = hook_log.clone();
            async move {
                record(&log, &uri, &headers, &body);
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                match req["to"].as_str() {
                    Some("+254711000500") => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
                    Some("+254711000400") => (StatusCode::BAD_REQUEST, "bad number"),
                    Some("+254711000429") => (StatusCode::TOO_MANY_REQUESTS, "slow down"),
                    Some("+254711000999") => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        (StatusCode::OK, "late")
                    }
                    _ => (StatusCode::OK, "queued"),
                }
            }
        }),
    );
    let addr = serve(router).await;
    let url = format!("http://{addr}/send");
    let ch = channels(
        &[
            ("FLEETD_SMS_PROVIDER", "generic"),
            ("FLEETD_SMS_URL", &url),
            ("FLEETD_SMS_API_KEY", "gateway-token"),
            ("FLEETD_SMS_SENDER", "FLEETD"),
        ],
        Duration::from_millis(400),
    );
    let m = message();
    let send = |to: &'static str| {
        let (ch, m) = (&ch, &m);
        async move { ch.send(&delivery(Channel::Sms, to, m, None)).await }
    };
    assert_eq!(
        send("+254711000001").await,
        Outcome::Sent { status: Some(200), response: "queued".into() }
    );
    let r = log.lock().expect("log")[0].clone();
    assert_eq!(r.headers["authorization"], "Bearer gateway-token");
    assert!(r.headers["content-type"].starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"to": "+254711000001", "message": m.short, "from": "FLEETD"})
    );

    assert!(matches!(send("+254711000500").await, Outcome::Retry { status: Some(503), .. }));
    assert!(matches!(send("+254711000429").await, Outcome::Retry { status: Some(429), .. }));
    assert!(matches!(send("+254711000400").await, Outcome::Permanent { status: Some(400), .. }));
    let slow = send("+254711000999").await;
    assert!(
        matches!(&slow, Outcome::Retry { status: None, error } if error.contains("timed out")),
        "{slow:?}"
    );
}
