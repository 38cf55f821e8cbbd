//! Places held per user and in total, for what one user must not be able to take all of
//! (running exports, open live streams): one count both caps use, so they admit and free
//! places the same way.

use std::collections::HashMap;

/// Why a place was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaFull {
    /// The process holds its `total`.
    Total,
    /// The user holds their `per_user`.
    PerUser,
}

/// Places held, in total and by user.
#[derive(Debug, Default)]
pub(crate) struct UserQuota {
    total: usize,
    per_user: HashMap<i32, usize>,
}

impl UserQuota {
    /// Takes a place for `user_id` unless the process holds `total` or the user `per_user`.
    pub(crate) fn take(
        &mut self,
        user_id: i32,
        per_user: usize,
        total: usize,
    ) -> Result<(), QuotaFull> {
        if self.total >= total {
            return Err(QuotaFull::Total);
        }
        let mine = self.per_user.entry(user_id).or_default();
        if *mine >= per_user {
            return Err(QuotaFull::PerUser);
        }
        *mine += 1;
        self.total += 1;
        Ok(())
    }

    /// Gives back a place `user_id` took (a user holding none is forgotten, so the map holds
    /// only users with places).
    pub(crate) fn release(&mut self, user_id: i32) {
        if let Some(n) = self.per_user.get_mut(&user_id) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_user.remove(&user_id);
            }
        }
    }

    /// Places held now.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

/// A viewer authenticated by token `user_id`, for the unit tests of the caps.
#[cfg(test)]
pub(crate) fn test_principal(user_id: i32) -> crate::auth::Principal {
    crate::auth::Principal {
        user_id,
        username: format!("u{user_id}"),
        role: crate::auth::Role::Viewer,
        credential: crate::auth::Credential::Token { token_id: user_id },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_user_and_in_total_and_come_back_when_released() {
        let mut q = UserQuota::default();
        q.take(1, 2, 3).expect("1a");
        q.take(1, 2, 3).expect("1b");
        assert_eq!(q.take(1, 2, 3), Err(QuotaFull::PerUser));
        q.take(2, 2, 3).expect("2a");
        assert_eq!(q.take(3, 2, 3), Err(QuotaFull::Total));
        q.release(1);
        q.take(3, 2, 3).expect("a place came back");
        assert_eq!(q.total(), 3);
        q.release(9); // holds nothing: nothing changes
        assert_eq!(q.total(), 3);
        for u in [1, 2, 3] {
            q.release(u);
        }
        assert_eq!(q.total(), 0);
        assert!(q.per_user.is_empty(), "users without places are forgotten");
    }
}
