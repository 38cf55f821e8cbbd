//! `/auth`: log in (sets the session cookie), log out, and who am I.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::JsonBody;
use crate::auth::users::{self, User};
use crate::auth::{client, password, session, Credential, Principal};
use crate::{ApiError, AppState, Problem};

/// Login credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username (case does not matter).
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
}

/// The authenticated user and how they authenticated.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    /// `session` (the cookie) or `token` (a bearer token).
    #[schema(example = "session")]
    pub authenticated_by: String,
    /// When the session ends unless used again (sessions only; each request made with it
    /// extends it, up to 30 days after login).
    pub session_expires_at: Option<DateTime<Utc>>,
}

/// What login needs to know about the client beyond the body.
#[derive(Debug)]
pub(crate) struct ClientInfo {
    address: Option<IpAddr>,
    https: bool,
    user_agent: Option<String>,
    session: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo {
            address: client::address(parts),
            https: client::is_https(&parts.headers),
            user_agent: client::user_agent(&parts.headers),
            session: session::cookie_value(&parts.headers),
        })
    }
}

/// Log in with a username and password.
///
/// Sets the `fleetd_session` cookie (HttpOnly, SameSite=Lax, Path=/, Secure when the request
/// came through a TLS proxy that sent `X-Forwarded-Proto: https`). After 5 failed logins for an
/// account within 15 minutes, or 20 from one client address, further attempts get 429 with
/// `Retry-After` until the oldest failure is 15 minutes old.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = Me,
            headers(("Set-Cookie" = String, description = "fleetd_session=<id>; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax[; Secure]"))),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password, or the user is inactive", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or of the wrong type", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins; see Retry-After", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let attempt = state
        .login_limiter
        .begin(&body.username, client.address)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let checked = check_password(&state, &body).await;
    let user_id = match checked {
        Ok(Some(id)) => id,
        Ok(None) => {
            drop(attempt); // counted as a failure
            tracing::info!(
                user.name = %body.username, client.addr = ?client.address, "failed login"
            );
            return Err(ApiError::Unauthenticated("wrong username or password".to_owned()));
        }
        Err(e) => {
            attempt.undecided();
            return Err(e);
        }
    };
    attempt.succeeded();
    if let Some(old) = &client.session {
        session::end(&state.pool, &crate::auth::secret::hash(old)).await?;
    }
    let new = session::create(&state.pool, user_id, client.user_agent, client.address).await?;
    users::record_login(&state.pool, user_id).await?;
    let user = users::get(&state.pool, user_id).await?;
    tracing::info!(user.name = %user.username, user.role = %user.role, "logged in");
    let me = Me {
        user,
        authenticated_by: "session".to_owned(),
        session_expires_at: Some(new.expires_at),
    };
    Ok(([(header::SET_COOKIE, session::set_cookie(&new.id, client.https))], Json(me)))
}

/// The id of the active user these credentials belong to, if they are right.
async fn check_password(state: &AppState, body: &LoginRequest) -> Result<Option<i32>, ApiError> {
    let plausible = users::check_username(&body.username).is_ok()
        && body.password.chars().count() <= password::MAX_PASSWORD_CHARS;
    let found = match plausible {
        true => users::credentials(&state.pool, &body.username).await?,
        false => None,
    };
    let (user_id, hash) = found.unzip();
    let ok = password::verify_async(body.password.clone(), hash).await?;
    Ok(user_id.filter(|_| ok))
}

/// Log out: end the session and clear its cookie.
///
/// With a bearer token this changes nothing (revoke tokens at `DELETE /api/v1/tokens/{id}`).
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Logged out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "fleetd_session=; Max-Age=0"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    who: Principal,
) -> Result<impl IntoResponse, ApiError> {
    if let Credential::Session { session_hash } = &who.credential {
        session::end(&state.pool, session_hash).await?;
        tracing::info!(user.name = %who.username, "logged out");
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session::clear_cookie(client.https))]))
}

/// The authenticated user.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Me>, ApiError> {
    let user = users::get(&state.pool, who.user_id).await?;
    let (by, expires) = match &who.credential {
        Credential::Session { session_hash } => {
            ("session", session::expires_at(&state.pool, session_hash).await?)
        }
        Credential::Token { .. } => ("token", None),
    };
    Ok(Json(Me { user, authenticated_by: by.to_owned(), session_expires_at: expires }))
}
