//! What an account operation can fail with, in terms a caller can act on: the HTTP server turns
//! each variant into its problem, the command line into a message.

use std::time::Duration;

/// One invalid field of an account change, named as the caller named it (`username`,
/// `password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Everything an account operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// There is no user or token with this id.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what is stored: a username taken, the last active admin.
    #[error("{0}")]
    Conflict(String),
    /// Some fields are invalid; nothing was stored.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Too many failed logins from this address; the next attempt must wait this long.
    #[error("too many failed logins; try again in {} s", .retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// The database failed (the cause says how).
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    /// Hashing a password failed (or its worker died): a bug or an exhausted machine.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AccountError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AccountError::Invalid(vec![FieldError::new(field, message)])
    }
}

/// `field: message; field: message`, the fields in the order they were checked.
fn describe(fields: &[FieldError]) -> String {
    fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
}

/// True when `e` is a unique-constraint violation (SQLSTATE 23505).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_fields_read_as_one_line_naming_each_field() {
        let e = AccountError::Invalid(vec![
            FieldError::new("username", "must not be empty"),
            FieldError::new("password", "at least 8 characters"),
        ]);
        assert_eq!(e.to_string(), "username: must not be empty; password: at least 8 characters");
    }

    #[test]
    fn a_throttle_says_at_least_one_second() {
        let e = AccountError::Throttled { retry_after: Duration::from_millis(200) };
        assert_eq!(e.to_string(), "too many failed logins; try again in 1 s");
    }
}
