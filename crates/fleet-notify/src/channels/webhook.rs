//! Signed webhooks: the rendered JSON payload POSTed to a URL an admin registered, with the
//! delivery's idempotency key and an HMAC-SHA256 signature over the timestamp and body:
//!
//! ```text
//! X-Fleetd-Delivery: <idempotency key, the same on every attempt>
//! X-Fleetd-Timestamp: <unix seconds>
//! X-Fleetd-Signature: t=<unix seconds>,v1=<hex hmac-sha256(secret, "<t>.<body>")>
//! ```
//!
//! Receivers check the signature with [`verify_signature`] (or its few lines in their own
//! language, docs/NOTIFICATIONS.md) and refuse timestamps older than five minutes, so a captured
//! request cannot be replayed later.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{http, Delivery, Outcome, WebhookTarget};

type HmacSha256 = Hmac<Sha256>;

/// How far a signature's timestamp may be from the receiver's clock.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// The `X-Fleetd-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex(&mac(secret, timestamp, body).finalize().into_bytes()))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => u8::from_str_radix(std::str::from_utf8(&[*hi, *lo]).ok()?, 16).ok(),
            _ => None,
        })
        .collect()
}

/// Why a receiver refuses a webhook request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's timestamp is {0} s away from now, more than allowed")]
    Stale(i64),
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks an `X-Fleetd-Signature` header against the body received, at `now` (unix seconds):
/// the timestamp must be within `tolerance` of now and one of the `v1` signatures must be the
/// HMAC-SHA256 of `"<t>.<body>"` under `secret` (compared in constant time).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", v)) => signatures.push(unhex(v).ok_or(SignatureError::Malformed)?),
            // other schemes a later fleetd may add are ignored
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let skew = now.saturating_sub(timestamp);
    if skew.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale(skew));
    }
    let expected = mac(secret, timestamp, body);
    if signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// POSTs the delivery's webhook body to `target`: 2xx sent; 408, 429 and 5xx retried (with the
/// same `X-Fleetd-Delivery`, so the receiver can tell a retry from a new message); other
/// statuses permanent.
pub(crate) async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    d: &Delivery<'_>,
) -> Outcome {
    let body = d.message.webhook_body.clone();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(target.secret.expose(), timestamp, &body);
    let request = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Fleetd-Delivery", d.idempotency_key)
        .header("X-Fleetd-Timestamp", timestamp.to_string())
        .header("X-Fleetd-Signature", signature)
        .body(body);
    match request.send().await {
        Ok(resp) => match http::read(resp).await {
            Ok((status, body)) => http::by_status(status, &body),
            Err(outcome) => outcome,
        },
        Err(e) => http::transport_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let body = br#"{"kind":"offline"}"#;
        let header = sign("whsec", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        let ok = |h: &str, b: &[u8], secret: &str, now: i64| {
            verify_signature(secret, h, b, now, SIGNATURE_TOLERANCE)
        };
        assert_eq!(ok(&header, body, "whsec", 1_700_000_100), Ok(()));
        assert_eq!(
            ok(&header, b"{\"kind\":\"online\"}", "whsec", 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(ok(&header, body, "other", 1_700_000_000), Err(SignatureError::Mismatch));
        assert_eq!(ok(&header, body, "whsec", 1_700_000_301), Err(SignatureError::Stale(301)));
        assert_eq!(ok(&header, body, "whsec", 1_699_999_000), Err(SignatureError::Stale(-1000)));
        assert_eq!(ok("v1=00", body, "whsec", 0), Err(SignatureError::Malformed));
        assert_eq!(ok("t=1,v1=zz", body, "whsec", 1), Err(SignatureError::Malformed));
        // a rotated secret: the receiver accepts whichever v1 matches
        let rotated = format!("{header},v1={}", "ab".repeat(32));
        assert_eq!(ok(&rotated, body, "whsec", 1_700_000_000), Ok(()));
    }

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // HMAC-SHA256("key", "1.{}") computed independently (python3 hmac module)
        assert_eq!(
            sign("key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
