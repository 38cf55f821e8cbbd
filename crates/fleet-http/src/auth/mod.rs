//! Who is calling: roles, the authenticated [`Principal`] and the extractors that require a
//! role ([`Viewer`], [`Operator`], [`Admin`]). A request authenticates with a bearer token
//! (`Authorization: Bearer fltd_…`) or the session cookie set by the login route
//! (`fleetd_session`, `__Host-fleetd_session` over HTTPS).

pub mod client;
pub mod limit;
pub mod origin;
pub mod password;
pub mod secret;
pub mod session;
pub mod token;
pub mod users;

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ApiError, AppState};

/// What a user may do. Ordered: each role may do everything the roles below it may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but users and tokens.
    Viewer,
    /// Also acknowledges alarms and edits vehicles.
    Operator,
    /// Also manages users, tokens, geofences and analytics settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// `admin`, `operator` or `viewer`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Role::parse(&s).ok_or_else(|| format!("unknown role {s:?}"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The session cookie; the SHA-256 hex of the session id.
    Session { session_hash: String },
    /// A bearer token.
    Token { token_id: i32 },
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i32,
    pub username: String,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// `Ok` when the caller's role is at least `min`, a 403 problem otherwise.
    pub fn require(&self, min: Role) -> Result<(), ApiError> {
        if self.role >= min {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {min} role or higher; {} is {}",
                self.username, self.role
            )))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let raw = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::Unauthenticated(
                        "the Authorization header must be `Bearer <token>`".to_owned(),
                    )
                })?;
            return token::authenticate(&state.pool, raw).await?.ok_or_else(|| {
                ApiError::Unauthenticated("the token is unknown, revoked or expired".to_owned())
            });
        }
        if let Some(raw) = session::cookie_value(&parts.headers) {
            return session::authenticate(&state.pool, &raw).await?.ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the session has expired or was ended; log in again".to_owned(),
                )
            });
        }
        Err(ApiError::Unauthenticated(
            "log in (POST /api/v1/auth/login) or send `Authorization: Bearer <token>`".to_owned(),
        ))
    }
}

macro_rules! role_extractor {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let who = Principal::from_request_parts(parts, state).await?;
                who.require($role)?;
                Ok($name(who))
            }
        }
    };
}

role_extractor!(Viewer, Role::Viewer, "A caller with any role (viewer, operator or admin).");
role_extractor!(Operator, Role::Operator, "A caller who is an operator or an admin.");
role_extractor!(Admin, Role::Admin, "A caller who is an admin.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_from_their_names() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn require_refuses_lower_roles_with_a_403() {
        let who = Principal {
            user_id: 1,
            username: "vic".into(),
            role: Role::Viewer,
            credential: Credential::Token { token_id: 1 },
        };
        assert!(who.require(Role::Viewer).is_ok());
        let e = who.require(Role::Operator).expect_err("viewer is not an operator");
        assert_eq!(e.problem().status, 403);
    }
}
