//! `fleet.notify_outbox` and `fleet.notify_attempts` as the dispatcher uses them: claiming due
//! messages, recording each attempt before and after the send, retries and dead letters.
//!
//! Record before send: [`claim`] commits `state = 'sending'`, the attempt count and an attempt
//! row `started` in one statement before anything leaves fleetd, so a process killed mid-send
//! leaves evidence; [`recover`] resolves it at the next start. [`finish`] records the outcome.

use chrono::{DateTime, NaiveDateTime, Utc};
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
    pub webhook_secret: Option<String>,
    /// The event's time (the claim's, for tests) on the wall clock of the fleet's timezone.
    pub local_time: NaiveDateTime,
    /// The fleet's timezone (`Africa/Nairobi`) and its abbreviation now (`EAT`).
    pub timezone: String,
    pub zone: String,
}

/// Claims up to `limit` due pending messages (oldest due first; rows other dispatchers hold
/// are skipped) and records the attempt as started, committed before the send.
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
           cross join (select timezone from fleet.analytics_config where scope = 'global') g
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
            webhook_secret: r.webhook_secret,
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

/// Records an attempt's outcome and the message's new state, in one transaction.
pub async fn finish(pool: &PgPool, f: &Finished<'_>) -> Result<(), sqlx::Error> {
    let detail: String = f.detail.chars().take(MAX_RESPONSE_CHARS).collect();
    let (outcome, state, next) = match f.resolution {
        Resolution::Sent => ("sent", "sent", None),
        Resolution::Retry(at) => ("retry", "pending", Some(at)),
        Resolution::Dead { retryable: true } => ("retry", "dead", None),
        Resolution::Dead { retryable: false } => ("failed", "dead", None),
    };
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "update fleet.notify_attempts
         set finished_at = now(), latency_ms = $3, outcome = $4, status_code = $5, response = $6
         where delivery_id = $1 and attempt = $2",
        f.delivery_id,
        f.attempt,
        f.latency_ms,
        outcome,
        f.status_code,
        &detail,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update fleet.notify_outbox
         set state = $2,
             next_attempt_at = coalesce($3, next_attempt_at),
             sent_at = case when $2 = 'sent' then now() else sent_at end,
             finished_at = case when $2 in ('sent', 'dead') then now() else finished_at end,
             last_error = case when $2 = 'sent' then null else $4 end
         where delivery_id = $1 and state = 'sending'",
        f.delivery_id,
        state,
        next,
        &detail,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Webhook messages put back to pending (the receiver deduplicates on the idempotency key).
    pub retried: u64,
    /// Messages of channels without idempotency marked `unknown`, not sent again.
    pub unknown: u64,
}

/// Resolves messages left in `sending` by a process that stopped mid-send (call at start-up,
/// holding the dispatcher's lease, before claiming). Their started attempts become `unknown`.
/// Webhooks go back to pending with the same idempotency key; e-mail, SMS and Telegram cannot
/// be deduplicated by their receivers, so they are marked `unknown` and never re-sent: at most
/// once for the one message in flight, rather than a possible duplicate.
pub async fn recover(pool: &PgPool) -> Result<Recovered, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "update fleet.notify_attempts a
         set outcome = 'unknown', finished_at = now(),
             response = 'fleetd stopped during this attempt; whether it arrived is unknown'
         from fleet.notify_outbox o
         where o.delivery_id = a.delivery_id and o.state = 'sending'
           and a.attempt = o.attempts and a.outcome = 'started'"
    )
    .execute(&mut *tx)
    .await?;
    let retried = sqlx::query!(
        "update fleet.notify_outbox set state = 'pending', next_attempt_at = now()
         where state = 'sending' and channel = 'webhook'"
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let unknown = sqlx::query!(
        "update fleet.notify_outbox
         set state = 'unknown', finished_at = now(),
             last_error = 'fleetd stopped while sending; not sent again, as this channel cannot \
                           tell a repeat from a new message'
         where state = 'sending'"
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Recovered { retried, unknown })
}
