//! How account failures are answered: each [`AccountError`] becomes the problem the API has
//! always answered it with (404, 409, 422 with the fields, 429 with `Retry-After`, 503 when the
//! database is unavailable, 500 otherwise).

use fleet_accounts::AccountError;

use crate::{ApiError, FieldError};

impl From<fleet_accounts::FieldError> for FieldError {
    fn from(e: fleet_accounts::FieldError) -> Self {
        FieldError { field: e.field, message: e.message }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound(m) => ApiError::NotFound(m),
            AccountError::Conflict(m) => ApiError::Conflict(m),
            AccountError::Invalid(fields) => {
                ApiError::Validation(fields.into_iter().map(FieldError::from).collect())
            }
            AccountError::Throttled { retry_after } => ApiError::RateLimited { retry_after },
            AccountError::Database(e) => ApiError::from(e),
            e @ AccountError::Hashing(_) => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn account_errors_keep_their_statuses_and_fields() {
        let status = |e: AccountError| ApiError::from(e).problem().status;
        assert_eq!(status(AccountError::NotFound("no user 7".into())), 404);
        assert_eq!(status(AccountError::Conflict("taken".into())), 409);
        assert_eq!(status(AccountError::Throttled { retry_after: Duration::from_secs(3) }), 429);
        assert_eq!(status(AccountError::Database(sqlx::Error::PoolTimedOut)), 503);
        assert_eq!(status(AccountError::Hashing("worker died".into())), 500);
        let p = ApiError::from(AccountError::invalid("username", "must not be empty")).problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors, vec![FieldError::new("username", "must not be empty")]);
    }
}
