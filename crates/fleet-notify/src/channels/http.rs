//! What the HTTP channels (SMS, Telegram, webhooks) share: one client that never follows a
//! redirect, bounded reads of answers, and the common mapping of statuses to outcomes.

use std::time::Duration;

use super::{error_chain, truncate, Outcome, MAX_RESPONSE_CHARS};

/// The most of an answer fleetd reads; the rest is not needed to judge it.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The client every HTTP channel uses: a timeout on the whole request, and no redirects. A 3xx
/// is a refusal: following one could carry the message, its headers or a token in the path
/// somewhere the operator did not configure.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fleetd/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The status and (the start of) the body of an answer.
pub(crate) async fn read(mut resp: reqwest::Response) -> Result<(u16, String), Outcome> {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // the status came but the body broke off: the provider did answer, judge by status
            Err(_) if (200..300).contains(&status) => break,
            Err(e) => return Err(transport_error(e)),
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A request that got no answer: nothing connected, it timed out or broke off. Worth retrying.
/// The URL is stripped first (the Telegram bot token is in its path).
pub(crate) fn transport_error(e: reqwest::Error) -> Outcome {
    let e = e.without_url();
    if e.is_builder() {
        // the URL itself is unusable (a stored webhook URL, say): no retry will fix it
        return Outcome::permanent(None, format!("cannot send to this URL: {}", error_chain(&e)));
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    Outcome::retry(None, format!("{what}: {}", error_chain(&e)))
}

/// The usual mapping: 2xx sent; 408, 429 and 5xx worth retrying; any other status (4xx, a
/// redirect fleetd does not follow) permanent.
pub(crate) fn by_status(status: u16, body: &str) -> Outcome {
    let body = truncate(body.trim(), MAX_RESPONSE_CHARS);
    match status {
        200..=299 => Outcome::sent(Some(status), body),
        408 | 429 | 500..=599 => Outcome::retry(Some(status), format!("HTTP {status}: {body}")),
        300..=399 => Outcome::permanent(
            Some(status),
            format!("HTTP {status}: redirects are not followed; configure the final URL"),
        ),
        _ => Outcome::permanent(Some(status), format!("HTTP {status}: {body}")),
    }
}
