//! `fleet.notify_events`: storing events (each once, by its stable key) and routing the new ones.
//!
//! Only events some enabled rule asks for are stored: a fleet without rules pays one small query
//! per flush and nothing else, and since a rule never re-sends history, an event nobody asked
//! for when it happened would never be told anyway.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::notification::Event;
use sqlx::PgConnection;

use super::route::{self, Routed, Rules, StoredEvent};

/// Events that happened longer ago than this when derived are not notified (history imports,
/// full trip rebuilds, a tracker flushing a week of buffered alarms never page anyone).
pub const MAX_EVENT_AGE: TimeDelta = TimeDelta::hours(24);

/// The longest event key `fleet.notify_events` takes; an event with a longer one (an absurd
/// vendor alarm type) is logged and left out rather than failing the transaction.
pub const MAX_KEY_LEN: usize = 300;

/// What storing a batch of events did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Ids of the events stored now (not those stored before under the same key).
    pub event_ids: Vec<i64>,
    pub routed: Routed,
}

/// Stores `events` some rule of `rules` asks for and not older than [`MAX_EVENT_AGE`] at `now`,
/// each at most once (`on conflict (event_key) do nothing`), and routes the ones stored now.
/// Runs in the caller's transaction: an event exists exactly when what it tells of does.
pub async fn record(
    conn: &mut PgConnection,
    rules: &Rules,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<Recorded, sqlx::Error> {
    let wanted: Vec<&Event> = events
        .iter()
        .filter(|e| rules.wants(e.kind) && e.time >= now - MAX_EVENT_AGE)
        .filter(|e| {
            let ok = !e.key.is_empty() && e.key.chars().count() <= MAX_KEY_LEN;
            if !ok {
                tracing::warn!(
                    device_id = e.device_id,
                    kind = e.kind.as_str(),
                    "event key too long; not notified"
                );
            }
            ok
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Recorded::default());
    }
    let keys: Vec<&str> = wanted.iter().map(|e| e.key.as_str()).collect();
    let devices: Vec<i32> = wanted.iter().map(|e| e.device_id).collect();
    let times: Vec<DateTime<Utc>> = wanted.iter().map(|e| e.time).collect();
    let kinds: Vec<&str> = wanted.iter().map(|e| e.kind.as_str()).collect();
    let facts: Vec<serde_json::Value> = wanted
        .iter()
        .map(|e| serde_json::to_value(&e.facts).unwrap_or_else(|_| serde_json::json!({})))
        .collect();
    // events of devices not (or no longer) registered are dropped by the join, never an error
    let rows = sqlx::query!(
        r#"insert into fleet.notify_events (event_key, device_id, event_time, kind, facts)
           select v.k, v.d, v.t, v.kind, v.f
           from unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::jsonb[])
                with ordinality as v(k, d, t, kind, f, i)
           join fleet.devices d on d.device_id = v.d
           order by v.i
           on conflict (event_key) do nothing
           returning event_id, event_key"#,
        &keys as &[&str],
        &devices,
        &times,
        &kinds as &[&str],
        &facts,
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(Recorded::default());
    }
    let by_key: HashMap<&str, &Event> = wanted.iter().map(|e| (e.key.as_str(), *e)).collect();
    let stored: Vec<StoredEvent> = rows
        .iter()
        .filter_map(|r| {
            let e = by_key.get(r.event_key.as_str())?;
            Some(StoredEvent { event_id: r.event_id, event: (*e).clone() })
        })
        .collect();
    let routed = route::route(conn, rules, &stored).await?;
    Ok(Recorded { event_ids: rows.iter().map(|r| r.event_id).collect(), routed })
}

/// [`record`] with the rules loaded here: for callers that derive events rarely.
pub async fn record_now(
    conn: &mut PgConnection,
    events: &[Event],
) -> Result<Recorded, sqlx::Error> {
    if events.is_empty() {
        return Ok(Recorded::default());
    }
    let rules = Rules::load(conn).await?;
    record(conn, &rules, events, Utc::now()).await
}
