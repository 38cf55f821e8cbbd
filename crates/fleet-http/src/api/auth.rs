//! `/auth`: log in (sets the session cookie), log out, and who am I.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use fleet_accounts::users::{self, User};
use fleet_accounts::{password, AccountError};
use fleet_core::text::excerpt;

use super::extract::JsonBody;
use crate::auth::{client, session, Credential, Principal};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Login credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username (case does not matter): 1-64 of letters, digits and `_ . @ -`.
    pub username: String,
    /// 1-256 characters.
    #[schema(format = Password)]
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    // never the password, and no more of the username than a log line may show
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &excerpt(&self.username))
            .finish_non_exhaustive()
    }
}

impl LoginRequest {
    /// Refuses credentials no account can have before anything is stored, counted or logged:
    /// the username's form is the one accounts are created with, the password at most
    /// [`password::MAX_PASSWORD_CHARS`] (its hashing cost grows with its length).
    fn check_form(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if let Err(m) = users::check_username(&self.username) {
            errors.push(FieldError::new("username", m));
        }
        if self.password.is_empty() {
            errors.push(FieldError::new("password", "must not be empty"));
        } else if self.password.chars().nth(password::MAX_PASSWORD_CHARS).is_some() {
            errors.push(FieldError::new(
                "password",
                format!("at most {} characters", password::MAX_PASSWORD_CHARS),
            ));
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(ApiError::Validation(errors)),
        }
    }
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
    /// The session cookie sent with the request: its name and value.
    session: Option<(&'static str, String)>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo {
            address: client::address(parts, &state.trusted_proxies),
            https: client::is_https(&parts.headers),
            user_agent: client::user_agent(&parts.headers),
            session: session::session_cookie(&parts.headers),
        })
    }
}

/// Log in with a username and password.
///
/// Sets the session cookie (HttpOnly, SameSite=Lax, Path=/): `fleetd_session`, or
/// `__Host-fleetd_session` with Secure when the request came through a TLS proxy that sent
/// `X-Forwarded-Proto: https`. A username or password of the wrong form is refused with 422
/// before anything else. After 5 failed logins of an account from one client address (or 20
/// from one address across accounts) each further attempt from there must wait a delay that
/// doubles per failure from 1 s to 15 minutes, answered 429 with `Retry-After`; failures are
/// forgotten one per quiet 15 minutes (3 for the address). The same account from another
/// address is not delayed.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = Me,
            headers(("Set-Cookie" = String, description = "fleetd_session=<id>; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax (over HTTPS: __Host-fleetd_session=<id>; …; Secure)"))),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong username or password, or the user is inactive", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cross-site request (Origin or Sec-Fetch-Site)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, of the wrong type, or of a form no account has", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins from this address; see Retry-After", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if let Err(e) = body.check_form() {
        metrics::counter!("fleetd_login_refused_total", "reason" => "malformed").increment(1);
        tracing::info!(
            user.name = %excerpt(&body.username),
            client.addr = ?client.address,
            "login refused: credentials of a form no account has"
        );
        return Err(e);
    }
    let attempt = match state.login_limiter.begin(&state.pool, &body.username, client.address).await
    {
        Ok(attempt) => attempt,
        Err(AccountError::Throttled { retry_after }) => {
            metrics::counter!("fleetd_login_refused_total", "reason" => "delayed").increment(1);
            tracing::info!(
                user.name = %excerpt(&body.username),
                client.addr = ?client.address,
                retry_after_s = retry_after.as_secs(),
                "login delayed after failures"
            );
            return Err(ApiError::RateLimited { retry_after });
        }
        Err(e) => return Err(e.into()),
    };
    let user_id = match users::check_password(&state.pool, &body.username, body.password.clone())
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            // the attempt stays counted as a failure
            metrics::counter!("fleetd_login_refused_total", "reason" => "wrong").increment(1);
            tracing::info!(
                user.name = %excerpt(&body.username), client.addr = ?client.address, "failed login"
            );
            return Err(ApiError::Unauthenticated("wrong username or password".to_owned()));
        }
        Err(e) => {
            attempt.undecided().await?;
            return Err(e.into());
        }
    };
    attempt.succeeded().await?;
    let mut cookies = Vec::with_capacity(2);
    if let Some((name, old)) = &client.session {
        fleet_accounts::session::end_id(&state.pool, old).await?;
        if *name != session::cookie_name(client.https) {
            cookies.push((header::SET_COOKIE, session::clear_cookie(name)));
        }
    }
    let new =
        fleet_accounts::session::create(&state.pool, user_id, client.user_agent, client.address)
            .await?;
    users::record_login(&state.pool, user_id).await?;
    let user = users::get(&state.pool, user_id).await?;
    tracing::info!(
        user.name = %excerpt(&user.username), user.role = %user.role, client.addr = ?client.address,
        "logged in"
    );
    let me = Me {
        user,
        authenticated_by: "session".to_owned(),
        session_expires_at: Some(new.expires_at),
    };
    cookies.push((header::SET_COOKIE, session::set_cookie(&new.id, client.https)));
    Ok((AppendHeaders(cookies), Json(me)))
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
            headers(("Set-Cookie" = String, description = "fleetd_session=; Max-Age=0 (or __Host-fleetd_session, the one the session came in)"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cross-site request (Origin or Sec-Fetch-Site)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    who: Principal,
) -> Result<impl IntoResponse, ApiError> {
    if let Credential::Session { session_hash } = &who.credential {
        fleet_accounts::session::end(&state.pool, session_hash).await?;
        tracing::info!(user.name = %excerpt(&who.username), "logged out");
    }
    let name = client.session.map_or(session::cookie_name(client.https), |(name, _)| name);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session::clear_cookie(name))]))
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
            ("session", fleet_accounts::session::expires_at(&state.pool, session_hash).await?)
        }
        Credential::Token { .. } => ("token", None),
    };
    Ok(Json(Me { user, authenticated_by: by.to_owned(), session_expires_at: expires }))
}
