//! Request checks (common parameters, app key, timestamp skew, signature, rate limit) and the
//! token methods. Error codes and messages follow the vendor's documentation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::Utc;
use fleet_config::Secret;
use fleet_tracksolid::sign::{md5_lower, sign};
use rand::RngCore;
use serde_json::{json, Value};

use super::wire::{format_time, ok, parse_time, ApiFault};
use super::SimState;

/// The account the simulated service accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub app_key: String,
    pub app_secret: Secret<String>,
    pub user: String,
    pub password: Secret<String>,
}

impl Default for Credentials {
    fn default() -> Self {
        super::default_credentials()
    }
}

#[derive(Debug, Clone)]
struct Token {
    refresh: String,
    /// Wall-clock expiry, unix seconds.
    expires_at: i64,
}

/// Issued tokens and the rate limiter's window.
#[derive(Debug, Default)]
pub struct AuthState {
    tokens: Mutex<HashMap<String, Token>>,
    /// (second, calls in that second)
    window: Mutex<(i64, u32)>,
}

impl AuthState {
    /// Forgets every issued token.
    pub fn revoke_all(&self) {
        if let Ok(mut t) = self.tokens.lock() {
            t.clear();
        }
    }
}

/// Largest accepted difference between a request's timestamp and the clock, seconds.
pub const MAX_SKEW_S: i64 = 600;

const COMMON: [&str; 7] = ["method", "timestamp", "app_key", "sign", "sign_method", "v", "format"];

/// The vendor's signature over the parameters as received (a map here, sorted for signing).
fn expected_sign(params: &HashMap<String, String>, secret: &str) -> String {
    let sorted: BTreeMap<String, String> =
        params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    sign(&sorted, secret)
}

/// Checks everything but the token; returns the method name.
pub fn check_request(state: &SimState, p: &HashMap<String, String>) -> Result<String, ApiFault> {
    for name in COMMON {
        if p.get(name).is_none_or(|v| v.is_empty()) {
            return Err(ApiFault::param(format!("Parameter error: {name} is required")));
        }
    }
    let creds = &state.config.credentials;
    if p["app_key"] != creds.app_key {
        return Err(ApiFault::param("Missing AppKey parameter or invalid AppKey"));
    }
    let Some(ts) = parse_time(&p["timestamp"]) else {
        return Err(ApiFault::param(
            "Parameter error: timestamp must be yyyy-MM-dd HH:mm:ss (UTC)",
        ));
    };
    if (ts - Utc::now().timestamp()).abs() > MAX_SKEW_S {
        return Err(ApiFault::param(
            "Parameter error: timestamp differs from server time by more than 10 minutes",
        ));
    }
    match p["v"].as_str() {
        "0.9" => {} // the vendor's unsigned protocol version
        "1.0" => {
            if !p["sign_method"].eq_ignore_ascii_case("md5") {
                return Err(ApiFault::param("Parameter error: sign_method must be md5"));
            }
            if expected_sign(p, creds.app_secret.expose()) != p["sign"] {
                return Err(ApiFault::param("Illegal sign"));
            }
        }
        _ => return Err(ApiFault::param("Parameter error: v must be 1.0")),
    }
    if let Some(limit) = state.config.rate_limit_per_s {
        let now = Utc::now().timestamp();
        let mut w =
            state.auth.window.lock().map_err(|_| ApiFault::new(-1, "The system is busy"))?;
        if w.0 != now {
            *w = (now, 0);
        }
        w.1 += 1;
        if w.1 > limit {
            return Err(ApiFault::new(1006, "Illegal access, too frequently request!"));
        }
    }
    Ok(p["method"].clone())
}

fn new_token() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn expires_in(state: &SimState, p: &HashMap<String, String>) -> Result<i64, ApiFault> {
    let v: i64 = p
        .get("expires_in")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiFault::param("Parameter error: expires_in is required"))?;
    if !(60..=7200).contains(&v) {
        return Err(ApiFault::param("Parameter error: expires_in must be between 60 and 7200"));
    }
    Ok(v.min(state.config.max_token_lifetime_s as i64))
}

