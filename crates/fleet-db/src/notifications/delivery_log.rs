//! The admin's view of `fleet.notify_outbox` and `fleet.notify_attempts` (every message and
//! every attempt), and the rows "send test" and "retry" actions add. The dispatcher's own use of
//! these tables is in `outbox`.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;

use super::route::OUTBOX_CHANNEL;

/// One message as the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub delivery_id: i64,
    pub event_id: Option<i64>,
    pub event_kind: Option<String>,
    pub device_id: Option<i32>,
    pub event_time: Option<DateTime<Utc>>,
    pub rule_id: Option<i32>,
    pub rule_name: Option<String>,
    pub channel: String,
    pub user_id: Option<i32>,
    pub address: String,
    pub webhook_id: Option<i32>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub is_test: bool,
    pub test_subject: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Every attempt, first first.
    pub attempt_log: Vec<Attempt>,
}

/// One try at sending a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: i64,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub response: Option<String>,
}

/// What the log is narrowed to; `None`: any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub rule_id: Option<i32>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

struct Row {
    delivery_id: i64,
    event_id: Option<i64>,
    event_kind: Option<String>,
    device_id: Option<i32>,
    event_time: Option<DateTime<Utc>>,
    rule_id: Option<i32>,
    rule_name: Option<String>,
    channel: String,
    user_id: Option<i32>,
    address: String,
    webhook_id: Option<i32>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    is_test: bool,
    test_subject: Option<serde_json::Value>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// A page of messages, newest first, after delivery id `after`, created in [from, to); reads
/// `limit + 1` rows so the caller knows whether more follow.
pub async fn list(
    conn: &mut PgConnection,
    f: &Filter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    fetch(conn, f, after, None, limit).await
}

/// One message with its attempts.
pub async fn get(
    conn: &mut PgConnection,
    delivery_id: i64,
) -> Result<Option<Delivery>, sqlx::Error> {
    Ok(fetch(conn, &Filter::default(), None, Some(delivery_id), 1).await?.into_iter().next())
}

async fn fetch(
    conn: &mut PgConnection,
    f: &Filter,
    after: Option<i64>,
    only: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        r#"select o.delivery_id, o.event_id, e.kind as "event_kind?", e.device_id as "device_id?",
                  e.event_time as "event_time?", o.rule_id, r.name as "rule_name?", o.channel,
                  o.user_id, o.address, o.webhook_id, o.state, o.attempts, o.next_attempt_at,
                  o.is_test, o.test_subject, o.last_error, o.created_at, o.sent_at,
                  o.finished_at
           from fleet.notify_outbox o
           left join fleet.notify_events e using (event_id)
           left join fleet.notify_rules r on r.rule_id = o.rule_id
           where ($1::text[] is null or o.state = any($1))
             and ($2::text[] is null or o.channel = any($2))
             and ($3::int is null or o.rule_id = $3)
             and ($4::timestamptz is null or o.created_at >= $4)
             and ($5::timestamptz is null or o.created_at < $5)
             and ($6::bigint is null or o.delivery_id < $6)
             and ($8::bigint is null or o.delivery_id = $8)
           order by o.delivery_id desc
           limit $7::bigint + 1"#,
        f.states.as_deref(),
        f.channels.as_deref(),
        f.rule_id,
        f.from,
        f.to,
        after,
        limit,
        only
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.delivery_id).collect();
    let attempts = sqlx::query_as!(
        Attempt,
        "select delivery_id, attempt, started_at, finished_at, latency_ms, outcome, status_code,
                response
         from fleet.notify_attempts where delivery_id = any($1)
         order by delivery_id, attempt",
        &ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == r.delivery_id)
                .cloned()
                .collect(),
            delivery_id: r.delivery_id,
            event_id: r.event_id,
            event_kind: r.event_kind,
            device_id: r.device_id,
            event_time: r.event_time,
            rule_id: r.rule_id,
            rule_name: r.rule_name,
            channel: r.channel,
            user_id: r.user_id,
            address: r.address,
            webhook_id: r.webhook_id,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            is_test: r.is_test,
            test_subject: r.test_subject,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
            finished_at: r.finished_at,
        })
        .collect())
}

/// Who asked for a test message and what it tests, as the message's template shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestSubject {
    /// The user who pressed "send test".
    pub who: String,
    /// What is tested: "rule <name>" or "contact point".
    pub what: String,
}

/// One test message to add to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMessage {
    pub rule_id: Option<i32>,
    pub channel: String,
    pub user_id: Option<i32>,
    pub address: String,
    pub webhook_id: Option<i32>,
}

/// Adds test messages (no event) to the outbox and wakes the dispatcher when the transaction
/// commits; their delivery ids.
pub async fn enqueue_tests(
    conn: &mut PgConnection,
    messages: &[TestMessage],
    subject: &TestSubject,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let id = sqlx::query_scalar!(
            "insert into fleet.notify_outbox (event_id, rule_id, channel, user_id, address,
                 webhook_id, idempotency_key, is_test, test_subject)
             values (null, $1, $2, $3, $4, $5, gen_random_uuid()::text, true, $6)
             returning delivery_id",
            m.rule_id,
            m.channel,
            m.user_id,
            m.address,
            m.webhook_id,
            Json(subject) as _
        )
        .fetch_one(&mut *conn)
        .await?;
        ids.push(id);
    }
    if !ids.is_empty() {
        wake(conn).await?;
    }
    Ok(ids)
}

/// Tells the dispatcher that messages are due (delivered when the transaction commits).
async fn wake(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // pg_notify returns void, which the macros cannot describe: select a constant beside it
    sqlx::query_scalar!(r#"select 1 as "one!" from (select pg_notify($1, '')) n"#, OUTBOX_CHANNEL)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// What [`retry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The dead letter is pending again, due now.
    Queued,
    NotFound,
    /// The message is not a dead letter (its state).
    NotDead,
}

/// Sends a dead letter again: back to pending, due now, the dispatcher woken.
pub async fn retry(conn: &mut PgConnection, delivery_id: i64) -> Result<Retry, sqlx::Error> {
    let state = sqlx::query_scalar!(
        "select state from fleet.notify_outbox where delivery_id = $1 for update",
        delivery_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    match state.as_deref() {
        None => return Ok(Retry::NotFound),
        Some("dead") => {}
        Some(_) => return Ok(Retry::NotDead),
    }
    sqlx::query!(
        "update fleet.notify_outbox set state = 'pending', next_attempt_at = now(),
             finished_at = null
         where delivery_id = $1",
        delivery_id
    )
    .execute(&mut *conn)
    .await?;
    wake(conn).await?;
    Ok(Retry::Queued)
}
