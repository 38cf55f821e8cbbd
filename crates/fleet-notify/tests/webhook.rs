//! Webhooks against a local receiver that checks the signature the way docs/NOTIFICATIONS.md
//! tells receivers to, and how statuses, redirects and timeouts map to outcomes.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use fleet_config::Secret;
use fleet_core::notification::Channel;
use fleet_notify::channels::{
    verify_signature, Outcome, SignatureError, WebhookTarget, SIGNATURE_TOLERANCE,
};
use support::{channels, closed_port, delivery, message, record, serve, Log};

const SECRET: &str = "whsec-test-0123456789";

/// A receiver: `/hook` verifies the signature (401 when it does not hold); `/status/<n>`
/// answers n; `/big` answers 5000 characters; `/slow` answers after two seconds; `/moved`
/// redirects to `/hook`.
async fn receiver(log: Log) -> std::net::SocketAddr {
    let hook_log = log.clone();
    let router = Router::new()
        .route(
            "/hook",
            post(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = hook_log.clone();
                async move {
                    record(&log, &uri, &headers, &body);
                    let signature = headers
                        .get("x-fleetd-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let now = chrono::Utc::now().timestamp();
                    match verify_signature(SECRET, signature, &body, now, SIGNATURE_TOLERANCE) {
                        Ok(()) => (StatusCode::OK, "accepted".to_owned()),
                        Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()),
                    }
                }
            }),
        )
        .route(
            "/status/{code}",
            post(|axum::extract::Path(code): axum::extract::Path<u16>| async move {
                (StatusCode::from_u16(code).expect("status"), format!("answered {code}"))
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "too late"
            }),
        )
        .route("/big", post(|| async { "x".repeat(5000) }))
        .route("/moved", post(|| async { (StatusCode::FOUND, [("location", "/hook")], "") }));
    serve(router).await
}

fn target(url: String, secret: &str) -> WebhookTarget {
    WebhookTarget { url, secret: Secret::new(secret.to_owned()) }
}

#[tokio::test]
async fn a_webhook_is_signed_json_with_the_delivery_id_and_verifies() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let addr = receiver(log.clone()).await;
    let ch = channels(&[], Duration::from_secs(5));
    assert!(ch.configured(Channel::Webhook));
    let m = message();
    let hook = target(format!("http://{addr}/hook"), SECRET);
    let outcome = ch.send(&delivery(Channel::Webhook, "", &m, Some(&hook))).await;
    assert_eq!(outcome, Outcome::Sent { status: Some(200), response: "accepted".into() });

    let got = log.lock().expect("log").clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.body, m.webhook_body, "the body is the rendered payload, byte for byte");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-fleetd-delivery"], "6f1c2d3e-0000-4000-8000-000000000041");
    let ts: i64 = r.headers["x-fleetd-timestamp"].parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    let signature = &r.headers["x-fleetd-signature"];
    assert!(signature.starts_with(&format!("t={ts},v1=")), "{signature}");

    // what the receiver refuses: a changed body, an old request, another secret
    let verify = |body: &[u8], now: i64, secret: &str| {
        verify_signature(secret, signature, body, now, SIGNATURE_TOLERANCE)
    };
    assert_eq!(verify(&r.body, ts, SECRET), Ok(()));
    let mut tampered = r.body.clone();
    tampered[10] ^= 1;
    assert_eq!(verify(&tampered, ts, SECRET), Err(SignatureError::Mismatch));
    assert_eq!(verify(&r.body, ts + 301, SECRET), Err(SignatureError::Stale(301)));
    assert_eq!(verify(&r.body, ts, "another-secret"), Err(SignatureError::Mismatch));

    // the receiver itself refuses a replayed request with a changed body or an old signature
    let replay = |body: Vec<u8>, signature: String| {
        let url = format!("http://{addr}/hook");
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-fleetd-signature", signature)
                .body(body)
                .send()
                .await
                .expect("replay")
                .status()
                .as_u16()
        }
    };
    assert_eq!(replay(r.body.clone(), signature.clone()).await, 200);
    assert_eq!(replay(tampered, signature.clone()).await, 401);
    let old = fleet_notify::channels::sign(SECRET, chrono::Utc::now().timestamp() - 301, &r.body);
    assert_eq!(replay(r.body.clone(), old).await, 401);

    // signed with the wrong secret, the receiver answers 401: permanent
    let wrong = target(format!("http://{addr}/hook"), "not-the-secret");
    let outcome = ch.send(&delivery(Channel::Webhook, "", &m, Some(&wrong))).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { status: Some(401), error } if error.contains("does not match")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn statuses_redirects_and_timeouts_map_to_outcomes() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let addr = receiver(log.clone()).await;
    let ch = channels(&[], Duration::from_millis(300));
    let m = message();
    let send = |path: String| {
        let ch = &ch;
        let m = &m;
        async move {
            let hook = target(path, SECRET);
            ch.send(&delivery(Channel::Webhook, "", m, Some(&hook))).await
        }
    };
    let at = |p: &str| format!("http://{addr}{p}");
    for code in [500, 502, 503, 408, 429] {
        let outcome = send(at(&format!("/status/{code}"))).await;
        assert!(
            matches!(&outcome, Outcome::Retry { status: Some(c), .. } if *c == code),
            "{code}: {outcome:?}"
        );
    }
    for code in [400, 404, 410, 422] {
        let outcome = send(at(&format!("/status/{code}"))).await;
        assert!(
            matches!(&outcome, Outcome::Permanent { status: Some(c), .. } if *c == code),
            "{code}: {outcome:?}"
        );
    }
    assert!(send(at("/status/204")).await.is_sent());
    let big = send(at("/big")).await;
    assert!(
        big.is_sent() && big.detail().chars().count() == 1000,
        "answers are kept to 1000 characters"
    );

    let moved = send(at("/moved")).await;
    assert!(
        matches!(&moved, Outcome::Permanent { status: Some(302), error } if error.contains("redirects are not followed")),
        "{moved:?}"
    );
    assert!(log.lock().expect("log").is_empty(), "the redirect was not followed to /hook");

    let slow = send(at("/slow")).await;
    assert!(
        matches!(&slow, Outcome::Retry { status: None, error } if error.contains("timed out")),
        "{slow:?}"
    );

    let closed = send(format!("http://127.0.0.1:{}/hook", closed_port())).await;
    assert!(
        matches!(&closed, Outcome::Retry { status: None, error } if error.contains("could not connect")),
        "{closed:?}"
    );
    assert!(!closed.detail().contains("127.0.0.1"), "no URL in errors: {closed:?}");

    let unusable = send("not a url".to_owned()).await;
    assert!(matches!(&unusable, Outcome::Permanent { status: None, .. }), "{unusable:?}");

    let outcome = ch.send(&delivery(Channel::Webhook, "", &m, None)).await;
    assert!(matches!(outcome, Outcome::Permanent { .. }), "a webhook delivery needs its webhook");
}
