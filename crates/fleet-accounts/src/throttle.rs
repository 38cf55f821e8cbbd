//! Failed-login limits, kept in `fleet.login_throttle` so every fleetd process on the database
//! applies the same ones.
//!
//! Failures are counted per (account, client address) and per client address across accounts
//! (password spraying). Past a few free failures, each count asks for a delay before the next
//! attempt that doubles per failure up to a cap, and a count falls by one for every quiet period
//! without failures. There is no account lock: the owner trying from another address is never
//! delayed by someone else's guesses.
//!
//! An attempt is claimed (counted as a failure) in one transaction with the check, before the
//! password is verified, so concurrent guesses cannot slip past the limit while their hashes are
//! computed; a success forgives it, and clears the account's failures from that address.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use sqlx::PgPool;

use crate::AccountError;

/// One growing delay: `free_failures` failures cost nothing, each one after that doubles the
/// delay from `base_delay` up to `max_delay`; every `decay_every` without a failure forgets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free_failures: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub decay_every: Duration,
}

impl Backoff {
    /// The wait owed after `failures` failures, counted from the last one.
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.free_failures) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The failures still counting `quiet` after the last one.
    pub fn decayed(&self, failures: u32, quiet: Duration) -> u32 {
        let steps = quiet.as_nanos() / self.decay_step().as_nanos();
        failures.saturating_sub(u32::try_from(steps).unwrap_or(u32::MAX))
    }

    /// How much longer a new attempt must wait, `quiet` after the last of `failures` failures
    /// (zero: it may go ahead now). The count decays while waiting, so this is the earliest
    /// moment the decayed count's delay has passed.
    pub fn wait(&self, failures: u32, quiet: Duration) -> Duration {
        let step = self.decay_step();
        let first = self.decay_ticks(quiet);
        for k in first..=failures {
            // within [k * step, (k + 1) * step) the count is failures - k
            let start = step.saturating_mul(k).max(quiet);
            let at = start.max(self.delay(failures - k));
            if at < step.saturating_mul(k + 1) || k == failures {
                return at - quiet;
            }
        }
        Duration::ZERO
    }

    /// How long until `failures` have all decayed.
    fn forget_after(&self, failures: u32) -> Duration {
        self.decay_step().saturating_mul(failures)
    }

    fn decay_ticks(&self, quiet: Duration) -> u32 {
        u32::try_from(quiet.as_nanos() / self.decay_step().as_nanos()).unwrap_or(u32::MAX)
    }

    fn decay_step(&self) -> Duration {
        self.decay_every.max(Duration::from_millis(1))
    }
}

/// The limits of both counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures of one account from one address.
    pub per_account_address: Backoff,
    /// Failures from one address, whatever the account.
    pub per_address: Backoff,
}

impl Default for LoginLimits {
    /// Per account and address: 5 free failures, then 1 s doubling to 15 min, one failure
    /// forgotten per quiet 15 min. Per address: 20 free, then the same delays, one forgotten
    /// per quiet 3 min.
    fn default() -> Self {
        let max_delay = Duration::from_secs(15 * 60);
        Self {
            per_account_address: Backoff {
                free_failures: 5,
                base_delay: Duration::from_secs(1),
                max_delay,
                decay_every: Duration::from_secs(15 * 60),
            },
            per_address: Backoff {
                free_failures: 20,
                base_delay: Duration::from_secs(1),
                max_delay,
                decay_every: Duration::from_secs(3 * 60),
            },
        }
    }
}

/// The `username` of an address's own row (usernames cannot be empty).
const ANY_ACCOUNT: &str = "";

/// Claims login attempts against the limits in the database.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    limits: LoginLimits,
}

