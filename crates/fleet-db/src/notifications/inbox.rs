//! `fleet.notify_inbox`: the in-app notifications of each user, read and unread. Routing writes
//! the rows (with their events); this module reads and acknowledges them, always for one user,
//! and adds the rows of "send test".

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// One in-app notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub notification_id: i64,
    pub user_id: i32,
    pub rule_id: Option<i32>,
    pub device_id: Option<i32>,
    /// The vehicle's name (plate when it has none); `None` for tests.
    pub device_name: Option<String>,
    pub event_time: DateTime<Utc>,
    pub kind: String,
    pub severity: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A page of the user's notifications, newest first, after notification id `after` (a page's
/// last); `limit + 1` rows are read so the caller knows whether more follow.
pub async fn list(
    conn: &mut PgConnection,
    user_id: i32,
    unread_only: bool,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<InboxItem>, sqlx::Error> {
    sqlx::query_as!(
        InboxItem,
        r#"select i.notification_id, i.user_id, i.rule_id, i.device_id,
                  nullif(coalesce(nullif(d.name, ''), d.plate), '') as device_name,
                  i.event_time, i.kind, i.severity, i.title, i.body, i.created_at, i.read_at
           from fleet.notify_inbox i left join fleet.devices d using (device_id)
           where i.user_id = $1 and (not $2 or i.read_at is null)
             and ($3::bigint is null or i.notification_id < $3)
           order by i.notification_id desc
           limit $4::bigint + 1"#,
        user_id,
        unread_only,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// How many of the user's notifications are unread.
pub async fn unread_count(conn: &mut PgConnection, user_id: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from fleet.notify_inbox where user_id = $1 and read_at is null"#,
        user_id
    )
    .fetch_one(conn)
    .await
}

/// Notifications by (user, id), as the change notice announces them; pairs whose user does not
/// own the id are left out.
pub async fn by_ids(
    conn: &mut PgConnection,
    pairs: &[(i32, i64)],
) -> Result<Vec<InboxItem>, sqlx::Error> {
    let (users, ids): (Vec<i32>, Vec<i64>) = pairs.iter().copied().unzip();
    sqlx::query_as!(
        InboxItem,
        r#"select i.notification_id, i.user_id, i.rule_id, i.device_id,
                  nullif(coalesce(nullif(d.name, ''), d.plate), '') as device_name,
                  i.event_time, i.kind, i.severity, i.title, i.body, i.created_at, i.read_at
           from unnest($1::int[], $2::bigint[]) p(user_id, notification_id)
           join fleet.notify_inbox i using (user_id, notification_id)
           left join fleet.devices d on d.device_id = i.device_id
           order by i.notification_id"#,
        &users,
        &ids
    )
    .fetch_all(conn)
    .await
}

/// Marks one of the user's notifications read (once: a second call keeps the first time);
/// `None` when the user has no such notification.
pub async fn mark_read(
    conn: &mut PgConnection,
    user_id: i32,
    notification_id: i64,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let row = sqlx::query_scalar!(
        r#"update fleet.notify_inbox set read_at = coalesce(read_at, now())
           where user_id = $1 and notification_id = $2
           returning read_at as "read_at!""#,
        user_id,
        notification_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row)
}

/// Marks every unread notification of the user read; how many were.
pub async fn mark_all_read(conn: &mut PgConnection, user_id: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "update fleet.notify_inbox set read_at = now() where user_id = $1 and read_at is null",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Adds a test notification (no event) for the user; its id.
pub async fn insert_test(
    conn: &mut PgConnection,
    user_id: i32,
    rule_id: Option<i32>,
    title: &str,
    body: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into fleet.notify_inbox (user_id, rule_id, event_time, kind, severity, title, body)
         values ($1, $2, now(), 'test', 'info', $3, $4)
         returning notification_id",
        user_id,
        rule_id,
        title,
        body
    )
    .fetch_one(conn)
    .await
}
