//! Ops alerts: an ingest job that keeps failing (refused credentials, an expired token, the
//! vendor down) or fleet data gone stale is raised once when it starts and cleared once when it
//! ends — logged, kept in `fleet.ops_alerts` (which `/readyz` and `/metrics` read), and POSTed
//! as JSON to the configured webhooks.
//!
//! The conditions are read from the database (`reporting.v_ingest_health_jobs`,
//! `fleet.device_latest`), not from one process's memory, so they hold whichever process polls.
//! The monitor runs under the `ops-alerts` lease: one process of those sharing a database
//! evaluates and notifies. A state change is recorded with a conditional update before the
//! webhooks are called, so a restart never raises the same alert twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_config::{AlertConfig, Secret};
use fleet_db::{Lease, LeaseOptions};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{Context, OpsError};

/// Name of the lease the monitor runs under.
pub const ALERT_LEASE: &str = "ops-alerts";
/// Key of the stale-data alert.
pub const FLEET_DATA_STALE: &str = "fleet_data_stale";
/// Attempts per webhook and alert, with 1 s, 2 s, 4 s … between them.
const WEBHOOK_ATTEMPTS: u32 = 4;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub alert: String,
    pub message: String,
    pub detail: serde_json::Value,
}

/// A raise or a clear, as POSTed to the webhooks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Notification {
    /// Slack-compatible one-line text.
    pub text: String,
    pub alert: String,
    /// `raised` or `cleared`.
    pub state: &'static str,
    pub message: String,
    pub at: DateTime<Utc>,
    pub detail: serde_json::Value,
}

/// The conditions that hold now.
pub async fn conditions(pool: &PgPool, cfg: &AlertConfig) -> Result<Vec<Condition>, OpsError> {
    let mut out = Vec::new();
    let jobs = fleet_db::ingest_health::troubled_polls(pool, i64::from(cfg.failures))
        .await
        .context("reading ingest health")?;
    for j in jobs {
        let (job, status, failures, error, lag) =
            (j.job, j.status, j.consecutive_failures, j.last_error, j.lag_s);
        let detail = serde_json::json!({
            "job": job, "status": status, "consecutive_failures": failures,
            "last_error": error, "lag_s": lag,
        });
        if failures >= i64::from(cfg.failures) {
            out.push(Condition {
                alert: format!("ingest_failing:{job}"),
                message: format!(
                    "ingest job {job} failed {failures} times in a row: {}",
                    error.as_deref().unwrap_or("no error text")
                ),
                detail,
            });
        } else {
            out.push(Condition {
                alert: format!("ingest_stale:{job}"),
                message: format!(
                    "ingest job {job} has not succeeded for {} s",
                    lag.map_or_else(|| "?".to_owned(), |l| l.to_string())
                ),
                detail,
            });
        }
    }
    let newest = fleet_db::live::newest_fix(pool).await.context("reading the newest fix")?;
    if let Some((at, age_s)) = newest {
        if age_s > cfg.stale_after.as_secs() as i64 {
            out.push(Condition {
                alert: FLEET_DATA_STALE.to_owned(),
                message: format!(
                    "no new fix from any vehicle for {age_s} s (since {}); threshold {} s",
                    at.format("%Y-%m-%d %H:%M:%S UTC"),
                    cfg.stale_after.as_secs()
                ),
                detail: serde_json::json!({ "newest_received_at": at, "age_s": age_s }),
            });
        }
    }
    Ok(out)
}

