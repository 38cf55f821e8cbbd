//! Roles and the authenticated caller: who is asking, with which role, through which
//! credential.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::Postgres;
use utoipa::ToSchema;

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

// Stored as its name in a text column (`fleet.users.role`, checked by the table), so queries
// read it as `role as "role: Role"`.
impl sqlx::Type<Postgres> for Role {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for Role {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let name = <&str as sqlx::Decode<Postgres>>::decode(value)?;
        Ok(Role::parse(name).ok_or_else(|| format!("unknown role {name:?}"))?)
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
    /// True when the caller's role is at least `min`.
    pub fn may(&self, min: Role) -> bool {
        self.role >= min
    }
}

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
    fn a_caller_may_do_what_their_role_and_the_roles_below_it_may() {
        let who = Principal {
            user_id: 1,
            username: "op".into(),
            role: Role::Operator,
            credential: Credential::Token { token_id: 1 },
        };
        assert!(who.may(Role::Viewer) && who.may(Role::Operator));
        assert!(!who.may(Role::Admin));
    }
}
