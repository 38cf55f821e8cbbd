//! `fleet.notify_outbox` and `fleet.notify_attempts` as the dispatcher uses them: claiming due
//! messages, recording each attempt before and after the send, retries and dead letters.
//!
//! Record before send: [`claim`] commits `state = 'sending'`, the attempt count and an attempt
//! row `started` in one statement before anything leaves fleetd, so a process killed mid-send
//! leaves evidence; [`recover`] resolves it at the next start. [`finish`] records the outcome.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use fleet_config::Secret;
use fleet_core::notification::Facts;
use sqlx::PgPool;

/// Responses are kept to this many characters in `fleet.notify_attempts.response`.
pub const MAX_RESPONSE_CHARS: usize = 1000;

/// A message claimed for sending, with what rendering it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub channel: String,
    pub address: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub is_test: bool,
    /// Who asked for a test message (test rows).
    pub test_by: Option<String>,
    pub event_id: Option<i64>,
    pub kind: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub facts: Facts,
    pub device_id: Option<i32>,
    pub vehicle_name: Option<String>,
    pub plate: Option<String>,
    pub driver: Option<String>,
    pub rule_name: Option<String>,
    pub severity: Option<String>,
    pub webhook_url: Option<String>,
    /// Redacted in `Debug`: claimed rows end up in logs and panics.
    pub webhook_secret: Option<Secret<String>>,
    /// The event's time (the claim's, for tests) on the wall clock of the fleet's timezone.
    pub local_time: NaiveDateTime,
    /// The fleet's timezone (`Africa/Nairobi`) and its abbreviation now (`EAT`).
    pub timezone: String,
    pub zone: String,
}

/// Claims up to `limit` due pending messages (oldest due first; rows other dispatchers hold
/// are skipped) and records the attempt as started, committed before the send. The caller
/// claims no more than it sends at once: a row is `sending` only while its send is in flight,
/// so a stopped process leaves only those it had actually started.
pub async fn claim(pool: &PgPool, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"with due as (
               select delivery_id from fleet.notify_outbox
               where state = 'pending' and next_attempt_at <= now()
               order by next_attempt_at, delivery_id
               limit $1
               for update skip locked
           ),
           taken as (
               update fleet.notify_outbox o set state = 'sending', attempts = o.attempts + 1
               from due where o.delivery_id = due.delivery_id
               returning o.*
           ),
           started as (
               insert into fleet.notify_attempts (delivery_id, attempt)
               select delivery_id, attempts from taken
           )
           select t.delivery_id, t.attempts, t.channel, t.address, t.idempotency_key,
                  t.created_at, t.is_test, t.test_subject->>'who' as test_by,
                  e.event_id as "event_id?", e.kind as "kind?", e.event_time as "event_time?",
                  e.facts as "facts?", e.device_id as "device_id?",
                  d.name as "vehicle_name?", d.plate, d.driver_name,
                  r.name as "rule_name?", r.severity as "severity?",
                  w.url as "webhook_url?", w.secret as "webhook_secret?",
                  (coalesce(e.event_time, now()) at time zone g.timezone) as "local_time!",
                  g.timezone as "timezone!", coalesce(z.abbrev, '') as "zone!"
           from taken t
           left join fleet.notify_events e on e.event_id = t.event_id
           left join fleet.devices d on d.device_id = e.device_id
           left join fleet.notify_rules r on r.rule_id = t.rule_id
           left join fleet.notify_webhooks w on w.webhook_id = t.webhook_id and w.active
           left join fleet.analytics_config c on c.scope = 'global'
           cross join lateral (select coalesce(c.timezone, 'UTC') as timezone) g
           left join lateral (select abbrev from pg_timezone_names where name = g.timezone) z
               on true
           order by t.delivery_id"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            delivery_id: r.delivery_id,
            attempt: r.attempts,
            channel: r.channel,
            address: r.address,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
            is_test: r.is_test,
            test_by: r.test_by,
            event_id: r.event_id,
            kind: r.kind,
            event_time: r.event_time,
            facts: r.facts.and_then(|f| serde_json::from_value(f).ok()).unwrap_or_default(),
            device_id: r.device_id,
            vehicle_name: r.vehicle_name,
            plate: r.plate,
            driver: r.driver_name,
            rule_name: r.rule_name,
            severity: r.severity,
            webhook_url: r.webhook_url,
            webhook_secret: r.webhook_secret.map(Secret::new),
            local_time: r.local_time,
            timezone: r.timezone,
            zone: r.zone,
        })
        .collect())
}

