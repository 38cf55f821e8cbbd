//! The ways a message leaves fleetd: e-mail over SMTP, SMS through a gateway, the Telegram Bot
//! API and signed webhooks. Each send answers an [`Outcome`] the dispatcher records: sent, worth
//! retrying (the far side was down, slow or busy), or permanently refused (a bad address, a
//! refused credential, a channel that is not configured).
//!
//! Secrets (SMTP password, SMS API key, bot token, webhook secrets) never appear in an outcome
//! or a log line: transport errors are stripped of their URL, which for Telegram holds the token.

pub mod email;
mod http;
pub mod sms;
pub mod telegram;
pub mod webhook;

use std::time::Duration;

use fleet_config::Secret;
use fleet_core::notification::template::Rendered;
use fleet_core::notification::Channel;

pub use webhook::{sign, verify_signature, SignatureError, SIGNATURE_TOLERANCE};

/// Longest one send may take, connection included, unless the caller chooses another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a retry outcome's error text names the wait the provider asked for.
pub(crate) const RETRY_AFTER: &str = "(retry after ";

/// Provider responses and errors are kept to this many characters.
pub const MAX_RESPONSE_CHARS: usize = 1000;

/// One message in every channel's form, as the template module renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// E-mail subject.
    pub subject: String,
    /// Plain text: the e-mail's text part and the Telegram message.
    pub text: String,
    /// The e-mail's HTML part.
    pub html: String,
    /// The SMS form (fits one SMS when it can).
    pub short: String,
    /// The webhook's JSON body, exactly as signed and sent.
    pub webhook_body: Vec<u8>,
}

impl From<Rendered> for Message {
    fn from(r: Rendered) -> Self {
        let webhook_body = serde_json::to_vec(&r.webhook).unwrap_or_else(|_| b"{}".to_vec());
        Message { subject: r.subject, text: r.text, html: r.html, short: r.short, webhook_body }
    }
}

/// Where a webhook delivery goes and the secret its body is signed with.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: Secret<String>,
}

/// One send: which outbox row it is, where it goes and what it says.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub delivery_id: i64,
    /// Stable for every attempt of this delivery; webhook receivers dedup on it.
    pub idempotency_key: &'a str,
    pub channel: Channel,
    /// The e-mail address, phone number (E.164) or Telegram chat id; for webhooks, informative.
    pub address: &'a str,
    /// Required for [`Channel::Webhook`].
    pub webhook: Option<&'a WebhookTarget>,
    pub message: &'a Message,
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took the message; `response` is its answer (at most 1000 characters).
    Sent { status: Option<u16>, response: String },
    /// Not delivered, but worth trying again later: 5xx, 408/429, a timeout, no connection, an
    /// SMTP 4xx reply.
    Retry { status: Option<u16>, error: String },
    /// Not delivered and trying again would not help: 4xx, an invalid address, a refused
    /// credential, a channel that is not configured, an SMTP 5xx reply.
    Permanent { status: Option<u16>, error: String },
}

impl Outcome {
    pub fn is_sent(&self) -> bool {
        matches!(self, Outcome::Sent { .. })
    }

    /// The provider's status code (HTTP, SMTP reply code, Africa's Talking recipient code).
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Sent { status, .. }
            | Outcome::Retry { status, .. }
            | Outcome::Permanent { status, .. } => *status,
        }
    }

    /// The response (sent) or the error (otherwise), for the delivery log.
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Sent { response, .. } => response,
            Outcome::Retry { error, .. } | Outcome::Permanent { error, .. } => error,
        }
    }

    /// How long the provider asked to wait before the next try (Telegram's `retry_after` on
    /// 429, carried in the error text as `(retry after <n> s)`), for the dispatcher's backoff.
    pub fn retry_after(&self) -> Option<Duration> {
        let Outcome::Retry { error, .. } = self else { return None };
        let rest = &error[error.rfind(RETRY_AFTER)? + RETRY_AFTER.len()..];
        let secs = rest.strip_suffix(" s)")?.parse::<u64>().ok()?;
        Some(Duration::from_secs(secs))
    }

    pub(crate) fn sent(status: Option<u16>, response: impl AsRef<str>) -> Self {
        Outcome::Sent { status, response: truncate(response.as_ref(), MAX_RESPONSE_CHARS) }
    }

    pub(crate) fn retry(status: Option<u16>, error: impl AsRef<str>) -> Self {
        Outcome::Retry { status, error: truncate(error.as_ref(), MAX_RESPONSE_CHARS) }
    }

    pub(crate) fn permanent(status: Option<u16>, error: impl AsRef<str>) -> Self {
        Outcome::Permanent { status, error: truncate(error.as_ref(), MAX_RESPONSE_CHARS) }
    }
}

