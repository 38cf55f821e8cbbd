//! `/notifications/deliveries`: the delivery log (every message with its attempts, newest
//! first) and retrying a dead letter. Admins only: it shows addresses.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_db::notifications::delivery_log::{self, Filter, Retry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{Path, Query};
use crate::api::{paging, validate};
use crate::auth::Admin;
use crate::{ApiError, AppState, Problem};

/// Outbox states.
const STATES: [&str; 6] = ["pending", "sending", "sent", "dead", "suppressed", "unknown"];
/// Channels of outbox messages (in-app ones are not in the outbox).
const CHANNELS: [&str; 4] = ["email", "sms", "telegram", "webhook"];

/// One try at sending a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i32>,
    /// started, sent, retry, failed or unknown.
    pub outcome: String,
    /// The provider's HTTP or SMTP status.
    pub status_code: Option<i32>,
    /// The provider's answer (shortened).
    pub response: Option<String>,
}

/// One message of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub delivery_id: i64,
    /// Null for tests.
    pub event_id: Option<i64>,
    pub event_kind: Option<String>,
    pub device_id: Option<i32>,
    pub event_time: Option<DateTime<Utc>>,
    pub rule_id: Option<i32>,
    pub rule_name: Option<String>,
    /// email, sms, telegram or webhook.
    pub channel: String,
    pub user_id: Option<i32>,
    pub address: String,
    pub webhook_id: Option<i32>,
    /// pending, sending, sent, dead, suppressed (quiet hours) or unknown (stopped mid-send).
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub is_test: bool,
    /// Tests: who sent it and what it tests.
    pub test_subject: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<Attempt>,
}

impl From<delivery_log::Delivery> for Delivery {
    fn from(d: delivery_log::Delivery) -> Self {
        Delivery {
            delivery_id: d.delivery_id,
            event_id: d.event_id,
            event_kind: d.event_kind,
            device_id: d.device_id,
            event_time: d.event_time,
            rule_id: d.rule_id,
            rule_name: d.rule_name,
            channel: d.channel,
            user_id: d.user_id,
            address: d.address,
            webhook_id: d.webhook_id,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            is_test: d.is_test,
            test_subject: d.test_subject,
            last_error: d.last_error,
            created_at: d.created_at,
            sent_at: d.sent_at,
            finished_at: d.finished_at,
            attempt_log: d
                .attempt_log
                .into_iter()
                .map(|a| Attempt {
                    attempt: a.attempt,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                    latency_ms: a.latency_ms,
                    outcome: a.outcome,
                    status_code: a.status_code,
                    response: a.response,
                })
                .collect(),
        }
    }
}

/// A page of the delivery log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Pass as `after` for the next (older) page; null on the last.
    pub next_after: Option<String>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Comma-separated states: pending, sending, sent, dead, suppressed, unknown.
    pub state: Option<String>,
    /// Comma-separated channels: email, sms, telegram, webhook.
    pub channel: Option<String>,
    pub rule_id: Option<i32>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// `next_after` of the previous page.
    pub after: Option<String>,
    /// 1-500, default 100.
    pub limit: Option<i64>,
}

/// The delivery log.
#[utoipa::path(
    get,
    path = "/notifications/deliveries",
    tag = "notifications",
    description = "Requires role: admin. Every outbox message, newest first, with each attempt (status, latency, response).",
    security(("session" = []), ("bearer" = [])),
    params(DeliveryQuery),
    responses(
        (status = 200, description = "A page of messages", body = DeliveryPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let mut errors = Vec::new();
    let limit = validate::limit(q.limit, 100, 500, &mut errors);
    let states = validate::names("state", q.state.as_deref(), &STATES, |s| s, &mut errors);
    let channels = validate::names("channel", q.channel.as_deref(), &CHANNELS, |s| s, &mut errors);
    validate::times(q.from, q.to, &mut errors);
    let after: Option<i64> = paging::after(q.after.as_deref(), &mut errors);
    validate::finish(errors)?;
    let filter = Filter {
        states: states.map(|s| s.into_iter().map(str::to_owned).collect()),
        channels: channels.map(|s| s.into_iter().map(str::to_owned).collect()),
        rule_id: q.rule_id,
        from: q.from,
        to: q.to,
    };
    let mut db = state.pool.acquire().await?;
    let mut rows = delivery_log::list(&mut db, &filter, after, limit).await?;
    let next_after = paging::next_after(&mut rows, limit, |r| r.delivery_id);
    Ok(Json(DeliveryPage { items: rows.into_iter().map(Delivery::from).collect(), next_after }))
}

/// Retry a dead letter.
#[utoipa::path(
    post,
    path = "/notifications/deliveries/{id}/retry",
    tag = "notifications",
    description = "Requires role: admin. A dead message becomes pending again, due now; the dispatcher sends it within seconds. Only dead letters can be retried (409 otherwise).",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Queued again", body = Delivery),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The message is not a dead letter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn retry_delivery(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i64>,
) -> Result<Json<Delivery>, ApiError> {
    let mut tx = state.pool.begin().await?;
    match delivery_log::retry(&mut tx, id).await? {
        Retry::Queued => {}
        Retry::NotFound => return Err(ApiError::NotFound(format!("there is no message {id}"))),
        Retry::NotDead => {
            return Err(ApiError::Conflict(format!("message {id} is not a dead letter")))
        }
    }
    let row = delivery_log::get(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(delivery.id = id, by = %who.username, "dead letter queued again");
    row.map(|r| Json(Delivery::from(r)))
        .ok_or_else(|| ApiError::NotFound(format!("there is no message {id}")))
}
