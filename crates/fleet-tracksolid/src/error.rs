//! What can go wrong calling the OpenAPI, and which failures are worth retrying.

use std::time::Duration;

use crate::wire::{Envelope, Lenient};

/// A failed OpenAPI call.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// `jimi.oauth.token.get` refused the account name or password.
    #[error("the vendor refused the account or password: {message}")]
    BadCredentials { message: String },
    /// 1004: the access token is invalid, expired or unknown.
    #[error("the vendor rejected the access token: {message}")]
    TokenInvalid { message: String },
    /// 1006: too many requests.
    #[error("the vendor is rate limiting this account: {message}")]
    RateLimited { message: String },
    /// 1005: requests from this IP address exceed the vendor's limit.
    #[error("the vendor's limit for this IP address is exceeded: {message}")]
    IpLimit { message: String },
    /// 1001, 1003, 1007, 1008 and other codes: the request itself is wrong.
    #[error("the vendor rejected the request with code {code}: {message}")]
    BadRequest { code: i64, message: String },
    /// The device is not this account's, does not exist or has expired.
    #[error("the vendor refused the device: {message}")]
    IllegalDevice { message: String },
    /// -1 and 1100: the vendor's system is busy.
    #[error("the vendor is busy (code {code}): {message}")]
    VendorBusy { code: i64, message: String },
    #[error("could not reach the vendor: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("{method} got no answer within {after:?}")]
    Timeout { method: String, after: Duration },
    #[error("{method} answered with something unexpected: {message}")]
    Decode { method: String, message: String },
    /// An HTTP status other than 200 (the vendor reports its own errors with 200).
    #[error("the vendor answered HTTP {status}")]
    Http { status: u16 },
    #[error("invalid client configuration: {reason}")]
    InvalidConfig { reason: String },
    /// Logging in failed moments ago and is not tried again before a short cooldown.
    #[error("logging in to the vendor failed moments ago: {message}")]
    LoginUnavailable { message: String },
}

impl VendorError {
    /// Whether the same request may succeed if sent again after a pause: rate limits, a busy
    /// vendor, network failures, timeouts and gateway errors. Wrong credentials or requests
    /// never get better by repetition, and a rejected token is renewed, not retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            VendorError::RateLimited { .. }
            | VendorError::VendorBusy { .. }
            | VendorError::Transport(_)
            | VendorError::Timeout { .. } => true,
            VendorError::Http { status } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }
}

/// The method that logs in; its failures mean different things than other methods'.
const TOKEN_GET: &str = "jimi.oauth.token.get";

/// `Ok` for a successful envelope, otherwise the error its code and message describe.
pub(crate) fn check_envelope(method: &str, envelope: &Envelope) -> Result<(), VendorError> {
    let message = envelope.message_text().to_owned();
    let lower = message.to_lowercase();
    let code = match &envelope.code {
        Lenient::Value(0) => return Ok(()),
        Lenient::Value(code) => Some(*code),
        Lenient::Invalid(_) | Lenient::Missing => None,
    };
    match code {
        Some(1005) => return Err(VendorError::IpLimit { message }),
        Some(1006) => return Err(VendorError::RateLimited { message }),
        Some(code @ (-1 | 1100)) => return Err(VendorError::VendorBusy { code, message }),
        _ => {}
    }
    // after the limit codes, whose messages may well mention the account
    if method == TOKEN_GET && (code == Some(1002) || mentions_credentials(&lower)) {
        return Err(VendorError::BadCredentials { message });
    }
    if code == Some(1004) {
        return Err(VendorError::TokenInvalid { message });
    }
    // the texts for unknown and expired IMEIs are documented, their codes are not
    if names_device_problem(&lower) || (code == Some(1002) && method.starts_with("jimi.device.")) {
        return Err(VendorError::IllegalDevice { message });
    }
    match (code, &envelope.code) {
        (Some(code), _) => Err(VendorError::BadRequest { code, message }),
        // error samples carry placeholder codes ("xxx"); their message still tells a token
        // failure apart, which clients rely on to log in again
        (None, _) if lower.contains("token") => Err(VendorError::TokenInvalid { message }),
        (None, Lenient::Invalid(raw)) => Err(VendorError::Decode {
            method: method.to_owned(),
            message: format!("non-numeric code {raw:?}: {message}"),
        }),
        (None, _) => Err(VendorError::Decode {
            method: method.to_owned(),
            message: "the response has no code".to_owned(),
        }),
    }
}

fn mentions_credentials(lower: &str) -> bool {
    ["password", "user name", "username", "illegal user", "account"]
        .iter()
        .any(|w| lower.contains(w))
}

fn names_device_problem(lower: &str) -> bool {
    ["imei does not exist", "device has expired", "illegal device"]
        .iter()
        .any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(method: &str, body: serde_json::Value) -> Result<(), VendorError> {
        check_envelope(method, &serde_json::from_value(body).expect("envelope"))
    }

    #[test]
    fn the_token_error_sample_with_a_placeholder_code_is_bad_credentials() {
        let err =
            check(TOKEN_GET, json!({"code": "xxx", "message": "Incorrect user name or password"}));
        assert!(matches!(err, Err(VendorError::BadCredentials { .. })), "{err:?}");
    }

    #[test]
    fn the_refresh_error_sample_with_a_placeholder_code_is_an_invalid_token() {
        let err = check(
            "jimi.oauth.token.refresh",
            json!({"code": "xxx", "message": "Illegal request，token is invalid"}),
        );
        assert!(matches!(err, Err(VendorError::TokenInvalid { .. })), "{err:?}");
    }

    #[test]
    fn an_expired_device_on_track_list_is_an_illegal_device_whatever_its_code() {
        let err = check(
            "jimi.device.track.list",
            json!({"code": 1001, "message": "The device has expired{353419031939627}"}),
        );
        assert!(matches!(err, Err(VendorError::IllegalDevice { .. })), "{err:?}");
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        let m = || String::from("m");
        assert!(VendorError::RateLimited { message: m() }.is_retryable());
        assert!(VendorError::VendorBusy { code: -1, message: m() }.is_retryable());
        assert!(VendorError::Timeout { method: m(), after: Duration::from_secs(1) }.is_retryable());
        assert!(VendorError::Http { status: 503 }.is_retryable());
        assert!(!VendorError::Http { status: 500 }.is_retryable());
        assert!(!VendorError::BadCredentials { message: m() }.is_retryable());
        assert!(!VendorError::BadRequest { code: 1001, message: m() }.is_retryable());
        assert!(!VendorError::TokenInvalid { message: m() }.is_retryable());
        assert!(!VendorError::IpLimit { message: m() }.is_retryable());
        assert!(!VendorError::IllegalDevice { message: m() }.is_retryable());
    }
}
