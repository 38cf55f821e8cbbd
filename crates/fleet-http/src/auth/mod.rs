//! Who is calling: the authenticated [`Principal`] (an account of `fleet_accounts`) and the
//! extractors that require a role ([`Viewer`], [`Operator`], [`Admin`]). A request
//! authenticates with a bearer token (`Authorization: Bearer fltd_…`) or the session cookie
//! set by the login route (`fleetd_session`, `__Host-fleetd_session` over HTTPS).

pub mod client;
pub mod origin;
mod problems;
pub mod session;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use fleet_accounts::token;

use crate::{ApiError, AppState};

pub use fleet_accounts::{Credential, Principal, Role};

/// `Ok` when `who`'s role is at least `min`, a 403 problem otherwise.
pub fn require(who: &Principal, min: Role) -> Result<(), ApiError> {
    if who.may(min) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {min} role or higher; {} is {}",
            who.username, who.role
        )))
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
            return fleet_accounts::session::authenticate(&state.pool, &raw).await?.ok_or_else(
                || {
                    ApiError::Unauthenticated(
                        "the session has expired or was ended; log in again".to_owned(),
                    )
                },
            );
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
                require(&who, $role)?;
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
    fn require_refuses_lower_roles_with_a_403() {
        let who = Principal {
            user_id: 1,
            username: "vic".into(),
            role: Role::Viewer,
            credential: Credential::Token { token_id: 1 },
        };
        assert!(require(&who, Role::Viewer).is_ok());
        let e = require(&who, Role::Operator).expect_err("viewer is not an operator");
        assert_eq!(e.problem().status, 403);
    }
}
