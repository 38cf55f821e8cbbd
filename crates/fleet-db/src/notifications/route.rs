//! Routing new events to outbox and inbox rows inside the transaction that stored them.
//!
//! [`Rules::load`] reads the enabled rules once (one query over a small table); when none asks
//! for an event's kind, nothing else happens — ingest pays nothing for notifications nobody
//! asked for. For the rest, [`route`] asks PostgreSQL for the vehicles' scope attributes and each
//! event's local moment in the fleet's timezone (the global analytics settings), matches with
//! the pure [`Rule::matches`], applies the per-(rule, vehicle) throttle in
//! `fleet.notify_throttle`, expands recipients and writes `fleet.notify_outbox` and
//! `fleet.notify_inbox` rows.
//!
//! Routing keeps its own queries of `fleet.notify_contacts`, `fleet.notify_prefs`,
//! `fleet.notify_mutes`, `fleet.notify_webhooks` and `fleet.users`, and its own inserts into
//! `fleet.notify_inbox`: they must run in the writer's transaction with exactly this shape, and
//! the modules homing those tables serve the API.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use fleet_core::notification::rule::same_kmh;
use fleet_core::notification::{
    address, Channel, Event, EventKind, LocalMoment, QuietHours, Rule, Schedule, VehicleScope,
};
use sqlx::PgConnection;

mod rules;
mod write;

pub use rules::{Rules, StoredRule};
pub use write::title_body;
use write::{insert_inbox, insert_outbox, wake_dispatcher, InboxRow, OutboxRow};

/// Channel the routing transaction notifies when it added outbox rows; the dispatcher listens.
pub const OUTBOX_CHANNEL: &str = "fleet_notify_outbox";

/// An event as stored: its id in `fleet.notify_events`.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event_id: i64,
    pub event: Event,
}

/// What routing wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Outbox rows inserted (pending and suppressed).
    pub outbox: usize,
    /// New in-app notifications: (user id, notification id), for the change notice.
    pub inbox: Vec<(i32, i64)>,
}

/// A vehicle as routing sees it, with the event's local moment.
struct Context {
    vehicle: VehicleScope,
    name: String,
    plate: Option<String>,
    at: LocalMoment,
}

/// A person's quiet hours and the rules they muted.
#[derive(Default)]
struct Person {
    contacts: Vec<(Channel, String)>,
    quiet: Option<QuietHours>,
    muted: HashSet<i32>,
}

