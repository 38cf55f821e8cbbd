//! Telegram Bot API: `POST {base}/bot<token>/sendMessage` with `{chat_id, text,
//! disable_web_page_preview}`. The token is in the URL path, so no URL of this channel is ever
//! logged or returned: transport errors are stripped of it.

use fleet_config::TelegramConfig;
use fleet_core::notification::{address, Channel};

use super::{http, truncate, Delivery, Outcome, RETRY_AFTER};

/// Telegram refuses longer texts.
const MAX_TEXT_CHARS: usize = 4096;

#[derive(Debug)]
pub(crate) struct Telegram {
    config: TelegramConfig,
}

impl Telegram {
    pub(crate) fn new(config: TelegramConfig) -> Self {
        Telegram { config }
    }

    pub(crate) async fn send(&self, client: &reqwest::Client, d: &Delivery<'_>) -> Outcome {
        let chat = match address::normalise(Channel::Telegram, d.address) {
            Ok(chat) => chat,
            Err(e) => return Outcome::permanent(None, e.to_string()),
        };
        let chat = chat.as_str();
        // numeric ids go as numbers, @channelnames as strings; the API takes either
        let chat_id = match chat.parse::<i64>() {
            Ok(id) => serde_json::Value::from(id),
            Err(_) => serde_json::Value::from(chat),
        };
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": truncate(&d.message.text, MAX_TEXT_CHARS),
            "disable_web_page_preview": true,
        });
        let url = format!("{}/bot{}/sendMessage", self.config.url, self.config.bot_token.expose());
        match client.post(url).json(&body).send().await {
            Ok(resp) => match http::read(resp).await {
                Ok((status, body)) => outcome(status, &body),
                Err(outcome) => outcome,
            },
            Err(e) => http::transport_error(e),
        }
    }
}

/// Telegram answers `{"ok": true, "result": {...}}`, or `{"ok": false, "error_code",
/// "description", "parameters": {"retry_after"}}`: 429 is worth retrying after the time it
/// names, other 4xx (chat not found, bot blocked) are not, 5xx are.
fn outcome(status: u16, body: &str) -> Outcome {
    let answer: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |k: &str| answer.as_ref().and_then(|a| a.get(k));
    let ok = field("ok").and_then(|v| v.as_bool());
    if (200..300).contains(&status) && ok != Some(false) {
        let id = field("result").and_then(|r| r.get("message_id")).and_then(|v| v.as_i64());
        return match id {
            Some(id) => Outcome::sent(Some(status), format!("message_id {id}")),
            None => Outcome::sent(Some(status), body.trim()),
        };
    }
    let description = field("description").and_then(|v| v.as_str()).unwrap_or(body.trim());
    if status == 429 {
        let after = field("parameters").and_then(|p| p.get("retry_after")).and_then(|v| v.as_i64());
        let error = match after {
            Some(s) => format!("HTTP 429: {description} {RETRY_AFTER}{s} s)"),
            None => format!("HTTP 429: {description}"),
        };
        return Outcome::retry(Some(status), error);
    }
    http::by_status(if (200..300).contains(&status) { 502 } else { status }, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes() {
        let sent = outcome(200, r#"{"ok":true,"result":{"message_id":42,"chat":{"id":1}}}"#);
        assert_eq!(sent, Outcome::Sent { status: Some(200), response: "message_id 42".into() });
        let limited = outcome(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert!(
            matches!(&limited, Outcome::Retry { status: Some(429), error } if error.contains("retry after 7 s")),
            "{limited:?}"
        );
        let blocked = outcome(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert!(
            matches!(&blocked, Outcome::Permanent { status: Some(403), error } if error.contains("bot was blocked")),
            "{blocked:?}"
        );
        assert!(matches!(outcome(502, "Bad Gateway"), Outcome::Retry { status: Some(502), .. }));
    }
}