/// A channel could not be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    Http(String),
    #[error("cannot set up e-mail (FLEETD_SMTP_*): {0}")]
    Email(String),
}

/// Every configured channel, ready to send.
#[derive(Debug)]
pub struct Channels {
    http: reqwest::Client,
    timeout: Duration,
    email: Option<email::Email>,
    sms: Option<sms::Sms>,
    telegram: Option<telegram::Telegram>,
}

impl Channels {
    /// The channels `config` configures, each send limited to [`DEFAULT_TIMEOUT`].
    pub fn from_config(config: &fleet_config::Config) -> Result<Self, BuildError> {
        Self::with_timeout(&config.notify, DEFAULT_TIMEOUT)
    }

    /// The channels of `notify`, each send limited to `timeout`.
    pub fn with_timeout(
        notify: &fleet_config::NotifyConfig,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        Ok(Channels {
            http: http::client(timeout).map_err(|e| BuildError::Http(e.to_string()))?,
            timeout,
            email: notify.email.as_ref().map(|c| email::Email::new(c, timeout)).transpose()?,
            sms: notify.sms.clone().map(sms::Sms::new),
            telegram: notify.telegram.clone().map(telegram::Telegram::new),
        })
    }

    /// Whether messages can go out on `channel` (webhooks carry their own address and secret;
    /// the in-app bell needs no channel).
    pub fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::Telegram => self.telegram.is_some(),
            Channel::Webhook | Channel::InApp => true,
        }
    }

    /// The longest a [`Channels::send`] may take: the timeout and the moment it takes to notice.
    pub fn send_limit(&self) -> Duration {
        self.timeout + Duration::from_millis(500)
    }

    /// Sends one delivery and says what became of it. Never longer than [`Self::send_limit`].
    pub async fn send(&self, d: &Delivery<'_>) -> Outcome {
        let send = self.send_unbounded(d);
        match tokio::time::timeout(self.send_limit(), send).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::retry(None, format!("timed out after {:?}", self.timeout)),
        }
    }

    async fn send_unbounded(&self, d: &Delivery<'_>) -> Outcome {
        match d.channel {
            Channel::Email => match &self.email {
                Some(e) => e.send(d).await,
                None => not_configured("e-mail", "FLEETD_SMTP_HOST and FLEETD_SMTP_FROM"),
            },
            Channel::Sms => match &self.sms {
                Some(s) => s.send(&self.http, d).await,
                None => not_configured(
                    "SMS",
                    "FLEETD_SMS_USERNAME and FLEETD_SMS_API_KEY (or FLEETD_SMS_PROVIDER=generic and FLEETD_SMS_URL)",
                ),
            },
            Channel::Telegram => match &self.telegram {
                Some(t) => t.send(&self.http, d).await,
                None => not_configured("Telegram", "FLEETD_TELEGRAM_BOT_TOKEN"),
            },
            Channel::Webhook => match d.webhook {
                Some(target) => webhook::send(&self.http, target, d).await,
                None => Outcome::permanent(None, "webhook delivery without a webhook"),
            },
            Channel::InApp => {
                Outcome::permanent(None, "in-app notifications are delivered by storage, not sent")
            }
        }
    }
}

fn not_configured(what: &str, settings: &str) -> Outcome {
    Outcome::permanent(None, format!("{what} is not configured: set {settings}"))
}

/// `s` cut to at most `max` characters, marked with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s[i..].chars().count() > 1 => format!("{}…", &s[..i]),
        _ => s.to_owned(),
    }
}

/// An error and its causes, `: `-separated (reqwest's own text says only "error sending
/// request"; the causes say why).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_outcome_can_name_the_wait_asked_for() {
        let limited = Outcome::retry(Some(429), "HTTP 429: Too Many Requests (retry after 17 s)");
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(17)));
        assert_eq!(Outcome::retry(Some(503), "HTTP 503: busy").retry_after(), None);
        assert_eq!(Outcome::sent(Some(200), "(retry after 3 s)").retry_after(), None);
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4), "ééé…");
        assert_eq!(truncate(&"x".repeat(5000), MAX_RESPONSE_CHARS).chars().count(), 1000);
    }
}
