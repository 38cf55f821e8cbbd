//! One dispatch round: claim as many due messages as may be sent at once (each recorded as
//! started before anything is sent), render each from its event, send them all, record every
//! outcome.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleet_core::notification::template::{self, MessageInput};
use fleet_core::notification::{Channel, EventKind, Severity};
use fleet_db::notifications::outbox::{self, Claimed, Finished, Resolution};
use fleet_db::Lease;
use futures_util::stream::{self, StreamExt};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::{backoff, DispatcherConfig};
use crate::channels::{Channels, Delivery, Message, Outcome, WebhookTarget};

/// Claims at most `concurrency` messages and delivers them; returns how many were claimed. No
/// more are claimed than are sent at once: a claimed row is `sending`, and one that waited its
/// turn while a process was killed would be resolved as cut short (`unknown`, never sent)
/// without having been tried.
pub(crate) async fn round(
    pool: &PgPool,
    config: &DispatcherConfig,
    channels: &Channels,
    lease: &Lease,
) -> Result<usize, sqlx::Error> {
    let concurrency = config.concurrency.max(1);
    let claimed = outbox::claim(pool, i64::try_from(concurrency).unwrap_or(i64::MAX)).await?;
    let n = claimed.len();
    // every claimed message is sent at once, but outcomes are recorded two at a time: the
    // workers' pool is shared with the ingest writer
    let recording = Semaphore::new(2);
    stream::iter(claimed)
        .map(|c| deliver(pool, config, channels, lease, &recording, c))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    Ok(n)
}

/// Recording an outcome is retried this long at most (waits doubling from 200 ms, up to 5 s);
/// after that, or once the lease is lost, the row stays `sending` and the periodic recovery
/// resolves it.
const FINISH_RETRY_FOR: Duration = Duration::from_secs(30);

/// Sends one claimed message and records what became of it (see [`record`]).
async fn deliver(
    pool: &PgPool,
    config: &DispatcherConfig,
    channels: &Channels,
    lease: &Lease,
    recording: &Semaphore,
    c: Claimed,
) {
    let started = Instant::now();
    let outcome = send(config, channels, &c).await;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let now = Utc::now();
    let resolution = resolve(&outcome, c.attempt, c.created_at, now, config);
    match resolution {
        Resolution::Sent => {
            metrics::counter!("fleetd_notify_sent_total", "channel" => c.channel.clone())
                .increment(1);
        }
        Resolution::Retry(_) => {
            metrics::counter!("fleetd_notify_failed_total", "channel" => c.channel.clone(), "outcome" => "retry")
                .increment(1);
        }
        Resolution::Dead { .. } => {
            metrics::counter!("fleetd_notify_failed_total", "channel" => c.channel.clone(), "outcome" => "dead")
                .increment(1);
            tracing::warn!(
                delivery_id = c.delivery_id,
                channel = %c.channel,
                attempt = c.attempt,
                error = outcome.detail(),
                "notification given up"
            );
        }
    }
    let finished = Finished {
        delivery_id: c.delivery_id,
        attempt: c.attempt,
        resolution,
        status_code: outcome.status().map(i32::from),
        detail: outcome.detail(),
        latency_ms,
    };
    record(pool, lease, recording, &finished).await;
}

/// Records an outcome, retrying a failed write with backoff while the lease is held (for at
/// most [`FINISH_RETRY_FOR`]): a row left `sending` is resolved only by recovery, as `unknown`
/// for channels without idempotency, though its outcome was known.
async fn record(pool: &PgPool, lease: &Lease, recording: &Semaphore, f: &Finished<'_>) {
    let give_up = Instant::now() + FINISH_RETRY_FOR;
    let mut wait = Duration::from_millis(200);
    loop {
        let result = {
            let _permit = recording.acquire().await;
            outbox::finish(pool, f).await
        };
        match result {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    delivery_id = f.delivery_id,
                    attempt = f.attempt,
                    "a notification's outcome came after recovery had resolved its attempt; \
                     recovery's verdict stands"
                );
                return;
            }
            Err(e) if lease.is_held() && Instant::now() + wait < give_up => {
                tracing::error!(delivery_id = f.delivery_id, error = %e, retry_in = ?wait, "could not record a notification's outcome; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(delivery_id = f.delivery_id, error = %e, "could not record a notification's outcome; recovery will resolve it");
                return;
            }
        }
    }
}