/// Routes `events` (each just inserted, so routed exactly once) by `rules`: see the module
/// docs. Notifies [`OUTBOX_CHANNEL`] when outbox rows were added; returns the inbox rows to
/// announce on the change notice.
pub async fn route(
    conn: &mut PgConnection,
    rules: &Rules,
    events: &[StoredEvent],
) -> Result<Routed, sqlx::Error> {
    let events: Vec<&StoredEvent> = events.iter().filter(|e| rules.wants(e.event.kind)).collect();
    if events.is_empty() {
        return Ok(Routed::default());
    }
    let contexts = contexts(conn, &events).await?;
    // (event index, event, rule) that match, before the throttle
    let mut matched: Vec<(usize, &StoredEvent, &StoredRule)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Some(cx) = contexts.get(&i) else { continue };
        for r in rules.iter() {
            if r.rule.matches(&e.event, &cx.vehicle, cx.at) && threshold_fits(&r.rule, &e.event) {
                matched.push((i, e, r));
            }
        }
    }
    // the throttle per (rule, vehicle) in that order, so concurrent transactions lock throttle
    // rows in one order, and in event time order within, so the first of a burst is told
    matched.sort_by_key(|(_, e, r)| (r.rule_id, e.event.device_id, e.event.time, e.event_id));
    let mut told = Vec::with_capacity(matched.len());
    for m in matched {
        if m.2.rule.throttle_s == 0 || throttle_allows(conn, m.2, &m.1.event).await? {
            told.push(m);
        }
    }
    if told.is_empty() {
        return Ok(Routed::default());
    }

    let user_ids: Vec<i32> = {
        let mut ids: Vec<i32> =
            told.iter().flat_map(|(_, _, r)| r.rule.recipients.user_ids.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let people = people(conn, &user_ids).await?;
    let webhook_ids: Vec<i32> = {
        let mut ids: Vec<i32> = told
            .iter()
            .flat_map(|(_, _, r)| r.rule.recipients.webhook_ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let webhooks = active_webhooks(conn, &webhook_ids).await?;

    let mut outbox: Vec<OutboxRow> = Vec::new();
    // one inbox row per user per event: the most severe rule's
    let mut inbox: BTreeMap<(i64, i32), InboxRow> = BTreeMap::new();
    for (ix, e, r) in &told {
        let cx = &contexts[ix];
        let rule = &r.rule;
        for uid in &rule.recipients.user_ids {
            let Some(person) = people.get(uid) else { continue };
            if person.muted.contains(&r.rule_id) {
                continue;
            }
            let quiet = person.quiet.as_ref().is_some_and(|q| q.holds(cx.at, rule.severity));
            for (channel, to) in &person.contacts {
                if rule.channels.contains(channel) {
                    outbox.push(OutboxRow {
                        event_id: e.event_id,
                        rule_id: r.rule_id,
                        channel: *channel,
                        user_id: Some(*uid),
                        address: to.clone(),
                        webhook_id: None,
                        suppressed: quiet,
                    });
                }
            }
            if rule.channels.contains(&Channel::InApp) {
                let (title, body) = title_body(&e.event, &cx.name, cx.plate.as_deref());
                let row = InboxRow {
                    user_id: *uid,
                    event_id: e.event_id,
                    rule_id: r.rule_id,
                    device_id: e.event.device_id,
                    time: e.event.time,
                    kind: e.event.kind,
                    severity: rule.severity,
                    title,
                    body,
                };
                match inbox.get(&(e.event_id, *uid)) {
                    Some(old) if old.severity >= row.severity => {}
                    _ => {
                        inbox.insert((e.event_id, *uid), row);
                    }
                }
            }
        }
        for a in &rule.recipients.addresses {
            if !rule.channels.contains(&a.channel) {
                continue;
            }
            match address::normalise(a.channel, &a.to) {
                Ok(to) => outbox.push(OutboxRow {
                    event_id: e.event_id,
                    rule_id: r.rule_id,
                    channel: a.channel,
                    user_id: None,
                    address: to,
                    webhook_id: None,
                    suppressed: false,
                }),
                Err(err) => tracing::warn!(
                    rule_id = r.rule_id,
                    channel = a.channel.as_str(),
                    error = %err,
                    "rule address skipped"
                ),
            }
        }
        if rule.channels.contains(&Channel::Webhook) {
            for w in rule.recipients.webhook_ids.iter().filter(|w| webhooks.contains(w)) {
                outbox.push(OutboxRow {
                    event_id: e.event_id,
                    rule_id: r.rule_id,
                    channel: Channel::Webhook,
                    user_id: None,
                    address: w.to_string(),
                    webhook_id: Some(*w),
                    suppressed: false,
                });
            }
        }
    }
    let added = insert_outbox(conn, &outbox).await?;
    let inbox = insert_inbox(conn, inbox.into_values().collect()).await?;
    if added > 0 {
        wake_dispatcher(conn).await?;
    }
    Ok(Routed { outbox: added, inbox })
}

/// Overspeed and idling events are derived once per threshold a rule asks for (a growing
/// episode is told when it reaches each; overspeed per duration and speed): such an event is
/// for the rules of that threshold only, so a rule is not told the same episode again at every
/// longer threshold.
fn threshold_fits(rule: &Rule, event: &Event) -> bool {
    match (event.kind, event.facts.threshold_s) {
        (EventKind::Overspeed, Some(t)) => {
            rule.params.overspeed_for_s() == t
                && same_kmh(rule.params.overspeed_kmh, event.facts.asked_kmh)
        }
        (EventKind::Idling, Some(t)) => rule.params.idle_s() == t,
        _ => true,
    }
}

/// Each event's vehicle attributes and local moment in the fleet's timezone, by its index in
/// `events` (events of unknown devices are left out).
async fn contexts(
    conn: &mut PgConnection,
    events: &[&StoredEvent],
) -> Result<HashMap<usize, Context>, sqlx::Error> {
    let devices: Vec<i32> = events.iter().map(|e| e.event.device_id).collect();
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.event.time).collect();
    let rows = sqlx::query!(
        r#"select (v.i - 1)::int as "i!", d.device_id, d.name, d.plate, d.cost_centre, d.city,
                  extract(isodow from v.t at time zone g.timezone)::int as "weekday!",
                  (v.t at time zone g.timezone)::time as "local_time!"
           from unnest($1::int[], $2::timestamptz[]) with ordinality as v(device_id, t, i)
           join fleet.devices d on d.device_id = v.device_id
           left join fleet.analytics_config c on c.scope = 'global'
           cross join lateral (select coalesce(c.timezone, 'UTC') as timezone) g"#,
        &devices,
        &times,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let cx = Context {
                vehicle: VehicleScope {
                    device_id: r.device_id,
                    cost_centre: r.cost_centre,
                    city: r.city,
                },
                name: r.name,
                plate: r.plate,
                at: LocalMoment { weekday: r.weekday as u8, time: r.local_time },
            };
            (r.i as usize, cx)
        })
        .collect())
}