/// One login attempt in progress, counted as a failure unless [`Attempt::succeeded`] or
/// [`Attempt::undecided`] says otherwise.
#[derive(Debug)]
pub struct Attempt {
    pool: PgPool,
    username: String,
    address: String,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self { limits }
    }

    /// Claims an attempt for `username` (already validated: at most 64 characters) from
    /// `address`, or says how long to wait first ([`AccountError::Throttled`]).
    pub async fn begin(
        &self,
        pool: &PgPool,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt, AccountError> {
        let username = username.to_lowercase();
        let address = address_key(address);
        let mut tx = pool.begin().await?;
        // creates and locks both rows, the address's first: every login locks in this order,
        // so concurrent logins wait for each other and never deadlock, and a concurrent prune
        // (which skips locked rows) cannot delete them before they are read
        sqlx::query!(
            "insert into fleet.login_throttle (username, address, failures, last_failure_at, forget_at)
             values ($1, $3, 0, now(), now()), ($2, $3, 0, now(), now())
             on conflict (username, address) do update set failures = fleet.login_throttle.failures",
            ANY_ACCOUNT,
            username,
            address,
        )
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query!(
            r#"select username, failures,
                      greatest(extract(epoch from now() - last_failure_at), 0)::float8 as "quiet_s!"
               from fleet.login_throttle
               where address = $3 and username in ($1, $2)
               order by username
               for update"#,
            ANY_ACCOUNT,
            username,
            address,
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut wait = Duration::ZERO;
        let mut counts = Vec::with_capacity(2);
        for row in rows {
            let (who, failures, quiet_s) = (row.username, row.failures, row.quiet_s);
            let backoff = match who.as_str() {
                ANY_ACCOUNT => self.limits.per_address,
                _ => self.limits.per_account_address,
            };
            let failures = u32::try_from(failures).unwrap_or(0);
            let quiet = Duration::try_from_secs_f64(quiet_s).unwrap_or_default();
            wait = wait.max(backoff.wait(failures, quiet));
            let now_counting = backoff.decayed(failures, quiet).saturating_add(1);
            counts.push((who, now_counting, backoff.forget_after(now_counting)));
        }
        if !wait.is_zero() {
            tx.rollback().await?;
            return Err(AccountError::Throttled { retry_after: wait });
        }
        for (who, failures, forget_after) in counts {
            sqlx::query!(
                "update fleet.login_throttle
                    set failures = $3, last_failure_at = now(),
                        forget_at = now() + make_interval(secs => $4)
                  where username = $1 and address = $2",
                who,
                address,
                i32::try_from(failures).unwrap_or(i32::MAX),
                forget_after.as_secs_f64(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        prune(pool).await?;
        Ok(Attempt { pool: pool.clone(), username, address })
    }
}

impl Attempt {
    /// The password was right: the account's failures from this address are forgotten, and
    /// this attempt does not count against the address.
    pub async fn succeeded(self) -> Result<(), AccountError> {
        sqlx::query!(
            "delete from fleet.login_throttle where username = $1 and address = $2",
            self.username,
            self.address,
        )
        .execute(&self.pool)
        .await?;
        self.uncount(ANY_ACCOUNT).await
    }

    /// The attempt could not be decided (the database failed): it does not count at all.
    pub async fn undecided(self) -> Result<(), AccountError> {
        self.uncount(&self.username).await?;
        self.uncount(ANY_ACCOUNT).await
    }

    async fn uncount(&self, username: &str) -> Result<(), AccountError> {
        sqlx::query!(
            "update fleet.login_throttle set failures = greatest(failures - 1, 0)
              where username = $1 and address = $2",
            username,
            self.address,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Deletes counts that have decayed to nothing, a bounded batch at a time (each login does
/// this, so the table holds only what still counts). Rows a login holds are left for later.
async fn prune(pool: &PgPool) -> Result<(), AccountError> {
    sqlx::query!(
        "delete from fleet.login_throttle
          where (username, address) in (
              select username, address from fleet.login_throttle
               where forget_at < now()
               limit 1000
               for update skip locked)"
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The network a client is counted by in per-client limits (failed logins, bodies being
/// received): an IPv4 address on its own, an IPv6 address by its /64, one subscriber's
/// network, in which a client could otherwise take a new address per request. IPv4-mapped
/// IPv6 addresses count as the IPv4 address.
pub fn counted_network(ip: IpAddr) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map_or_else(|_| IpNet::from(IpAddr::V6(v6)), |n| IpNet::V6(n.trunc())),
        v4 => IpNet::from(v4),
    }
}

/// The stored key of an address: the network it is counted by ([`counted_network`]), an IPv4
/// one as its bare address.
pub fn address_key(address: Option<IpAddr>) -> String {
    match address.map(counted_network) {
        None => "unknown".to_owned(),
        Some(IpNet::V4(v4)) => v4.addr().to_string(),
        Some(v6) => v6.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            decay_every: Duration::from_secs(600),
        }
    }

    #[test]
    fn the_delay_doubles_after_the_free_failures_up_to_the_cap() {
        let b = backoff();
        let delays: Vec<u64> = (0..12).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn the_wait_is_what_remains_of_the_delay_and_shrinks_as_failures_decay() {
        let b = backoff();
        assert_eq!(b.wait(2, Duration::ZERO), Duration::ZERO, "still free");
        assert_eq!(b.wait(5, Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(b.wait(5, Duration::from_secs(4)), Duration::ZERO);
        // 20 failures owe the 60 s cap
        assert_eq!(b.wait(20, Duration::from_secs(30)), Duration::from_secs(30));
        let quick = Backoff { decay_every: Duration::from_secs(10), ..b };
        // at 10 s the count is 4 (owing 2 s, passed): allowed then, not at 60 s
        assert_eq!(quick.wait(5, Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(quick.wait(9, Duration::from_secs(1)), Duration::from_secs(19));
        assert_eq!(quick.decayed(9, Duration::from_secs(25)), 7);
        assert_eq!(quick.decayed(9, Duration::from_secs(1000)), 0);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(address_key(Some(a)), "2001:db8:1:2::/64");
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_eq!(address_key(Some("::ffff:203.0.113.5".parse().expect("ip"))), "203.0.113.5");
        assert_eq!(address_key(None), "unknown");
    }
}
