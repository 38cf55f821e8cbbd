//! The OpenAPI client: signed form posts, the access-token lifecycle, retries with backoff.

mod methods;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_config::Secret;
use rand::Rng;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::dto::TokenGrant;
use crate::error::{check_envelope, VendorError};
use crate::sign::{md5_lower, sign, SIGN_PARAM};
use crate::time::format_time;
use crate::wire::Envelope;

pub use methods::{
    ALARM_MAX_ROWS_PER_WINDOW, ALARM_PAGE_SIZE, ALARM_WINDOW, MAX_IMEIS_PER_CALL,
    MILEAGE_PAGE_SIZE, TRACK_MAX_AGE, TRACK_WINDOW,
};

const TOKEN_GET: &str = "jimi.oauth.token.get";
const TOKEN_REFRESH: &str = "jimi.oauth.token.refresh";

/// Where and as whom the client calls the OpenAPI, and how patiently.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Full URL of the node's `/route/rest`, e.g. `https://eu-open.tracksolidpro.com/route/rest`.
    pub base_url: String,
    pub app_key: String,
    pub app_secret: Secret<String>,
    /// The Tracksolid account the token is issued for (also the default `target`).
    pub user_id: String,
    pub password: Secret<String>,
    /// Token lifetime asked for, seconds; the vendor accepts 60–7200.
    pub token_ttl_s: u32,
    /// Renew the token when less than this is left (capped at half its lifetime).
    pub token_refresh_margin: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Timeout of one `track.list` or `track.mileage` request: these have been seen taking
    /// minutes on large accounts.
    pub track_request_timeout: Duration,
    /// Retries after the first attempt of a call that failed transiently.
    pub max_retries: u32,
    /// First backoff delay; it doubles per retry, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl ClientConfig {
    /// A configuration with the defaults: a 7200 s token renewed 5 minutes before expiry, 60 s
    /// per request (300 s for track history), 3 retries backing off from 1 s up to 30 s.
    pub fn new(
        base_url: impl Into<String>,
        app_key: impl Into<String>,
        app_secret: Secret<String>,
        user_id: impl Into<String>,
        password: Secret<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            app_key: app_key.into(),
            app_secret,
            user_id: user_id.into(),
            password,
            token_ttl_s: 7200,
            token_refresh_margin: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
            track_request_timeout: Duration::from_secs(300),
            max_retries: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// A Tracksolid Pro OpenAPI client. One per account: it holds that account's token, and calls
/// from many tasks share it.
#[derive(Debug)]
pub struct TracksolidClient {
    http: reqwest::Client,
    endpoint: Url,
    config: ClientConfig,
    token: Mutex<TokenSlot>,
}

/// How long a refused login is remembered: calls in that time fail at once with the same error
/// instead of each logging in again (repeated wrong passwords can lock a vendor account).
const BAD_CREDENTIALS_COOLDOWN: Duration = Duration::from_secs(60);
/// How long any other failed login is remembered.
const LOGIN_FAILURE_COOLDOWN: Duration = Duration::from_secs(5);
/// Token calls wait at most this long per attempt and are retried at most once, so calls
/// queued behind a login are not held for minutes by an unresponsive vendor.
const TOKEN_CALL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct TokenSlot {
    token: Option<CachedToken>,
    failed: Option<FailedLogin>,
}

// Token expiry and login cooldowns read tokio's clock (the system clock unless a test pauses it),
// so tests can move past a token's lifetime without waiting it out.
#[derive(Debug, Clone)]
struct FailedLogin {
    at: tokio::time::Instant,
    bad_credentials: bool,
    message: String,
}

#[derive(Debug, Clone)]
struct CachedToken {
    access: Secret<String>,
    refresh: Option<Secret<String>>,
    expires_at: tokio::time::Instant,
    lifetime: Duration,
}

impl TracksolidClient {
    /// Checks the configuration and builds the HTTP client. Nothing is sent before the first
    /// call, which logs in.
    pub fn new(config: ClientConfig) -> Result<Self, VendorError> {
        let invalid = |reason: String| VendorError::InvalidConfig { reason };
        let endpoint = Url::parse(&config.base_url)
            .map_err(|e| invalid(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(invalid(format!("base_url {:?} is not http(s)", config.base_url)));
        }
        if config.app_key.trim().is_empty() || config.user_id.trim().is_empty() {
            return Err(invalid("app_key and user_id must not be empty".to_owned()));
        }
        if !(60..=7200).contains(&config.token_ttl_s) {
            return Err(invalid(format!(
                "token_ttl_s {} is outside 60..=7200",
                config.token_ttl_s
            )));
        }
        if config.request_timeout.is_zero() || config.track_request_timeout.is_zero() {
            return Err(invalid("request timeouts must be positive".to_owned()));
        }
        let http =
            reqwest::Client::builder().build().map_err(|e| invalid(format!("HTTP client: {e}")))?;
        Ok(Self { http, endpoint, config, token: Mutex::new(TokenSlot::default()) })
    }

    /// Calls `method` with a valid token: on 1004 the token is fetched again once and the call
    /// repeated. Returns the envelope's payload.
    async fn call(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<Option<Value>, VendorError> {
        let mut token_renewed = false;
        loop {
            let token = self.access_token().await?;
            let retries = self.config.max_retries;
            match self.send_retrying(method, params, Some(token.expose()), timeout, retries).await {
                Err(VendorError::TokenInvalid { message }) if !token_renewed => {
                    warn!(method, %message, "access token rejected; logging in again");
                    token_renewed = true;
                    self.discard_token(token.expose()).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sends until success, a permanent error, or `max_retries` retries of transient errors.
    async fn send_retrying(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        access_token: Option<&str>,
        timeout: Duration,
        max_retries: u32,
    ) -> Result<Option<Value>, VendorError> {
        let mut attempt = 0;
        loop {
            match self.send(method, params, access_token, timeout, attempt).await {
                Err(e) if e.is_retryable() && attempt < max_retries => {
                    let delay = self.backoff(attempt);
                    warn!(method, attempt, delay_ms = delay.as_millis(), error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Exponential backoff with jitter: half the doubled delay is fixed, half random, so
    /// clients throttled together do not come back together.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self.config.backoff_base.saturating_mul(2u32.saturating_pow(attempt));
        let ceiling = doubled.min(self.config.backoff_max);
        let half = ceiling / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }

    /// One signed POST. Parameters and token are never logged.
    async fn send(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        access_token: Option<&str>,
        timeout: Duration,
        attempt: u32,
    ) -> Result<Option<Value>, VendorError> {
        let form = self.signed_form(method, params, access_token);
        let started = Instant::now();
        let outcome = self.post(method, &form, timeout).await;
        let duration_ms = started.elapsed().as_millis();
        match &outcome {
            Ok(_) => debug!(method, attempt, duration_ms, "vendor call succeeded"),
            Err(e) => debug!(method, attempt, duration_ms, error = %e, "vendor call failed"),
        }
        outcome
    }

    async fn post(
        &self,
        method: &'static str,
        form: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Option<Value>, VendorError> {
        let network = |e: reqwest::Error| {
            if e.is_timeout() {
                VendorError::Timeout { method: method.to_owned(), after: timeout }
            } else {
                VendorError::Transport(e)
            }
        };
        let response = self
            .http
            .post(self.endpoint.clone())
            .form(form)
            .timeout(timeout)
            .send()
            .await
            .map_err(network)?;
        if response.status() != StatusCode::OK {
            return Err(VendorError::Http { status: response.status().as_u16() });
        }
        let body = response.bytes().await.map_err(network)?;
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
            VendorError::Decode { method: method.to_owned(), message: e.to_string() }
        })?;
        check_envelope(method, &envelope)?;
        Ok(envelope.into_payload())
    }

    /// The common parameters, the token, the method's own parameters, and their signature.
    fn signed_form(
        &self,
        method: &str,
        params: &[(&'static str, String)],
        access_token: Option<&str>,
    ) -> BTreeMap<String, String> {
        let mut form: BTreeMap<String, String> = [
            ("method", method),
            ("timestamp", &format_time(Utc::now())),
            ("app_key", &self.config.app_key),
            ("sign_method", "md5"),
            ("v", "1.0"),
            ("format", "json"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(token) = access_token {
            form.insert("access_token".to_owned(), token.to_owned());
        }
        for (name, value) in params {
            form.insert((*name).to_owned(), value.clone());
        }
        let signature = sign(&form, self.config.app_secret.expose());
        form.insert(SIGN_PARAM.to_owned(), signature);
        form
    }

    /// The cached token, renewed when close to expiry. The lock is held while fetching so
    /// concurrent calls wait for one login instead of each logging in; a login that failed
    /// moments ago is not repeated (see the cooldowns) but its error returned.
    async fn access_token(&self) -> Result<Secret<String>, VendorError> {
        let mut guard = self.token.lock().await;
        let slot = &mut *guard;
        if let Some(cached) = slot.token.as_ref() {
            let left = cached.expires_at.saturating_duration_since(tokio::time::Instant::now());
            let margin = self.config.token_refresh_margin.min(cached.lifetime / 2);
            if left > margin {
                return Ok(cached.access.clone());
            }
            if !left.is_zero() && cached.refresh.is_some() {
                match self.refresh_token(cached).await {
                    Ok(renewed) => {
                        let access = renewed.access.clone();
                        slot.token = Some(renewed);
                        return Ok(access);
                    }
                    // still valid for a while: keep using it and try renewing on the next call
                    Err(e) if e.is_retryable() => {
                        warn!(error = %e, "token refresh failed; using the current token");
                        return Ok(cached.access.clone());
                    }
                    Err(e) => warn!(error = %e, "token refresh refused; logging in again"),
                }
            }
        }
        if let Some(failed) = &slot.failed {
            let cooldown = if failed.bad_credentials {
                BAD_CREDENTIALS_COOLDOWN
            } else {
                LOGIN_FAILURE_COOLDOWN
            };
            if failed.at.elapsed() < cooldown {
                let message = failed.message.clone();
                return Err(if failed.bad_credentials {
                    VendorError::BadCredentials { message }
                } else {
                    VendorError::LoginUnavailable { message }
                });
            }
        }
        match self.fetch_token().await {
            Ok(fresh) => {
                let access = fresh.access.clone();
                slot.token = Some(fresh);
                slot.failed = None;
                Ok(access)
            }
            Err(e) => {
                let bad_credentials = matches!(e, VendorError::BadCredentials { .. });
                slot.failed = Some(FailedLogin {
                    at: tokio::time::Instant::now(),
                    bad_credentials,
                    message: e.to_string(),
                });
                Err(e)
            }
        }
    }

    async fn fetch_token(&self) -> Result<CachedToken, VendorError> {
        let params = [
            ("user_id", self.config.user_id.clone()),
            ("user_pwd_md5", md5_lower(self.config.password.expose())),
            ("expires_in", self.config.token_ttl_s.to_string()),
        ];
        self.token_request(TOKEN_GET, &params, None).await
    }

    async fn refresh_token(&self, current: &CachedToken) -> Result<CachedToken, VendorError> {
        let Some(refresh) = &current.refresh else {
            return Err(VendorError::TokenInvalid { message: "no refresh token".to_owned() });
        };
        let params = [
            ("refresh_token", refresh.expose().clone()),
            ("expires_in", self.config.token_ttl_s.to_string()),
        ];
        self.token_request(TOKEN_REFRESH, &params, Some(current.access.expose())).await
    }

    async fn token_request(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        access_token: Option<&str>,
    ) -> Result<CachedToken, VendorError> {
        let requested_at = tokio::time::Instant::now();
        let timeout = self.config.request_timeout.min(TOKEN_CALL_TIMEOUT);
        let retries = self.config.max_retries.min(1);
        let payload = self.send_retrying(method, params, access_token, timeout, retries).await?;
        let decode = |message: String| VendorError::Decode { method: method.to_owned(), message };
        let grant: TokenGrant = serde_json::from_value(payload.unwrap_or(Value::Null))
            .map_err(|e| decode(e.to_string()))?;
        let access = grant.access_token.ok_or_else(|| decode("no accessToken".to_owned()))?;
        // a shorter lifetime than asked for is honoured; a longer or missing one is not
        // trusted beyond what was asked
        let asked_s = u64::from(self.config.token_ttl_s);
        let granted_s = grant.expires_in.filter(|s| *s > 0).map_or(asked_s, i64::unsigned_abs);
        let lifetime = Duration::from_secs(granted_s.min(asked_s));
        Ok(CachedToken {
            access: Secret::new(access),
            refresh: grant.refresh_token.map(Secret::new),
            expires_at: requested_at + lifetime,
            lifetime,
        })
    }

    /// Forgets the token the vendor rejected, unless another call already replaced it.
    async fn discard_token(&self, rejected: &str) {
        let mut slot = self.token.lock().await;
        if slot.token.as_ref().is_some_and(|t| t.access.expose() == rejected) {
            slot.token = None;
        }
    }
}
