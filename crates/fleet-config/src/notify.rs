//! Notification settings: the public address links point at, and the channels messages leave
//! by (SMTP, an SMS gateway, the Telegram Bot API). A channel is configured by its settings
//! together; half a channel is a load error naming the missing setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::load::{integer, Typed};
use crate::{ConfigError, Secret};

/// Everything the notification dispatcher and its channels need from the configuration.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Where people open fleetd (`https://fleet.example.com`, no trailing slash); message links
    /// start with it. Defaults to `http://<listen>`.
    pub public_url: String,
    /// `None`: no e-mail channel.
    pub email: Option<SmtpConfig>,
    /// `None`: no SMS channel.
    pub sms: Option<SmsConfig>,
    /// `None`: no Telegram channel.
    pub telegram: Option<TelegramConfig>,
    /// A message still undelivered this long after it was queued becomes a dead letter.
    pub give_up_after: Duration,
}

/// The mail server notifications go through.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// SMTP AUTH; `None`: no login.
    pub credentials: Option<SmtpCredentials>,
    /// The From header, `name <addr>` or a bare address.
    pub from: String,
    /// A PEM certificate trusted besides the public roots (a relay with a private CA or a
    /// self-signed certificate).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: Secret<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connect, then STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No TLS at all: for a relay on the same machine or a trusted network.
    Plain,
}

impl SmtpSecurity {
    pub fn as_str(&self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::Plain => "plain",
        }
    }
}

/// The SMS gateway.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    /// Africa's Talking: the API base (`https://api.africastalking.com`); generic: the URL
    /// messages are POSTed to.
    pub url: String,
    /// Africa's Talking app username; empty for the generic gateway.
    pub username: String,
    /// Africa's Talking `apiKey`, or the generic gateway's bearer token.
    pub api_key: Option<Secret<String>>,
    /// Sender id or short code.
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    /// Africa's Talking's SMS API (`POST {url}/version1/messaging`).
    AfricasTalking,
    /// Any HTTP gateway taking `{"to", "message", "from"}` as JSON.
    Generic,
}

/// The Telegram bot messages are sent as.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The Bot API base, `https://api.telegram.org`.
    pub url: String,
    /// Part of every request's URL path, so it is a secret, and so are those URLs.
    pub bot_token: Secret<String>,
}

pub const AFRICASTALKING_URL: &str = "https://api.africastalking.com";

pub(crate) fn notify(t: &Typed, listen: SocketAddr) -> Result<NotifyConfig, ConfigError> {
    let public_url = t
        .parsed("public_url", |v| http_url(v).map(|u| u.trim_end_matches('/').to_owned()))?
        .unwrap_or_else(|| format!("http://{listen}"));
    Ok(NotifyConfig {
        public_url,
        email: smtp(t)?,
        sms: sms(t)?,
        telegram: telegram(t)?,
        give_up_after: Duration::from_secs(
            t.required("notify_give_up_h", integer(1, 720))? as u64 * 3600,
        ),
    })
}

fn http_url(v: &str) -> Result<&str, String> {
    let v = v.trim();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| format!("{v:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(format!("{v:?} is not an http(s) URL with a host"));
    }
    Ok(v)
}

