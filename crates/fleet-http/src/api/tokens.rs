//! `/tokens`: admins create bearer tokens for integrations (shown once), list and revoke them.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use fleet_accounts::token::{self, TokenInfo};
use fleet_accounts::{users, AccountError};

use super::extract::{JsonBody, Path};
use crate::auth::Admin;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Every token, newest first (revoked ones too).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The user the token acts as (with that user's role); default the caller.
    pub user_id: Option<i32>,
    /// What the token is for, e.g. `erp-sync`; at most 100 characters.
    pub name: String,
    /// When the token stops working; default never (until revoked). Must be in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token just created. `token` is shown only in this response; store it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer <token>`.
    #[schema(example = "fltd_Vb0m3cQ2…")]
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// List tokens.
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "tokens",
    description = "Requires role: admin. Tokens themselves are never listed, only their first characters.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every token", body = TokenList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList { items: token::list(&state.pool).await? }))
}

/// Create a token.
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "tokens",
    description = "Requires role: admin. The response is the only time the token is shown.",
    security(("session" = []), ("bearer" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or no such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = Vec::new();
    let name = body.name.trim();
    if let Err(m) = token::check_name(name) {
        errors.push(FieldError::new("name", m));
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        errors.push(FieldError::new("expires_at", "must be in the future"));
    }
    let user_id = body.user_id.unwrap_or(who.user_id);
    match users::get(&state.pool, user_id).await {
        Ok(_) => {}
        Err(AccountError::NotFound(_)) => {
            errors.push(FieldError::new("user_id", format!("there is no user {user_id}")))
        }
        Err(e) => return Err(e.into()),
    }
    super::validate::finish(errors)?;
    let created = token::create(&state.pool, user_id, name, body.expires_at).await?;
    tracing::info!(
        token.id = created.info.token_id,
        token.prefix = %created.info.token_prefix,
        user.name = %created.info.username,
        by = %who.username,
        "API token created"
    );
    let location = format!("/api/v1/tokens/{}", created.info.token_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedToken { token: created.token, info: created.info }),
    ))
}

/// Revoke a token.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "tokens",
    description = "Requires role: admin. The token stops working at once; revoking it again changes nothing.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    if !token::revoke(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("there is no token {id}")));
    }
    tracing::info!(token.id = id, by = %who.username, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
