//! Failed-login limits in `fleet.login_throttle`: counted per account and address and per
//! address, forgiven by a success, not counted when undecided. The delays here are a day long,
//! so nothing decays while a test runs.

use std::net::IpAddr;
use std::time::Duration;

use fleet_accounts::throttle::{Backoff, LoginLimiter, LoginLimits};
use fleet_accounts::AccountError;
use fleet_testkit::TestDb;
use sqlx::PgPool;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn limiter(per_account: u32, per_address: u32) -> LoginLimiter {
    let backoff =
        Backoff { free_failures: per_account, base_delay: DAY, max_delay: DAY, decay_every: DAY };
    LoginLimiter::new(LoginLimits {
        per_account_address: backoff,
        per_address: Backoff { free_failures: per_address, ..backoff },
    })
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

/// Claims an attempt and lets it count as a failure.
async fn fail(limiter: &LoginLimiter, pool: &PgPool, username: &str, from: Option<IpAddr>) {
    let attempt = limiter.begin(pool, username, from).await.expect("allowed");
    drop(attempt);
}

async fn retry_after(
    limiter: &LoginLimiter,
    pool: &PgPool,
    username: &str,
    from: Option<IpAddr>,
) -> Option<Duration> {
    match limiter.begin(pool, username, from).await {
        Ok(_) => None,
        Err(AccountError::Throttled { retry_after }) => Some(retry_after),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn failures_of_an_account_delay_it_from_that_address_only() {
    let db = TestDb::migrated().await;
    let limiter = limiter(2, 1000);
    let here = ip("198.51.100.1");
    fail(&limiter, &db.pool, "alice", here).await;
    fail(&limiter, &db.pool, "Alice", here).await;
    let wait = retry_after(&limiter, &db.pool, "ALICE", here).await.expect("delayed");
    assert!(wait > DAY - Duration::from_secs(60) && wait <= DAY, "{wait:?}");
    // the owner elsewhere, and another account here, go ahead
    assert_eq!(retry_after(&limiter, &db.pool, "alice", ip("198.51.100.2")).await, None);
    assert_eq!(retry_after(&limiter, &db.pool, "bob", here).await, None);
    let stored: Vec<(String, String, i32)> = sqlx::query_as(
        "select username, address, failures from fleet.login_throttle
         where address = '198.51.100.1' order by username",
    )
    .fetch_all(&db.pool)
    .await
    .expect("rows");
    let expected = [("", 3), ("alice", 2), ("bob", 1)].map(|(u, n)| (u.to_owned(), n));
    let got: Vec<(String, i32)> = stored.into_iter().map(|(u, _, n)| (u, n)).collect();
    assert_eq!(got, expected, "the refused attempt is not counted");
}

#[tokio::test]
async fn a_success_forgives_the_account_and_an_undecided_attempt_counts_nothing() {
    let db = TestDb::migrated().await;
    let limiter = limiter(2, 1000);
    let here = ip("2001:db8:1:2::10");
    fail(&limiter, &db.pool, "alice", here).await;
    let attempt = limiter.begin(&db.pool, "alice", here).await.expect("second");
    attempt.succeeded().await.expect("success");
    for _ in 0..3 {
        let attempt = limiter.begin(&db.pool, "alice", here).await.expect("undecided");
        attempt.undecided().await.expect("undecided");
    }
    fail(&limiter, &db.pool, "alice", here).await;
    // one failure since the success: a neighbour in the same /64 may still try once more
    fail(&limiter, &db.pool, "alice", ip("2001:db8:1:2::99")).await;
    assert!(retry_after(&limiter, &db.pool, "alice", here).await.is_some());
}

#[tokio::test]
async fn an_address_trying_many_accounts_is_delayed_for_all_of_them() {
    let db = TestDb::migrated().await;
    let limiter = limiter(1000, 3);
    let sprayer = ip("203.0.113.9");
    for name in ["a", "b", "c"] {
        fail(&limiter, &db.pool, name, sprayer).await;
    }
    assert!(retry_after(&limiter, &db.pool, "d", sprayer).await.is_some());
    assert_eq!(retry_after(&limiter, &db.pool, "d", ip("203.0.113.10")).await, None);
    assert_eq!(retry_after(&limiter, &db.pool, "d", None).await, None, "unknown is its own");
}
