//! `fleet.notify_webhooks`: webhook receivers and their signing secrets. The secret is made
//! here (32 random bytes, hex) and returned only by [`insert`] and [`rotate`]: listing never
//! reads it, so it is shown to an admin once.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::PgConnection;

/// A webhook as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub webhook_id: i32,
    pub name: String,
    pub url: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an admin sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookInput {
    pub name: String,
    pub url: String,
    pub active: bool,
}

/// A fresh signing secret: 32 random bytes as 64 hex digits.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every webhook, by id.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as!(
        WebhookRow,
        "select webhook_id, name, url, active, created_at, updated_at
         from fleet.notify_webhooks order by webhook_id"
    )
    .fetch_all(conn)
    .await
}

/// One webhook.
pub async fn get(
    conn: &mut PgConnection,
    webhook_id: i32,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as!(
        WebhookRow,
        "select webhook_id, name, url, active, created_at, updated_at
         from fleet.notify_webhooks where webhook_id = $1",
        webhook_id
    )
    .fetch_optional(conn)
    .await
}

/// Stores a new webhook with a fresh secret; returns it and the secret.
pub async fn insert(
    conn: &mut PgConnection,
    w: &WebhookInput,
) -> Result<(WebhookRow, String), sqlx::Error> {
    let secret = new_secret();
    let row = sqlx::query_as!(
        WebhookRow,
        "insert into fleet.notify_webhooks (name, url, secret, active) values ($1, $2, $3, $4)
         returning webhook_id, name, url, active, created_at, updated_at",
        w.name,
        w.url,
        secret,
        w.active
    )
    .fetch_one(conn)
    .await?;
    Ok((row, secret))
}

/// Changes a webhook's name, URL and active flag; `None` when there is none.
pub async fn update(
    conn: &mut PgConnection,
    webhook_id: i32,
    w: &WebhookInput,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as!(
        WebhookRow,
        "update fleet.notify_webhooks set name = $2, url = $3, active = $4, updated_at = now()
         where webhook_id = $1
         returning webhook_id, name, url, active, created_at, updated_at",
        webhook_id,
        w.name,
        w.url,
        w.active
    )
    .fetch_optional(conn)
    .await
}

/// Replaces a webhook's secret; the new one, or `None` when there is no such webhook.
pub async fn rotate(
    conn: &mut PgConnection,
    webhook_id: i32,
) -> Result<Option<String>, sqlx::Error> {
    let secret = new_secret();
    let done = sqlx::query!(
        "update fleet.notify_webhooks set secret = $2, updated_at = now() where webhook_id = $1",
        webhook_id,
        secret
    )
    .execute(conn)
    .await?;
    Ok((done.rows_affected() > 0).then_some(secret))
}

/// Deletes a webhook and takes it out of every rule that names it (its past messages keep
/// their history with the webhook id cleared). `false` when there was none.
pub async fn delete(conn: &mut PgConnection, webhook_id: i32) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "update fleet.notify_rules set webhook_ids = array_remove(webhook_ids, $1),
             updated_at = now()
         where $1 = any(webhook_ids)",
        webhook_id
    )
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query!("delete from fleet.notify_webhooks where webhook_id = $1", webhook_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
