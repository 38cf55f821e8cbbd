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
use fleet_core::notification::rule::{Address, Recipients};
use fleet_core::notification::{
    address, template, Channel, Event, EventKind, LocalMoment, Params, QuietHours, Rule, Schedule,
    Scope, Severity, VehicleScope,
};
use rand::RngCore;
use sqlx::PgConnection;

/// Channel the routing transaction notifies when it added outbox rows; the dispatcher listens.
pub const OUTBOX_CHANNEL: &str = "fleet_notify_outbox";

/// An enabled rule with its id.
#[derive(Debug, Clone)]
pub struct StoredRule {
    pub rule_id: i32,
    pub rule: Rule,
}

/// The enabled rules, loaded once per flush, pass or sweep.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<StoredRule>,
}

impl Rules {
    /// Every enabled rule. A stored rule that no longer parses (a kind or channel this build
    /// does not know) is skipped and logged: one bad rule must not stop ingest.
    pub async fn load(conn: &mut PgConnection) -> Result<Rules, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select rule_id, name, kinds, scope, schedule, throttle_s, params, user_ids,
                      addresses, webhook_ids, channels, severity
               from fleet.notify_rules where enabled order by rule_id"#
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut rules = Vec::with_capacity(rows.len());
        for r in rows {
            let parsed = (|| -> Result<Rule, String> {
                let kinds = r
                    .kinds
                    .iter()
                    .map(|k| EventKind::from_name(k).ok_or(format!("unknown kind {k}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let channels = r
                    .channels
                    .iter()
                    .map(|c| Channel::from_name(c).ok_or(format!("unknown channel {c}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let scope: Scope = serde_json::from_value(r.scope).map_err(|e| e.to_string())?;
                let schedule: Option<Schedule> = r
                    .schedule
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let params: Params = serde_json::from_value(r.params).map_err(|e| e.to_string())?;
                let addresses: Vec<Address> =
                    serde_json::from_value(r.addresses).map_err(|e| e.to_string())?;
                let severity = Severity::from_name(&r.severity)
                    .ok_or(format!("unknown severity {}", r.severity))?;
                Ok(Rule {
                    name: r.name,
                    enabled: true,
                    kinds,
                    scope,
                    schedule,
                    throttle_s: i64::from(r.throttle_s),
                    params,
                    recipients: Recipients {
                        user_ids: r.user_ids,
                        addresses,
                        webhook_ids: r.webhook_ids,
                    },
                    channels,
                    severity,
                })
            })();
            match parsed {
                Ok(rule) => rules.push(StoredRule { rule_id: r.rule_id, rule }),
                Err(e) => {
                    tracing::warn!(rule_id = r.rule_id, error = %e, "notification rule skipped")
                }
            }
        }
        Ok(Rules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any enabled rule names `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.rules.iter().any(|r| r.rule.kinds.contains(&kind))
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredRule> {
        self.rules.iter()
    }

    /// Distinct thresholds (seconds) that enabled offline rules ask for.
    pub fn offline_thresholds(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&EventKind::Offline))
            .map(|r| r.rule.params.offline_s())
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Distinct sustained-overspeed durations (seconds) enabled overspeed rules ask for.
    pub fn overspeed_thresholds(&self) -> Vec<i64> {
        self.thresholds(EventKind::Overspeed, |p| Some(p.overspeed_for_s()))
    }

    /// Distinct idling limits (seconds) enabled idling rules ask for.
    pub fn idle_thresholds(&self) -> Vec<i64> {
        self.thresholds(EventKind::Idling, |p| Some(p.idle_s()))
    }

    fn thresholds(&self, kind: EventKind, of: impl Fn(&Params) -> Option<i64>) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&kind))
            .filter_map(|r| of(&r.rule.params))
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Distinct not-moved deadlines (seconds after local midnight) enabled rules ask for.
    pub fn not_moved_deadlines(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&EventKind::NotMoved))
            .filter_map(|r| r.rule.params.not_moved_s())
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}

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

/// One outbox row to insert.
struct OutboxRow {
    event_id: i64,
    rule_id: i32,
    channel: Channel,
    user_id: Option<i32>,
    address: String,
    webhook_id: Option<i32>,
    suppressed: bool,
}

/// One inbox row to insert.
struct InboxRow {
    user_id: i32,
    event_id: i64,
    rule_id: i32,
    device_id: i32,
    time: DateTime<Utc>,
    kind: EventKind,
    severity: Severity,
    title: String,
    body: String,
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
/// episode is told when it reaches each): such an event is for the rules of that threshold
/// only, so a rule is not told the same episode again at every longer threshold.
fn threshold_fits(rule: &Rule, event: &Event) -> bool {
    match (event.kind, event.facts.threshold_s) {
        (EventKind::Overspeed, Some(t)) => rule.params.overspeed_for_s() == t,
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
           cross join (select timezone from fleet.analytics_config where scope = 'global') g"#,
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

/// Takes the rule's per-vehicle throttle slot for `event`: true when the rule last told of this
/// vehicle at least `throttle_s` away from the event's time (or never), and then moves the
/// slot to the event's time.
async fn throttle_allows(
    conn: &mut PgConnection,
    rule: &StoredRule,
    event: &Event,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query_scalar!(
        r#"insert into fleet.notify_throttle as t (rule_id, device_id, last_at)
           values ($1, $2, $3)
           on conflict (rule_id, device_id) do update set last_at = greatest(t.last_at, excluded.last_at)
           where excluded.last_at >= t.last_at + make_interval(secs => $4)
              or excluded.last_at <= t.last_at - make_interval(secs => $4)
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

/// A random 128-bit key, hex: sent to receivers that deduplicate (`X-Fleetd-Delivery`), the same
/// on every attempt of the row. Random rather than derived, so nothing about the event can be
/// guessed from it.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inserts the outbox rows; a row already there for (event, rule, channel, address) is kept.
async fn insert_outbox(conn: &mut PgConnection, rows: &[OutboxRow]) -> Result<usize, sqlx::Error> {
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

async fn insert_inbox(
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
async fn wake_dispatcher(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
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
