//! `/notifications/webhooks`: receivers of signed JSON POSTs. The signing secret is made by
//! fleetd and shown once, in the answer to creating the webhook or rotating its secret; lists
//! never include it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_core::text::excerpt;
use fleet_db::notifications::webhooks::{WebhookInput, WebhookRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::extract::{JsonBody, Path};
use crate::auth::Admin;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// A webhook (without its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub webhook_id: i32,
    pub name: String,
    pub url: String,
    /// Inactive webhooks get no messages.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Webhook {
            webhook_id: r.webhook_id,
            name: r.name,
            url: r.url,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A new webhook with its signing secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecret {
    pub webhook_id: i32,
    pub name: String,
    pub url: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// 64 hex digits: the HMAC-SHA256 key of `X-Fleetd-Signature`. Not shown again.
    pub secret: String,
}

/// A webhook's new secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    pub webhook_id: i32,
    pub secret: String,
}

/// Every webhook.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// A webhook as an admin writes it (creating, or replacing it whole).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// 1-200 characters.
    pub name: String,
    /// An http:// or https:// URL.
    pub url: String,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

fn validate(b: WebhookBody) -> Result<WebhookInput, ApiError> {
    let mut errors = Vec::new();
    let name = b.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1-200 characters"));
    }
    let url = b.url.trim().to_owned();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let ok = host.is_some_and(|h| !h.is_empty() && !h.starts_with(':'))
        && url.len() <= 2000
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errors.push(FieldError::new("url", "must be an http:// or https:// URL with a host"));
    }
    crate::api::validate::finish(errors)?;
    Ok(WebhookInput { name, url, active: b.active })
}

fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("there is no webhook {id}"))
}

/// List webhooks.
#[utoipa::path(
    get,
    path = "/notifications/webhooks",
    tag = "notifications",
    description = "Requires role: admin. Every webhook, by id, without secrets.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The webhooks", body = WebhookList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<WebhookList>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let rows = fleet_db::notifications::webhooks::list(&mut db).await?;
    Ok(Json(WebhookList { items: rows.into_iter().map(Webhook::from).collect() }))
}

/// Create a webhook.
#[utoipa::path(
    post,
    path = "/notifications/webhooks",
    tag = "notifications",
    description = "Requires role: admin. The answer carries the signing secret; it is not shown again (rotate it to get a new one).",
    security(("session" = []), ("bearer" = [])),
    request_body = WebhookBody,
    responses(
        (status = 201, description = "The new webhook and its secret", body = WebhookWithSecret),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let input = validate(body)?;
    let mut db = state.pool.acquire().await?;
    let (r, secret) = fleet_db::notifications::webhooks::insert(&mut db, &input).await?;
    tracing::info!(webhook.id = r.webhook_id, webhook.name = %excerpt(&r.name), by = %who.username, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(WebhookWithSecret {
            webhook_id: r.webhook_id,
            name: r.name,
            url: r.url,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
            secret,
        }),
    ))
}

/// Replace a webhook.
#[utoipa::path(
    put,
    path = "/notifications/webhooks/{id}",
    tag = "notifications",
    description = "Requires role: admin. Name, URL and active flag; the secret stays.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Webhook id")),
    request_body = WebhookBody,
    responses(
        (status = 200, description = "The changed webhook", body = Webhook),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Result<Json<Webhook>, ApiError> {
    let input = validate(body)?;
    let mut db = state.pool.acquire().await?;
    let r = fleet_db::notifications::webhooks::update(&mut db, id, &input)
        .await?
        .ok_or_else(|| not_found(id))?;
    tracing::info!(webhook.id = id, by = %who.username, "webhook changed");
    Ok(Json(Webhook::from(r)))
}

/// Delete a webhook.
#[utoipa::path(
    delete,
    path = "/notifications/webhooks/{id}",
    tag = "notifications",
    description = "Requires role: admin. Rules that name it lose it in the same transaction.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.pool.begin().await?;
    if !fleet_db::notifications::webhooks::delete(&mut tx, id).await? {
        return Err(not_found(id));
    }
    tx.commit().await?;
    tracing::info!(webhook.id = id, by = %who.username, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Give a webhook a new secret.
#[utoipa::path(
    post,
    path = "/notifications/webhooks/{id}/rotate",
    tag = "notifications",
    description = "Requires role: admin. The old secret stops signing at once; the new one is shown this once.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecret),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn rotate_webhook(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let secret = fleet_db::notifications::webhooks::rotate(&mut db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    tracing::info!(webhook.id = id, by = %who.username, "webhook secret rotated");
    Ok(Json(WebhookSecret { webhook_id: id, secret }))
}
