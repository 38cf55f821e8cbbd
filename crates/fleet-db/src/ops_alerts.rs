//! `fleet.ops_alerts`: the state of each ops alert. fleet-ops raises and clears them (a
//! conditional update, so each change of state is sent once across processes and restarts);
//! `/readyz` and the metrics read them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// An active alert.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub alert: String,
    pub message: String,
    pub raised_at: DateTime<Utc>,
}

/// An alert that has just been cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct ClearedAlert {
    pub alert: String,
    pub message: String,
    pub raised_at: DateTime<Utc>,
    pub cleared_at: DateTime<Utc>,
}

/// Raises `alert` unless it is already active; returns when it was raised, `None` when it
/// already was (so the caller notifies only on the change).
pub async fn raise(
    pool: &PgPool,
    alert: &str,
    message: &str,
    detail: &serde_json::Value,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into fleet.ops_alerts as a (alert, active, message, raised_at, detail)
         values ($1, true, $2, now(), $3)
         on conflict (alert) do update
             set active = true, message = excluded.message, raised_at = now(),
                 cleared_at = null, detail = excluded.detail
             where not a.active
         returning raised_at",
        alert,
        message,
        detail
    )
    .fetch_optional(pool)
    .await
}

/// Clears every active alert not in `holding`; returns those it cleared.
pub async fn clear_all_but(
    pool: &PgPool,
    holding: &[&str],
) -> Result<Vec<ClearedAlert>, sqlx::Error> {
    sqlx::query_as!(
        ClearedAlert,
        r#"update fleet.ops_alerts set active = false, cleared_at = now()
           where active and not (alert = any($1))
           returning alert, message, raised_at, cleared_at as "cleared_at!""#,
        holding as &[&str]
    )
    .fetch_all(pool)
    .await
}

/// The alerts active now, by name.
pub async fn active(pool: &PgPool) -> Result<Vec<ActiveAlert>, sqlx::Error> {
    sqlx::query_as!(
        ActiveAlert,
        "select alert, message, raised_at from fleet.ops_alerts where active order by alert"
    )
    .fetch_all(pool)
    .await
}

/// Every known alert and whether it is active, by name, at most `limit`.
pub async fn states(pool: &PgPool, limit: i64) -> Result<Vec<(String, bool)>, sqlx::Error> {
    let rows =
        sqlx::query!("select alert, active from fleet.ops_alerts order by alert limit $1", limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.alert, r.active)).collect())
}