/// Records the transitions between the stored alerts and `now_holding`; returns the
/// notifications for the changes this call made (another process's changes are not repeated).
pub async fn transition(
    pool: &PgPool,
    now_holding: &[Condition],
) -> Result<Vec<Notification>, OpsError> {
    let mut out = Vec::new();
    for c in now_holding {
        let raised = fleet_db::ops_alerts::raise(pool, &c.alert, &c.message, &c.detail)
            .await
            .context("raising an ops alert")?;
        if let Some(at) = raised {
            tracing::error!(alert = %c.alert, "ops alert raised: {}", c.message);
            out.push(Notification {
                text: format!(":rotating_light: fleetd alert: {}", c.message),
                alert: c.alert.clone(),
                state: "raised",
                message: c.message.clone(),
                at,
                detail: c.detail.clone(),
            });
        }
    }
    let holding: Vec<&str> = now_holding.iter().map(|c| c.alert.as_str()).collect();
    let cleared =
        fleet_db::ops_alerts::clear_all_but(pool, &holding).await.context("clearing ops alerts")?;
    for fleet_db::ops_alerts::ClearedAlert { alert, message, raised_at, cleared_at } in cleared {
        let lasted = (cleared_at - raised_at).num_seconds();
        tracing::info!(alert = %alert, lasted_s = lasted, "ops alert cleared");
        out.push(Notification {
            text: format!(":white_check_mark: fleetd alert cleared after {lasted} s: {message}"),
            alert,
            state: "cleared",
            message,
            at: cleared_at,
            detail: serde_json::json!({ "raised_at": raised_at, "lasted_s": lasted }),
        });
    }
    Ok(out)
}

/// The HTTP client webhooks are called with: a timeout, and no redirects. A webhook URL is a
/// credential (a Slack incoming-webhook URL is), so fleetd never follows a redirect that could
/// carry the request, or its headers, somewhere the operator did not configure; a 3xx counts as
/// a refusal.
pub fn webhook_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// POSTs `n` to `url`, retrying with backoff; true once a 2xx answer came. Webhooks are told
/// apart in the log by their position in `FLEETD_ALERT_WEBHOOKS` (`webhook`, from 1), never
/// by their URL, and transport errors are logged with the URL stripped from them.
pub async fn post(
    http: &reqwest::Client,
    webhook: usize,
    url: &Secret<String>,
    n: &Notification,
) -> bool {
    for attempt in 0..WEBHOOK_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        match http.post(url.expose()).json(n).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::warn!(alert = %n.alert, webhook, status = %r.status(), attempt, "alert webhook refused")
            }
            Err(e) => {
                let error = error_chain(&e.without_url());
                tracing::warn!(alert = %n.alert, webhook, %error, attempt, "alert webhook unreachable")
            }
        }
    }
    tracing::error!(alert = %n.alert, webhook, "alert webhook gave up after {WEBHOOK_ATTEMPTS} attempts");
    false
}

/// An error and its causes, `: `-separated (reqwest's own text says only "error sending
/// request"; the cause says why).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Runs the monitor until `shutdown`: takes the lease (retrying while another process holds
/// it), then every `check_every` evaluates, records transitions and notifies.
pub async fn run(pool: PgPool, cfg: AlertConfig, shutdown: CancellationToken) {
    let http = match webhook_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "ops alerts disabled: no HTTP client");
            return;
        }
    };
    let mut lease: Option<Lease> = None;
    let mut every = tokio::time::interval(cfg.check_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {}
        }
        if lease.as_ref().is_some_and(|l| !l.is_held()) {
            lease = None;
        }
        if lease.is_none() {
            match Lease::try_acquire(&pool, ALERT_LEASE, LeaseOptions::default()).await {
                Ok(l) => lease = l,
                Err(e) => tracing::warn!(error = %e, "could not try the ops-alerts lease"),
            }
        }
        if lease.is_none() {
            continue;
        }
        let changes = match conditions(&pool, &cfg).await {
            Ok(c) => transition(&pool, &c).await,
            Err(e) => Err(e),
        };
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ops alert check failed");
                continue;
            }
        };
        for n in &changes {
            for (i, url) in cfg.webhooks.iter().enumerate() {
                // each notification waits for its retries; alerts are rare, order matters
                post(&http, i + 1, url, n).await;
            }
        }
    }
    if let Some(l) = lease {
        l.release().await;
    }
}
