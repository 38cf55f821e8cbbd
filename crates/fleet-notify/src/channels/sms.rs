//! SMS through Africa's Talking's SMS API or a generic HTTP gateway.
//!
//! Africa's Talking: `POST {base}/version1/messaging`, form fields `username`, `to`, `message`
//! and optionally `from` (sender id), headers `apiKey` and `Accept: application/json`. The answer
//! lists each recipient with a `statusCode`: 100 (processed), 101 (sent) and 102 (queued) mean
//! the message was taken; the rest say why not.
//!
//! Generic: `POST {url}` with `{"to", "message", "from"}` as JSON and, when an API key is set,
//! `Authorization: Bearer <key>`; the HTTP status decides.

use fleet_config::{SmsConfig, SmsProvider};
use fleet_core::notification::{address, Channel};
use serde::Deserialize;

use super::{http, Delivery, Outcome};

#[derive(Debug)]
pub(crate) struct Sms {
    config: SmsConfig,
}

impl Sms {
    pub(crate) fn new(config: SmsConfig) -> Self {
        Sms { config }
    }

    pub(crate) async fn send(&self, client: &reqwest::Client, d: &Delivery<'_>) -> Outcome {
        let to = match address::normalise(Channel::Sms, d.address) {
            Ok(to) => to,
            Err(e) => return Outcome::permanent(None, e.to_string()),
        };
        let to = to.as_str();
        let c = &self.config;
        let request = match c.provider {
            SmsProvider::AfricasTalking => {
                let mut form = vec![
                    ("username", c.username.as_str()),
                    ("to", to),
                    ("message", d.message.short.as_str()),
                ];
                if let Some(from) = &c.sender {
                    form.push(("from", from.as_str()));
                }
                client
                    .post(format!("{}/version1/messaging", c.url))
                    .header("apiKey", c.api_key.as_ref().map_or("", |k| k.expose().as_str()))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&form)
            }
            SmsProvider::Generic => {
                let mut body = serde_json::json!({ "to": to, "message": d.message.short });
                if let Some(from) = &c.sender {
                    body["from"] = serde_json::Value::from(from.as_str());
                }
                let r = client.post(&c.url).json(&body);
                match &c.api_key {
                    Some(key) => r.bearer_auth(key.expose()),
                    None => r,
                }
            }
        };
        let (status, body) = match request.send().await {
            Ok(resp) => match http::read(resp).await {
                Ok(answer) => answer,
                Err(outcome) => return outcome,
            },
            Err(e) => return http::transport_error(e),
        };
        match c.provider {
            SmsProvider::AfricasTalking => africastalking(status, &body),
            SmsProvider::Generic => http::by_status(status, &body),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AtAnswer {
    #[serde(rename = "SMSMessageData")]
    data: AtData,
}

#[derive(Debug, Deserialize)]
struct AtData {
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Recipients", default)]
    recipients: Vec<AtRecipient>,
}

#[derive(Debug, Deserialize)]
struct AtRecipient {
    #[serde(rename = "statusCode")]
    status_code: u16,
    #[serde(default)]
    status: String,
    #[serde(rename = "messageId", default)]
    message_id: String,
    #[serde(default)]
    cost: String,
}

/// Africa's Talking's answer for one recipient. Codes that may clear up by themselves (risk
/// hold, insufficient balance until someone tops up, could not route, the gateway's own
/// errors) are retried until the give-up horizon; the rest (invalid sender id or number,
/// unsupported number type, blacklisted, do-not-disturb, rejected by the gateway) are final.
fn africastalking(status: u16, body: &str) -> Outcome {
    if !(200..300).contains(&status) {
        return http::by_status(status, body);
    }
    let Ok(answer) = serde_json::from_str::<AtAnswer>(body) else {
        // it was taken (2xx), but the answer is not the documented one: do not send twice
        return Outcome::sent(Some(status), format!("unrecognised answer: {}", body.trim()));
    };
    let Some(r) = answer.data.recipients.first() else {
        // no recipient accepted; the Message says why (InvalidPhoneNumber, InvalidSenderId…)
        return Outcome::permanent(Some(status), format!("refused: {}", answer.data.message));
    };
    let code = r.status_code;
    match code {
        100..=102 => {
            Outcome::sent(Some(code), format!("{} {} {}", r.status, r.message_id, r.cost).trim())
        }
        401 | 405 | 407 | 500 | 501 => Outcome::retry(Some(code), format!("{} ({code})", r.status)),
        _ => Outcome::permanent(Some(code), format!("{} ({code})", r.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_codes_map_to_outcomes() {
        let answer = |code: u16, status: &str| {
            format!(
                r#"{{"SMSMessageData":{{"Message":"Sent to 1/1 Total Cost: KES 0.8000","Recipients":[{{"statusCode":{code},"number":"+254711000000","status":"{status}","cost":"KES 0.8000","messageId":"ATPid_1"}}]}}}}"#
            )
        };
        assert!(africastalking(201, &answer(101, "Success")).is_sent());
        assert!(africastalking(201, &answer(102, "Queued")).is_sent());
        assert!(matches!(
            africastalking(201, &answer(405, "InsufficientBalance")),
            Outcome::Retry { status: Some(405), .. }
        ));
        assert!(matches!(
            africastalking(201, &answer(403, "InvalidPhoneNumber")),
            Outcome::Permanent { status: Some(403), .. }
        ));
        assert!(matches!(
            africastalking(201, &answer(406, "UserInBlacklist")),
            Outcome::Permanent { .. }
        ));
        let none = r#"{"SMSMessageData":{"Message":"InvalidSenderId","Recipients":[]}}"#;
        assert!(
            matches!(africastalking(201, none), Outcome::Permanent { error, .. } if error.contains("InvalidSenderId"))
        );
        assert!(matches!(
            africastalking(401, "The supplied authentication is invalid"),
            Outcome::Permanent { status: Some(401), .. }
        ));
        assert!(matches!(africastalking(503, ""), Outcome::Retry { .. }));
    }
}