fn smtp(t: &Typed) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = t.parsed("smtp_host", |v| {
        let v = v.trim();
        if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) {
            Ok(v.to_owned())
        } else {
            Err(format!("{v:?} is not a host name or address"))
        }
    })?
    else {
        for key in ["smtp_user", "smtp_password", "smtp_from", "smtp_ca_file"] {
            if t.is_set(key) {
                return Err(t.invalid("smtp_host", format!("must be set, since {key} is set")));
            }
        }
        return Ok(None);
    };
    let port = t.required("smtp_port", integer(1, 65_535))? as u16;
    let security = t.required("smtp_security", |v| match v.trim() {
        "starttls" => Ok(SmtpSecurity::StartTls),
        "tls" => Ok(SmtpSecurity::Tls),
        "plain" => Ok(SmtpSecurity::Plain),
        other => Err(format!("{other:?} is not one of starttls, tls, plain")),
    })?;
    let user = t.parsed("smtp_user", |v| Ok(v.to_owned()))?;
    // never echo the password, not even in a refusal
    let password = t.parsed("smtp_password", |v| Ok(Secret::new(v.to_owned())))?;
    let credentials = match (user, password) {
        (Some(user), Some(password)) => Some(SmtpCredentials { user, password }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(t.invalid("smtp_password", "must be set, since smtp_user is set".into()))
        }
        (None, Some(_)) => {
            return Err(t.invalid("smtp_user", "must be set, since smtp_password is set".into()))
        }
    };
    let from = t
        .parsed("smtp_from", |v| {
            let v = v.trim();
            let addr = match (v.rfind('<'), v.ends_with('>')) {
                (Some(i), true) => &v[i + 1..v.len() - 1],
                _ => v,
            };
            let ok = addr.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !addr.contains(char::is_whitespace)
            });
            if ok {
                Ok(v.to_owned())
            } else {
                Err(format!(
                    "{v:?} is not an address like fleet@example.com or fleetd <fleet@example.com>"
                ))
            }
        })?
        .ok_or_else(|| t.invalid("smtp_from", "must be set, since smtp_host is set".into()))?;
    let ca_file = t.parsed("smtp_ca_file", |v| Ok(PathBuf::from(v.trim())))?;
    Ok(Some(SmtpConfig { host, port, security, credentials, from, ca_file }))
}

fn sms(t: &Typed) -> Result<Option<SmsConfig>, ConfigError> {
    let provider = t.required("sms_provider", |v| match v.trim() {
        "africastalking" => Ok(SmsProvider::AfricasTalking),
        "generic" => Ok(SmsProvider::Generic),
        other => Err(format!("{other:?} is not one of africastalking, generic")),
    })?;
    let url = t.parsed("sms_url", |v| http_url(v).map(|u| u.trim_end_matches('/').to_owned()))?;
    let username = t.parsed("sms_username", |v| Ok(v.trim().to_owned()))?;
    let api_key = t.parsed("sms_api_key", |v| Ok(Secret::new(v.trim().to_owned())))?;
    let sender = t.parsed("sms_sender", |v| Ok(v.trim().to_owned()))?;
    if url.is_none() && username.is_none() && api_key.is_none() {
        if sender.is_some() {
            return Err(t.invalid(
                "sms_username",
                "must be set (or FLEETD_SMS_URL for a generic gateway), since sms_sender is set"
                    .into(),
            ));
        }
        return Ok(None);
    }
    match provider {
        SmsProvider::AfricasTalking => {
            let Some(username) = username else {
                return Err(t.invalid(
                    "sms_username",
                    "must be set for the africastalking provider (sandbox for its sandbox)".into(),
                ));
            };
            if api_key.is_none() {
                return Err(
                    t.invalid("sms_api_key", "must be set for the africastalking provider".into())
                );
            }
            Ok(Some(SmsConfig {
                provider,
                url: url.unwrap_or_else(|| AFRICASTALKING_URL.to_owned()),
                username,
                api_key,
                sender,
            }))
        }
        SmsProvider::Generic => {
            let Some(url) = url else {
                return Err(t.invalid("sms_url", "must be set for the generic provider".into()));
            };
            Ok(Some(SmsConfig {
                provider,
                url,
                username: username.unwrap_or_default(),
                api_key,
                sender,
            }))
        }
    }
}

fn telegram(t: &Typed) -> Result<Option<TelegramConfig>, ConfigError> {
    let url =
        t.required("telegram_url", |v| http_url(v).map(|u| u.trim_end_matches('/').to_owned()))?;
    // a bot token is `<bot id>:<secret>`; the refusal never shows it
    let token = t.parsed("telegram_bot_token", |v| {
        let v = v.trim();
        let ok = v.split_once(':').is_some_and(|(id, rest)| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_digit())
                && rest.len() >= 8
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if ok {
            Ok(Secret::new(v.to_owned()))
        } else {
            Err("is not a bot token like 123456789:AA… (from @BotFather)".to_owned())
        }
    })?;
    Ok(token.map(|bot_token| TelegramConfig { url, bot_token }))
}