/// Takes the rule's per-vehicle throttle slot for `event`: true when the rule never told of this
/// vehicle, or the event is at least `throttle_s` after the latest event it told of or at least
/// `throttle_s` before the earliest; the told span then widens to the event's time. An event
/// inside the span (a backlog arriving after a live event: buffered alarms 11:00–11:50 after a
/// live one at 12:00) is throttled, as it falls among events already told.
async fn throttle_allows(
    conn: &mut PgConnection,
    rule: &StoredRule,
    event: &Event,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query_scalar!(
        r#"insert into fleet.notify_throttle as t (rule_id, device_id, first_at, last_at)
           values ($1, $2, $3, $3)
           on conflict (rule_id, device_id) do update
           set first_at = least(t.first_at, excluded.first_at),
               last_at = greatest(t.last_at, excluded.last_at)
           where excluded.last_at >= t.last_at + make_interval(secs => $4)
              or excluded.first_at <= t.first_at - make_interval(secs => $4)
           returning true as "taken!""#,
        rule.rule_id,
        event.device_id,
        event.time,
        rule.rule.throttle_s as f64,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(taken.unwrap_or(false))
}

/// Active users among `ids` with their contact points, quiet hours and current mutes.
async fn people(conn: &mut PgConnection, ids: &[i32]) -> Result<HashMap<i32, Person>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut people: HashMap<i32, Person> = sqlx::query_scalar!(
        "select user_id from fleet.users where user_id = any($1) and active",
        ids
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|id| (id, Person::default()))
    .collect();
    let contacts = sqlx::query!(
        "select user_id, channel, address from fleet.notify_contacts
         where user_id = any($1) order by contact_id",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for c in contacts {
        if let (Some(p), Some(ch)) = (people.get_mut(&c.user_id), Channel::from_name(&c.channel)) {
            p.contacts.push((ch, c.address));
        }
    }
    let prefs = sqlx::query!(
        r#"select user_id, quiet_days, quiet_from as "quiet_from!", quiet_to as "quiet_to!",
                  quiet_except_critical
           from fleet.notify_prefs where user_id = any($1) and quiet_from is not null"#,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for q in prefs {
        if let Some(p) = people.get_mut(&q.user_id) {
            let window = Schedule {
                days: q.quiet_days.iter().filter_map(|d| u8::try_from(*d).ok()).collect(),
                from: q.quiet_from,
                to: q.quiet_to,
            };
            p.quiet = Some(QuietHours { window, except_critical: q.quiet_except_critical });
        }
    }
    let mutes = sqlx::query!(
        "select user_id, rule_id from fleet.notify_mutes
         where user_id = any($1) and (until is null or until > now())",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    for m in mutes {
        if let Some(p) = people.get_mut(&m.user_id) {
            p.muted.insert(m.rule_id);
        }
    }
    Ok(people)
}

async fn active_webhooks(
    conn: &mut PgConnection,
    ids: &[i32],
) -> Result<HashSet<i32>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(sqlx::query_scalar!(
        "select webhook_id from fleet.notify_webhooks where webhook_id = any($1) and active",
        ids
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect())
}
