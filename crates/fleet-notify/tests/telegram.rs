//! Telegram against a local stand-in of the Bot API: the request format of
//! https://core.telegram.org/bots/api#sendmessage, answers mapped to outcomes, and the bot token
//! (part of the URL) never in an outcome.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use fleet_core::notification::Channel;
use fleet_notify::channels::Outcome;
use support::{channels, closed_port, delivery, message, record, serve, Log};

const TOKEN: &str = "123456789:AAtest-token-abcdefgh";

/// Answers like the Bot API, by chat id: 111 ok, 403 blocked, 429 rate limited, 500 down; any
/// path but `/bot<TOKEN>/sendMessage` is 404 as Telegram does.
async fn bot_api(log: Log) -> std::net::SocketAddr {
    let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            record(&log, &uri, &headers, &body);
            if uri.path() != format!("/bot{TOKEN}/sendMessage") {
                return (StatusCode::NOT_FOUND, r#"{"ok":false,"error_code":404,"description":"Not Found"}"#.to_owned());
            }
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let chat = req["chat_id"].to_string();
            match chat.as_str() {
                "403" => (StatusCode::FORBIDDEN, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#.to_owned()),
                "429" => (StatusCode::TOO_MANY_REQUESTS, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}"#.to_owned()),
                "500" => (StatusCode::INTERNAL_SERVER_ERROR, r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#.to_owned()),
                _ => (StatusCode::OK, format!(r#"{{"ok":true,"result":{{"message_id":77,"chat":{{"id":{chat}}},"date":1764965640,"text":"..."}}}}"#)),
            }
        }
    });
    serve(router).await
}

#[tokio::test]
async fn send_message_posts_the_documented_json_to_the_bot_path() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let addr = bot_api(log.clone()).await;
    let url = format!("http://{addr}");
    let ch = channels(
        &[("FLEETD_TELEGRAM_URL", &url), ("FLEETD_TELEGRAM_BOT_TOKEN", TOKEN)],
        Duration::from_secs(5),
    );
    assert!(ch.configured(Channel::Telegram));
    let m = message();
    let outcome = ch.send(&delivery(Channel::Telegram, "987654321", &m, None)).await;
    assert_eq!(outcome, Outcome::Sent { status: Some(200), response: "message_id 77".into() });
    let outcome = ch.send(&delivery(Channel::Telegram, "@fleet_alerts", &m, None)).await;
    assert!(outcome.is_sent(), "{outcome:?}");

    let got = log.lock().expect("log").clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert!(got[0].headers["content-type"].starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"chat_id": 987654321, "text": m.text, "disable_web_page_preview": true})
    );
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).expect("json");
    assert_eq!(body["chat_id"], "@fleet_alerts", "channel names go as strings");
}

#[tokio::test]
async fn answers_map_to_outcomes_and_the_token_never_shows() {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let addr = bot_api(log.clone()).await;
    let url = format!("http://{addr}");
    let ch = channels(
        &[("FLEETD_TELEGRAM_URL", &url), ("FLEETD_TELEGRAM_BOT_TOKEN", TOKEN)],
        Duration::from_secs(5),
    );
    let m = message();
    let send = |chat: &'static str| {
        let (ch, m) = (&ch, &m);
        async move { ch.send(&delivery(Channel::Telegram, chat, m, None)).await }
    };
    let blocked = send("403").await;
    assert!(
        matches!(&blocked, Outcome::Permanent { status: Some(403), error } if error.contains("bot was blocked")),
        "{blocked:?}"
    );
    let limited = send("429").await;
    assert!(
        matches!(&limited, Outcome::Retry { status: Some(429), error } if error.contains("retry after 17 s")),
        "{limited:?}"
    );
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(17)));
    let down = send("500").await;
    assert!(matches!(&down, Outcome::Retry { status: Some(500), .. }), "{down:?}");

    // another token: Telegram answers 404 for an unknown bot
    let other = channels(
        &[("FLEETD_TELEGRAM_URL", &url), ("FLEETD_TELEGRAM_BOT_TOKEN", "42:other-token-xyz")],
        Duration::from_secs(5),
    );
    let unknown = other.send(&delivery(Channel::Telegram, "1", &m, None)).await;
    assert!(matches!(&unknown, Outcome::Permanent { status: Some(404), .. }), "{unknown:?}");

    // nothing listening: retried, and the error says why without the URL that holds the token
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let unreachable = channels(
        &[("FLEETD_TELEGRAM_URL", &closed), ("FLEETD_TELEGRAM_BOT_TOKEN", TOKEN)],
        Duration::from_secs(5),
    );
    let outcome = unreachable.send(&delivery(Channel::Telegram, "1", &m, None)).await;
    assert!(matches!(&outcome, Outcome::Retry { status: None, .. }), "{outcome:?}");
    for o in [&blocked, &limited, &down, &unknown, &outcome] {
        assert!(!o.detail().contains("test-token") && !o.detail().contains("/bot"), "{o:?}");
        assert!(!format!("{o:?}").contains("test-token"), "{o:?}");
    }

    let bad = send("@no").await;
    assert!(
        matches!(&bad, Outcome::Permanent { status: None, error } if error.contains("not a Telegram chat id")),
        "{bad:?}"
    );
    assert_eq!(log.lock().expect("log").len(), 4, "a bad chat id is not sent");

    let none = channels(&[], Duration::from_secs(5));
    let outcome = none.send(&delivery(Channel::Telegram, "1", &m, None)).await;
    assert!(
        matches!(&outcome, Outcome::Permanent { error, .. } if error.contains("not configured: set FLEETD_TELEGRAM_BOT_TOKEN")),
        "{outcome:?}"
    );
}
