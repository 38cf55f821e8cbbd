//! `fleet.notify_contacts`, `fleet.notify_prefs` and `fleet.notify_mutes`: each user's own
//! contact points, quiet hours and muted rules. Every statement is scoped by the user, so one
//! person never reads or changes another's.

use chrono::{DateTime, NaiveTime, Utc};
use sqlx::PgConnection;

/// A contact point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_id: i32,
    pub user_id: i32,
    /// email, sms or telegram.
    pub channel: String,
    pub address: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

/// A user's contact points, by channel and address.
pub async fn list(conn: &mut PgConnection, user_id: i32) -> Result<Vec<Contact>, sqlx::Error> {
    sqlx::query_as!(
        Contact,
        "select contact_id, user_id, channel, address, label, created_at
         from fleet.notify_contacts where user_id = $1 order by channel, address",
        user_id
    )
    .fetch_all(conn)
    .await
}

/// Contact points of several users on some channels (rule test sends).
pub async fn of_users(
    conn: &mut PgConnection,
    user_ids: &[i32],
    channels: &[String],
) -> Result<Vec<Contact>, sqlx::Error> {
    sqlx::query_as!(
        Contact,
        "select contact_id, user_id, channel, address, label, created_at
         from fleet.notify_contacts where user_id = any($1) and channel = any($2)
         order by user_id, channel, address",
        user_ids,
        channels
    )
    .fetch_all(conn)
    .await
}

/// One of the user's contact points.
pub async fn get(
    conn: &mut PgConnection,
    user_id: i32,
    contact_id: i32,
) -> Result<Option<Contact>, sqlx::Error> {
    sqlx::query_as!(
        Contact,
        "select contact_id, user_id, channel, address, label, created_at
         from fleet.notify_contacts where user_id = $1 and contact_id = $2",
        user_id,
        contact_id
    )
    .fetch_optional(conn)
    .await
}

/// Adds a contact point (the address normalised by the caller); a duplicate is a unique
/// violation (23505).
pub async fn insert(
    conn: &mut PgConnection,
    user_id: i32,
    channel: &str,
    address: &str,
    label: &str,
) -> Result<Contact, sqlx::Error> {
    sqlx::query_as!(
        Contact,
        "insert into fleet.notify_contacts (user_id, channel, address, label)
         values ($1, $2, $3, $4)
         returning contact_id, user_id, channel, address, label, created_at",
        user_id,
        channel,
        address,
        label
    )
    .fetch_one(conn)
    .await
}

/// Removes one of the user's contact points; `false` when they have no such one.
pub async fn delete(
    conn: &mut PgConnection,
    user_id: i32,
    contact_id: i32,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from fleet.notify_contacts where user_id = $1 and contact_id = $2",
        user_id,
        contact_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A user's quiet hours; all `None` (and the defaults) when they set none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    pub quiet_days: Vec<i16>,
    pub quiet_from: Option<NaiveTime>,
    pub quiet_to: Option<NaiveTime>,
    pub quiet_except_critical: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            quiet_days: (1..=7).collect(),
            quiet_from: None,
            quiet_to: None,
            quiet_except_critical: true,
            updated_at: None,
        }
    }
}

/// The user's quiet hours (the defaults when never set).
pub async fn prefs(conn: &mut PgConnection, user_id: i32) -> Result<Prefs, sqlx::Error> {
    let row = sqlx::query!(
        "select quiet_days, quiet_from, quiet_to, quiet_except_critical, updated_at
         from fleet.notify_prefs where user_id = $1",
        user_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|r| Prefs {
            quiet_days: r.quiet_days,
            quiet_from: r.quiet_from,
            quiet_to: r.quiet_to,
            quiet_except_critical: r.quiet_except_critical,
            updated_at: Some(r.updated_at),
        })
        .unwrap_or_default())
}

/// Sets the user's quiet hours (`from`/`to` both `None`: none).
pub async fn put_prefs(
    conn: &mut PgConnection,
    user_id: i32,
    p: &Prefs,
) -> Result<Prefs, sqlx::Error> {
    let r = sqlx::query!(
        "insert into fleet.notify_prefs (user_id, quiet_days, quiet_from, quiet_to,
             quiet_except_critical)
         values ($1, $2, $3, $4, $5)
         on conflict (user_id) do update set quiet_days = excluded.quiet_days,
             quiet_from = excluded.quiet_from, quiet_to = excluded.quiet_to,
             quiet_except_critical = excluded.quiet_except_critical, updated_at = now()
         returning quiet_days, quiet_from, quiet_to, quiet_except_critical, updated_at",
        user_id,
        &p.quiet_days,
        p.quiet_from,
        p.quiet_to,
        p.quiet_except_critical
    )
    .fetch_one(conn)
    .await?;
    Ok(Prefs {
        quiet_days: r.quiet_days,
        quiet_from: r.quiet_from,
        quiet_to: r.quiet_to,
        quiet_except_critical: r.quiet_except_critical,
        updated_at: Some(r.updated_at),
    })
}

/// A rule the user silenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub rule_id: i32,
    pub rule_name: String,
    /// `None`: for good.
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The user's mutes, including expired ones (they no longer silence anything).
pub async fn mutes(conn: &mut PgConnection, user_id: i32) -> Result<Vec<Mute>, sqlx::Error> {
    sqlx::query_as!(
        Mute,
        "select m.rule_id, r.name as rule_name, m.until, m.created_at
         from fleet.notify_mutes m join fleet.notify_rules r using (rule_id)
         where m.user_id = $1 order by m.rule_id",
        user_id
    )
    .fetch_all(conn)
    .await
}

/// Mutes a rule for the user until `until` (`None`: for good); `None` when there is no such
/// rule.
pub async fn put_mute(
    conn: &mut PgConnection,
    user_id: i32,
    rule_id: i32,
    until: Option<DateTime<Utc>>,
) -> Result<Option<Mute>, sqlx::Error> {
    sqlx::query_as!(
        Mute,
        r#"with m as (
               insert into fleet.notify_mutes (user_id, rule_id, until)
               select $1, rule_id, $3 from fleet.notify_rules where rule_id = $2
               on conflict (user_id, rule_id) do update set until = excluded.until
               returning rule_id, until, created_at)
           select m.rule_id, r.name as rule_name, m.until, m.created_at
           from m join fleet.notify_rules r using (rule_id)"#,
        user_id,
        rule_id,
        until
    )
    .fetch_optional(conn)
    .await
}

/// Unmutes a rule for the user; `false` when it was not muted.
pub async fn delete_mute(
    conn: &mut PgConnection,
    user_id: i32,
    rule_id: i32,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from fleet.notify_mutes where user_id = $1 and rule_id = $2",
        user_id,
        rule_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
