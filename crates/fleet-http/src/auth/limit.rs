//! Failed-login limits, in memory: at most `per_account` failures per account and
//! `per_address` per client address within a sliding `window`; past that, logins are answered
//! 429 with `Retry-After` without checking the password. Each attempt counts as a failure from
//! the moment it starts (and is forgiven if it succeeds), so concurrent guesses cannot slip
//! past the limit while their hashes are being checked. A successful login clears its
//! account's failures, not its address's.
//!
//! The state is per process: behind a load balancer with several fleetd processes the limits
//! apply per process.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
    /// Most accounts and addresses remembered at once (memory stays bounded under a flood).
    pub max_keys: usize,
}

impl Default for LoginLimits {
    /// 5 failures per account and 20 per address in 15 minutes.
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Failure times per account and address.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

/// One login attempt in progress, counted as a failure until [`Attempt::succeeded`].
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    account: Key,
    address: Option<Key>,
    at: Instant,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self { limits, failures: Mutex::new(HashMap::new()) }
    }

    /// Starts an attempt for `username` from `address`, or says how long to wait first.
    pub fn begin(&self, username: &str, address: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        self.begin_at(username, address, Instant::now())
    }

    fn begin_at(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        let account = Key::Account(username.to_lowercase());
        let address = address.map(Key::Address);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for (key, limit) in
            [(Some(&account), self.limits.per_account), (address.as_ref(), self.limits.per_address)]
        {
            let Some(times) = key.and_then(|k| map.get_mut(k)) else { continue };
            prune(times, now, self.limits.window);
            if times.len() >= limit {
                let oldest = times[times.len() - limit];
                wait = wait.max((oldest + self.limits.window).saturating_duration_since(now));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in std::iter::once(&account).chain(address.as_ref()) {
            if !map.contains_key(key) && map.len() >= self.limits.max_keys {
                make_room(&mut map, now, &self.limits);
            }
            map.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Attempt { limiter: self, account, address, at: now })
    }
}

impl Attempt<'_> {
    /// The password was right: forget the account's failures and this attempt's address count.
    pub fn succeeded(self) {
        let mut map = self.limiter.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.account);
        self.uncount(&mut map, self.address.as_ref());
    }

    /// The attempt could not be decided (the database failed): it does not count at all.
    pub fn undecided(self) {
        let mut map = self.limiter.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.uncount(&mut map, Some(&self.account));
        self.uncount(&mut map, self.address.as_ref());
    }

    fn uncount(&self, map: &mut HashMap<Key, VecDeque<Instant>>, key: Option<&Key>) {
        if let Some(times) = key.and_then(|k| map.get_mut(k)) {
            if let Some(i) = times.iter().rposition(|t| *t == self.at) {
                times.remove(i);
            }
        }
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
        times.pop_front();
    }
}

/// Drops expired entries; if that is not enough, the entry whose newest failure is oldest.
fn make_room(map: &mut HashMap<Key, VecDeque<Instant>>, now: Instant, limits: &LoginLimits) {
    map.retain(|_, times| {
        prune(times, now, limits.window);
        !times.is_empty()
    });
    if map.len() >= limits.max_keys {
        let stalest = map.iter().min_by_key(|(_, t)| t.back().copied()).map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits { per_account: 3, per_address: 5, window: Duration::from_secs(60), max_keys: 4 }
    }

    #[test]
    fn the_account_is_refused_after_its_limit_until_the_window_passes() {
        let l = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..3 {
            drop(l.begin_at("Alice", None, t0 + Duration::from_secs(i)).expect("allowed"));
        }
        let wait = l.begin_at("alice", None, t0 + Duration::from_secs(10)).expect_err("limited");
        assert_eq!(wait, Duration::from_secs(50), "until the oldest failure leaves the window");
        assert!(l.begin_at("alice", None, t0 + Duration::from_secs(60)).is_ok());
        assert!(l.begin_at("bob", None, t0 + Duration::from_secs(10)).is_ok(), "per account");
    }

    #[test]
    fn the_address_is_limited_across_accounts_and_success_clears_only_the_account() {
        let l = LoginLimiter::new(LoginLimits { max_keys: 100, ..limits() });
        let ip: IpAddr = "203.0.113.5".parse().expect("ip");
        let t0 = Instant::now();
        for name in ["a", "b", "c", "d"] {
            drop(l.begin_at(name, Some(ip), t0).expect("allowed"));
        }
        l.begin_at("e", Some(ip), t0).expect("fifth allowed").succeeded();
        drop(l.begin_at("f", Some(ip), t0).expect("the success did not count"));
        assert!(l.begin_at("g", Some(ip), t0).is_err(), "5 failures from one address");
        assert!(l.begin_at("g", Some("203.0.113.6".parse().expect("ip")), t0).is_ok());
    }

    #[test]
    fn an_undecided_attempt_does_not_count() {
        let l = LoginLimiter::new(LoginLimits { per_account: 1, ..limits() });
        let t0 = Instant::now();
        l.begin_at("ann", None, t0).expect("allowed").undecided();
        drop(l.begin_at("ann", None, t0).expect("still allowed"));
        assert!(l.begin_at("ann", None, t0).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let l = LoginLimiter::new(limits());
        let t0 = Instant::now();
        for i in 0..100 {
            drop(l.begin_at(&format!("user{i}"), None, t0 + Duration::from_millis(i)));
        }
        assert!(l.failures.lock().expect("lock").len() <= 4);
    }
}