/// Sent stays sent; a permanent refusal is dead at once; a retryable failure waits its backoff
/// unless that would pass the give-up horizon counted from when the message was queued.
pub(crate) fn resolve(
    outcome: &Outcome,
    attempt: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    config: &DispatcherConfig,
) -> Resolution {
    match outcome {
        Outcome::Sent { .. } => Resolution::Sent,
        Outcome::Permanent { .. } => Resolution::Dead { retryable: false },
        Outcome::Retry { .. } => {
            // the provider's own wait (Telegram's retry_after) when it asks for a longer one
            let wait = backoff::delay(config.retry_base, attempt)
                .max(outcome.retry_after().unwrap_or_default().min(backoff::CAP));
            let wait = chrono::Duration::from_std(wait).unwrap_or_default();
            let give_up =
                chrono::Duration::from_std(config.give_up_after).unwrap_or(chrono::Duration::MAX);
            if now + wait > created_at + give_up {
                Resolution::Dead { retryable: true }
            } else {
                Resolution::Retry(now + wait)
            }
        }
    }
}

async fn send(config: &DispatcherConfig, channels: &Channels, c: &Claimed) -> Outcome {
    let Some(channel) = Channel::from_name(&c.channel) else {
        return Outcome::Permanent {
            status: None,
            error: format!("unknown channel {}", c.channel),
        };
    };
    let message = match render(config, channel, c) {
        Ok(m) => m,
        Err(e) => return Outcome::Permanent { status: None, error: e },
    };
    let target = match (&c.webhook_url, &c.webhook_secret) {
        (Some(url), Some(secret)) => {
            Some(WebhookTarget { url: url.clone(), secret: secret.clone() })
        }
        _ => None,
    };
    if channel == Channel::Webhook && target.is_none() {
        return Outcome::Permanent {
            status: None,
            error: "the webhook was deleted or deactivated".to_owned(),
        };
    }
    let delivery = Delivery {
        delivery_id: c.delivery_id,
        idempotency_key: &c.idempotency_key,
        channel,
        address: &c.address,
        webhook: target.as_ref(),
        message: &message,
    };
    channels.send(&delivery).await
}

/// The message of a claimed row: its event, vehicle and rule, or a test message.
fn render(config: &DispatcherConfig, channel: Channel, c: &Claimed) -> Result<Message, String> {
    let local_time = template::local_time_text(c.local_time, &c.zone);
    if c.is_test {
        let rendered = template::render_test(
            channel,
            c.test_by.as_deref().unwrap_or(""),
            Utc::now(),
            &local_time,
            &c.timezone,
            &config.public_url,
        );
        return Ok(rendered.into());
    }
    let (Some(event_id), Some(kind), Some(time), Some(device_id)) =
        (c.event_id, c.kind.as_deref().and_then(EventKind::from_name), c.event_time, c.device_id)
    else {
        return Err("the event of this message no longer exists".to_owned());
    };
    let input = MessageInput {
        event_id,
        kind,
        severity: c.severity.as_deref().and_then(Severity::from_name).unwrap_or(Severity::Warning),
        rule_name: c.rule_name.clone(),
        facts: &c.facts,
        device_id,
        vehicle_name: c.vehicle_name.clone().unwrap_or_default(),
        plate: c.plate.clone(),
        driver: c.driver.clone(),
        event_time: time,
        local_time,
        timezone: c.timezone.clone(),
        link: template::event_link(&config.public_url, device_id, time),
    };
    Ok(template::render(&input).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_failures_wait_until_the_give_up_horizon_then_die() {
        let config = DispatcherConfig {
            give_up_after: std::time::Duration::from_secs(3600),
            ..DispatcherConfig::default()
        };
        let t0 = Utc::now();
        let retry = Outcome::Retry { status: Some(503), error: "busy".into() };
        match resolve(&retry, 1, t0, t0, &config) {
            Resolution::Retry(at) => assert!(at > t0 && at < t0 + chrono::Duration::seconds(13)),
            other => panic!("{other:?}"),
        }
        let limited =
            Outcome::Retry { status: Some(429), error: "slow down (retry after 120 s)".into() };
        match resolve(&limited, 1, t0, t0, &config) {
            Resolution::Retry(at) => assert!(at >= t0 + chrono::Duration::seconds(120)),
            other => panic!("{other:?}"),
        }
        let late = t0 + chrono::Duration::minutes(59);
        assert_eq!(resolve(&retry, 9, t0, late, &config), Resolution::Dead { retryable: true });
        let refused = Outcome::Permanent { status: Some(400), error: "bad".into() };
        assert_eq!(resolve(&refused, 1, t0, t0, &config), Resolution::Dead { retryable: false });
        let sent = Outcome::Sent { status: Some(200), response: String::new() };
        assert_eq!(resolve(&sent, 1, t0, t0, &config), Resolution::Sent);
    }
}