fn issue(state: &SimState, lifetime: i64, replaces: Option<&str>) -> Value {
    let access = new_token();
    let refresh = new_token();
    let now = Utc::now().timestamp();
    if let Ok(mut tokens) = state.auth.tokens.lock() {
        if state.config.invalidate_on_reissue {
            tokens.clear();
        } else if let Some(old) = replaces {
            tokens.remove(old);
        }
        // a client logging in on every request must not grow the table without bound
        tokens.retain(|_, t| t.expires_at > now);
        tokens
            .insert(access.clone(), Token { refresh: refresh.clone(), expires_at: now + lifetime });
    }
    let c = &state.config.credentials;
    ok(json!({
        "appKey": c.app_key,
        "account": c.user,
        "accessToken": access,
        "expiresIn": lifetime,
        "refreshToken": refresh,
        "time": format_time(now),
    }))
}

/// `jimi.oauth.token.get`.
pub fn token_get(state: &SimState, p: &HashMap<String, String>) -> Result<Value, ApiFault> {
    let c = &state.config.credentials;
    let user_ok = p.get("user_id").is_some_and(|u| *u == c.user);
    let pw_ok = p
        .get("user_pwd_md5")
        .is_some_and(|h| h.eq_ignore_ascii_case(&md5_lower(c.password.expose())));
    if !user_ok || !pw_ok || state.is_rejecting() {
        return Err(ApiFault::new(1002, "Incorrect user name or password"));
    }
    let lifetime = expires_in(state, p)?;
    Ok(issue(state, lifetime, None))
}

/// `jimi.oauth.token.refresh`.
pub fn token_refresh(state: &SimState, p: &HashMap<String, String>) -> Result<Value, ApiFault> {
    let invalid = || ApiFault::new(1004, "Illegal request，token is invalid");
    if state.is_rejecting() {
        return Err(invalid());
    }
    let access = p.get("access_token").ok_or_else(invalid)?;
    let refresh = p.get("refresh_token").ok_or_else(invalid)?;
    let valid = state
        .auth
        .tokens
        .lock()
        .ok()
        .and_then(|t| t.get(access).cloned())
        .is_some_and(|t| t.refresh == *refresh && t.expires_at > Utc::now().timestamp());
    if !valid {
        return Err(invalid());
    }
    let lifetime = expires_in(state, p)?;
    Ok(issue(state, lifetime, Some(access)))
}

/// Every method but the token methods needs a live access token.
pub fn check_token(state: &SimState, p: &HashMap<String, String>) -> Result<(), ApiFault> {
    let fault = || ApiFault::new(1004, "Illegal access, token exception!");
    let token = p.get("access_token").ok_or_else(fault)?;
    let live = state
        .auth
        .tokens
        .lock()
        .ok()
        .and_then(|t| t.get(token).cloned())
        .is_some_and(|t| t.expires_at > Utc::now().timestamp());
    if live {
        Ok(())
    } else {
        Err(fault())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_expected_for_the_reference_request_is_the_reference_value() {
        let p: HashMap<String, String> = [
            ("app_key", "8FB345B8693CCD00TESTKEY000000000"),
            ("expires_in", "7200"),
            ("format", "json"),
            ("method", "jimi.oauth.token.get"),
            ("sign_method", "md5"),
            ("timestamp", "2024-01-02 03:04:05"),
            ("user_id", "demo"),
            ("user_pwd_md5", "5d7845ac6ee7cfffafc5fe5f35cf666d"),
            ("v", "1.0"),
            ("sign", "whatever was sent"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            expected_sign(&p, "0123456789abcdef0123456789abcdef"),
            "A0C5A2A14669C8670983A1332EFF9C74"
        );
    }
}
