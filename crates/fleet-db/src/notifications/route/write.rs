//! What routing writes: outbox rows, inbox rows with their wording, and the dispatcher's wake-up.

use chrono::{DateTime, Utc};
use fleet_core::notification::{template, Channel, Event, EventKind, Severity};
use rand::RngCore;
use sqlx::PgConnection;

use super::OUTBOX_CHANNEL;

/// One outbox row to insert.
pub(super) struct OutboxRow {
    pub(super) event_id: i64,
    pub(super) rule_id: i32,
    pub(super) channel: Channel,
    pub(super) user_id: Option<i32>,
    pub(super) address: String,
    pub(super) webhook_id: Option<i32>,
    pub(super) suppressed: bool,
}

/// One inbox row to insert.
pub(super) struct InboxRow {
    pub(super) user_id: i32,
    pub(super) event_id: i64,
    pub(super) rule_id: i32,
    pub(super) device_id: i32,
    pub(super) time: DateTime<Utc>,
    pub(super) kind: EventKind,
    pub(super) severity: Severity,
    pub(super) title: String,
    pub(super) body: String,
}

/// A random 128-bit key, hex: sent to receivers that deduplicate (`X-Fleetd-Delivery`), the same
/// on every attempt of the row. Random rather than derived, so nothing about the event can be
/// guessed from it.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inserts the outbox rows; a row already there for (event, rule, channel, address) is kept.
pub(super) async fn insert_outbox(
    conn: &mut PgConnection,
    rows: &[OutboxRow],
) -> Result<usize, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let event_ids: Vec<i64> = rows.iter().map(|r| r.event_id).collect();
    let rule_ids: Vec<i32> = rows.iter().map(|r| r.rule_id).collect();
    let channels: Vec<&str> = rows.iter().map(|r| r.channel.as_str()).collect();
    let user_ids: Vec<Option<i32>> = rows.iter().map(|r| r.user_id).collect();
    let addresses: Vec<&str> = rows.iter().map(|r| r.address.as_str()).collect();
    let webhook_ids: Vec<Option<i32>> = rows.iter().map(|r| r.webhook_id).collect();
    let states: Vec<&str> =
        rows.iter().map(|r| if r.suppressed { "suppressed" } else { "pending" }).collect();
    let keys: Vec<String> = rows.iter().map(|_| idempotency_key()).collect();
    let inserted = sqlx::query!(
        "insert into fleet.notify_outbox (event_id, rule_id, channel, user_id, address,
             webhook_id, state, idempotency_key, finished_at)
         select e, r, c, u, a, w, s, k, case when s = 'suppressed' then now() end
         from unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::text[], $6::int[],
                     $7::text[], $8::text[]) as v(e, r, c, u, a, w, s, k)
         on conflict do nothing",
        &event_ids,
        &rule_ids,
        &channels as &[&str],
        &user_ids as &[Option<i32>],
        &addresses as &[&str],
        &webhook_ids as &[Option<i32>],
        &states as &[&str],
        &keys,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted as usize)
}

pub(super) async fn insert_inbox(
    conn: &mut PgConnection,
    rows: Vec<InboxRow>,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let user_ids: Vec<i32> = rows.iter().map(|r| r.user_id).collect();
    let event_ids: Vec<i64> = rows.iter().map(|r| r.event_id).collect();
    let rule_ids: Vec<i32> = rows.iter().map(|r| r.rule_id).collect();
    let device_ids: Vec<i32> = rows.iter().map(|r| r.device_id).collect();
    let times: Vec<DateTime<Utc>> = rows.iter().map(|r| r.time).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let severities: Vec<&str> = rows.iter().map(|r| r.severity.as_str()).collect();
    let titles: Vec<&str> = rows.iter().map(|r| r.title.as_str()).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    let rows = sqlx::query!(
        "insert into fleet.notify_inbox (user_id, event_id, rule_id, device_id, event_time, kind,
             severity, title, body)
         select * from unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::timestamptz[],
                              $6::text[], $7::text[], $8::text[], $9::text[])
         on conflict (user_id, event_id) do nothing
         returning user_id, notification_id",
        &user_ids,
        &event_ids,
        &rule_ids,
        &device_ids,
        &times,
        &kinds as &[&str],
        &severities as &[&str],
        &titles as &[&str],
        &bodies as &[&str],
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.notification_id)).collect())
}

/// Wakes the dispatcher once the transaction commits.
pub(super) async fn wake_dispatcher(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // pg_notify returns void, which the query macros cannot describe: count the calls instead
    sqlx::query_scalar!(
        r#"with n as (select pg_notify($1, '')) select count(*) as "n!" from n"#,
        OUTBOX_CHANNEL
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// The in-app notification's title and body, worded like the other channels
/// ([`template::headline`]): the bell shows the vehicle, what happened, where, and (from the
/// row's own columns) when.
pub fn title_body(event: &Event, vehicle: &str, plate: Option<&str>) -> (String, String) {
    let name = match vehicle.trim() {
        "" => format!("Vehicle {}", event.device_id),
        name => name.to_owned(),
    };
    let who = match plate.map(str::trim) {
        Some(p) if !p.is_empty() && !name.contains(p) => format!("{name} ({p})"),
        _ => name,
    };
    let f = &event.facts;
    let what = template::headline(event.kind, f);
    let crossing = matches!(event.kind, EventKind::GeofenceEnter | EventKind::GeofenceExit);
    let place = match (&f.geofence_name, f.lat, f.lon) {
        (Some(g), _, _) if !crossing => format!(" at {g}"),
        (_, Some(lat), Some(lon)) => format!(" at {lat:.5}, {lon:.5}"),
        _ => String::new(),
    };
    (format!("{who}: {what}"), format!("{what}{place}."))
}