/// What became of an attempt, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Sent,
    /// Worth trying again at the given time.
    Retry(DateTime<Utc>),
    /// Given up: permanently refused, or retried past the give-up horizon. `retryable` says
    /// which (the attempt's outcome is `retry` or `failed`).
    Dead {
        retryable: bool,
    },
}

/// An attempt's result.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub delivery_id: i64,
    pub attempt: i32,
    pub resolution: Resolution,
    pub status_code: Option<i32>,
    /// The provider's answer or the error.
    pub detail: &'a str,
    pub latency_ms: i32,
}

/// Records an attempt's outcome and the message's new state, in one transaction. Only the
/// attempt still `started` and the message still `sending` with this attempt are touched: an
/// attempt [`recover`] already resolved (a send that outlived the lease or the stale limit) is
/// left as recovery decided. Returns whether the outcome was recorded.
pub async fn finish(pool: &PgPool, f: &Finished<'_>) -> Result<bool, sqlx::Error> {
    let detail: String = f.detail.chars().take(MAX_RESPONSE_CHARS).collect();
    let (outcome, state, next) = match f.resolution {
        Resolution::Sent => ("sent", "sent", None),
        Resolution::Retry(at) => ("retry", "pending", Some(at)),
        Resolution::Dead { retryable: true } => ("retry", "dead", None),
        Resolution::Dead { retryable: false } => ("failed", "dead", None),
    };
    let mut tx = pool.begin().await?;
    let attempt = sqlx::query!(
        "update fleet.notify_attempts
         set finished_at = now(), latency_ms = $3, outcome = $4, status_code = $5, response = $6
         where delivery_id = $1 and attempt = $2 and outcome = 'started'",
        f.delivery_id,
        f.attempt,
        f.latency_ms,
        outcome,
        f.status_code,
        &detail,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if attempt == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "update fleet.notify_outbox
         set state = $2,
             next_attempt_at = coalesce($3, next_attempt_at),
             sent_at = case when $2 = 'sent' then now() else sent_at end,
             finished_at = case when $2 in ('sent', 'dead') then now() else finished_at end,
             last_error = case when $2 = 'sent' then null else $4 end
         where delivery_id = $1 and state = 'sending' and attempts = $5",
        f.delivery_id,
        state,
        next,
        &detail,
        f.attempt,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Webhook messages put back to pending (the receiver deduplicates on the idempotency key).
    pub retried: u64,
    /// Messages of channels without idempotency marked `unknown`, not sent again.
    pub unknown: u64,
}

/// Resolves messages left in `sending` whose attempt started before `now() - stale_after`
/// (longer ago than any send may take, so none of them is still in flight): by a process that
/// stopped mid-send, or an outcome that could not be recorded. Called at start-up and
/// periodically, holding the dispatcher's lease. Their started attempts become `unknown`.
/// Webhooks go back to pending with the same idempotency key; e-mail, SMS and Telegram cannot
/// be deduplicated by their receivers, so they are marked `unknown` and never re-sent: at most
/// once for a message in flight, rather than a possible duplicate.
pub async fn recover(pool: &PgPool, stale_after: Duration) -> Result<Recovered, sqlx::Error> {
    let stale_s = stale_after.as_secs_f64();
    let mut tx = pool.begin().await?;
    let stale = sqlx::query_scalar!(
        "update fleet.notify_attempts a
         set outcome = 'unknown', finished_at = now(),
             response = 'this attempt''s outcome was never recorded (fleetd stopped or lost its \
                         database during it); whether it arrived is unknown'
         from fleet.notify_outbox o
         where o.delivery_id = a.delivery_id and o.state = 'sending'
           and a.attempt = o.attempts and a.outcome = 'started'
           and a.started_at < now() - make_interval(secs => $1)
         returning a.delivery_id",
        stale_s
    )
    .fetch_all(&mut *tx)
    .await?;
    let retried = sqlx::query!(
        "update fleet.notify_outbox set state = 'pending', next_attempt_at = now()
         where delivery_id = any($1) and state = 'sending' and channel = 'webhook'",
        &stale
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let unknown = sqlx::query!(
        "update fleet.notify_outbox
         set state = 'unknown', finished_at = now(),
             last_error = 'fleetd stopped while sending; not sent again, as this channel cannot \
                           tell a repeat from a new message'
         where delivery_id = any($1) and state = 'sending'",
        &stale
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Recovered { retried, unknown })
}
