//! `fleet.notify_rules`: the rules admins keep. Stored column by column (kinds and channels as
//! text arrays, scope, schedule, params and addresses as JSON) and read back as
//! [`fleet_core::notification::Rule`]; a row whose columns no longer make a rule (a kind renamed
//! by a later release) keeps its readable parts and drops the rest, so listing never fails.

use chrono::{DateTime, Utc};
use fleet_core::notification::rule::{Address, Recipients};
use fleet_core::notification::{Channel, EventKind, Params, Rule, Schedule, Scope, Severity};
use sqlx::types::Json;
use sqlx::PgConnection;

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub rule_id: i32,
    pub rule: Rule,
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct Columns {
    rule_id: i32,
    name: String,
    enabled: bool,
    kinds: Vec<String>,
    scope: Json<Scope>,
    schedule: Option<Json<Schedule>>,
    throttle_s: i32,
    params: Json<Params>,
    user_ids: Vec<i32>,
    addresses: Json<Vec<Address>>,
    webhook_ids: Vec<i32>,
    channels: Vec<String>,
    severity: String,
    created_by: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Columns> for RuleRow {
    fn from(c: Columns) -> Self {
        RuleRow {
            rule_id: c.rule_id,
            rule: Rule {
                name: c.name,
                enabled: c.enabled,
                kinds: c.kinds.iter().filter_map(|k| EventKind::from_name(k)).collect(),
                scope: c.scope.0,
                schedule: c.schedule.map(|s| s.0),
                throttle_s: i64::from(c.throttle_s),
                params: c.params.0,
                recipients: Recipients {
                    user_ids: c.user_ids,
                    addresses: c.addresses.0,
                    webhook_ids: c.webhook_ids,
                },
                channels: c.channels.iter().filter_map(|k| Channel::from_name(k)).collect(),
                severity: Severity::from_name(&c.severity).unwrap_or(Severity::Warning),
            },
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The text arrays a rule's kinds and channels are stored as.
fn names(rule: &Rule) -> (Vec<String>, Vec<String>) {
    (
        rule.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
        rule.channels.iter().map(|c| c.as_str().to_owned()).collect(),
    )
}

/// Every rule, by id.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<RuleRow>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Columns,
        r#"select rule_id, name, enabled, kinds, scope as "scope: Json<Scope>",
                  schedule as "schedule: Json<Schedule>", throttle_s,
                  params as "params: Json<Params>", user_ids,
                  addresses as "addresses: Json<Vec<Address>>", webhook_ids, channels, severity,
                  created_by, created_at, updated_at
           from fleet.notify_rules order by rule_id"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(RuleRow::from).collect())
}

/// One rule; `lock` holds it for the transaction (an edit after a read).
pub async fn get(
    conn: &mut PgConnection,
    rule_id: i32,
    lock: bool,
) -> Result<Option<RuleRow>, sqlx::Error> {
    let row = if lock {
        sqlx::query_as!(
            Columns,
            r#"select rule_id, name, enabled, kinds, scope as "scope: Json<Scope>",
                      schedule as "schedule: Json<Schedule>", throttle_s,
                      params as "params: Json<Params>", user_ids,
                      addresses as "addresses: Json<Vec<Address>>", webhook_ids, channels,
                      severity, created_by, created_at, updated_at
               from fleet.notify_rules where rule_id = $1 for update"#,
            rule_id
        )
        .fetch_optional(conn)
        .await?
    } else {
        sqlx::query_as!(
            Columns,
            r#"select rule_id, name, enabled, kinds, scope as "scope: Json<Scope>",
                      schedule as "schedule: Json<Schedule>", throttle_s,
                      params as "params: Json<Params>", user_ids,
                      addresses as "addresses: Json<Vec<Address>>", webhook_ids, channels,
                      severity, created_by, created_at, updated_at
               from fleet.notify_rules where rule_id = $1"#,
            rule_id
        )
        .fetch_optional(conn)
        .await?
    };
    Ok(row.map(RuleRow::from))
}

/// Stores a new rule (validated by the caller).
pub async fn insert(
    conn: &mut PgConnection,
    rule: &Rule,
    created_by: Option<i32>,
) -> Result<RuleRow, sqlx::Error> {
    let (kinds, channels) = names(rule);
    let throttle = i32::try_from(rule.throttle_s).unwrap_or(i32::MAX);
    let row = sqlx::query_as!(
        Columns,
        r#"insert into fleet.notify_rules (name, enabled, kinds, scope, schedule, throttle_s,
               params, user_ids, addresses, webhook_ids, channels, severity, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           returning rule_id, name, enabled, kinds, scope as "scope: Json<Scope>",
                  schedule as "schedule: Json<Schedule>", throttle_s,
                  params as "params: Json<Params>", user_ids,
                  addresses as "addresses: Json<Vec<Address>>", webhook_ids, channels, severity,
                  created_by, created_at, updated_at"#,
        rule.name,
        rule.enabled,
        &kinds,
        Json(&rule.scope) as _,
        rule.schedule.as_ref().map(Json) as _,
        throttle,
        Json(&rule.params) as _,
        &rule.recipients.user_ids,
        Json(&rule.recipients.addresses) as _,
        &rule.recipients.webhook_ids,
        &channels,
        rule.severity.as_str(),
        created_by,
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// Replaces a rule's fields; `None` when there is no such rule.
pub async fn update(
    conn: &mut PgConnection,
    rule_id: i32,
    rule: &Rule,
) -> Result<Option<RuleRow>, sqlx::Error> {
    let (kinds, channels) = names(rule);
    let throttle = i32::try_from(rule.throttle_s).unwrap_or(i32::MAX);
    let row = sqlx::query_as!(
        Columns,
        r#"update fleet.notify_rules set name = $2, enabled = $3, kinds = $4, scope = $5,
               schedule = $6, throttle_s = $7, params = $8, user_ids = $9, addresses = $10,
               webhook_ids = $11, channels = $12, severity = $13, updated_at = now()
           where rule_id = $1
           returning rule_id, name, enabled, kinds, scope as "scope: Json<Scope>",
                  schedule as "schedule: Json<Schedule>", throttle_s,
                  params as "params: Json<Params>", user_ids,
                  addresses as "addresses: Json<Vec<Address>>", webhook_ids, channels, severity,
                  created_by, created_at, updated_at"#,
        rule_id,
        rule.name,
        rule.enabled,
        &kinds,
        Json(&rule.scope) as _,
        rule.schedule.as_ref().map(Json) as _,
        throttle,
        Json(&rule.params) as _,
        &rule.recipients.user_ids,
        Json(&rule.recipients.addresses) as _,
        &rule.recipients.webhook_ids,
        &channels,
        rule.severity.as_str(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(RuleRow::from))
}

/// Deletes a rule (its mutes and throttle go with it; its messages keep their history with the
/// rule id cleared). `false` when there was none.
pub async fn delete(conn: &mut PgConnection, rule_id: i32) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from fleet.notify_rules where rule_id = $1", rule_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ids a rule names that do not exist: (field, id) for users, webhooks, vehicles and
/// geofences, in that order.
pub async fn unknown_references(
    conn: &mut PgConnection,
    rule: &Rule,
) -> Result<Vec<(&'static str, i32)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select 'recipients.user_ids' as "field!", id as "id!" from unnest($1::int[]) id
               where not exists (select from fleet.users u where u.user_id = id)
           union all
           select 'recipients.webhook_ids', id from unnest($2::int[]) id
               where not exists (select from fleet.notify_webhooks w where w.webhook_id = id)
           union all
           select 'scope.device_ids', id from unnest($3::int[]) id
               where not exists (select from fleet.devices d where d.device_id = id)
           union all
           select 'scope.geofence_ids', id from unnest($4::int[]) id
               where not exists (select from fleet.geofences g where g.geofence_id = id)"#,
        &rule.recipients.user_ids,
        &rule.recipients.webhook_ids,
        &rule.scope.device_ids,
        &rule.scope.geofence_ids,
    )
    .fetch_all(conn)
    .await?;
    let field = |f: &str| match f {
        "recipients.user_ids" => "recipients.user_ids",
        "recipients.webhook_ids" => "recipients.webhook_ids",
        "scope.device_ids" => "scope.device_ids",
        _ => "scope.geofence_ids",
    };
    Ok(rows.into_iter().map(|r| (field(&r.field), r.id)).collect())
}
