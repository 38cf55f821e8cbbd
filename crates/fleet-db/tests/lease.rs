//! Advisory-lock leases for single-writer jobs.

use std::time::Duration;

use fleet_db::{Lease, LeaseOptions};
use fleet_testkit::TestDb;
use sqlx::PgPool;

const FAST: LeaseOptions = LeaseOptions { check_every: Duration::from_millis(100) };

/// Tries to take `name` until it succeeds or `within` passes (the server frees a dropped
/// holder's lock when it notices the closed connection).
async fn acquire_within(pool: &PgPool, name: &str, within: Duration) -> Option<Lease> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(lease) = Lease::try_acquire(pool, name, FAST).await.expect("try") {
            return Some(lease);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_lease_is_exclusive_across_two_pools_and_freed_when_its_holder_drops_it() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;

    let held =
        Lease::try_acquire(&db.pool, "trip-builder", FAST).await.expect("try").expect("free lease");
    assert!(held.is_held());
    assert!(
        Lease::try_acquire(&other, "trip-builder", FAST).await.expect("try").is_none(),
        "exclusive"
    );
    assert!(
        Lease::try_acquire(&db.pool, "trip-builder", FAST).await.expect("try").is_none(),
        "even in the same pool"
    );
    assert!(fleet_db::lease::is_taken(&other, "trip-builder").await.expect("taken"));
    let different = Lease::try_acquire(&other, "retention", FAST).await.expect("try");
    assert!(different.is_some(), "other names are independent");

    drop(held);
    let taken = acquire_within(&other, "trip-builder", Duration::from_secs(10)).await;
    assert!(taken.is_some(), "dropping the lease frees it for the other pool");
}

#[tokio::test]
async fn a_released_lease_can_be_taken_at_once() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;
    let lease = Lease::try_acquire(&db.pool, "poller", FAST).await.expect("try").expect("free");
    lease.release().await;
    assert!(Lease::try_acquire(&other, "poller", FAST).await.expect("try").is_some());
}

#[tokio::test]
async fn a_lease_notices_when_its_connection_is_killed() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;
    let lease = Lease::try_acquire(&db.pool, "retention", FAST).await.expect("try").expect("free");

    let killed: i64 = sqlx::query_scalar(
        "select count(*) from (
           select pg_terminate_backend(pid) from pg_locks
           where locktype = 'advisory' and classid = $1::oid and objid = hashtext('retention')::oid
             and database = (select oid from pg_database where datname = current_database())
         ) t",
    )
    .bind(fleet_db::lease::LEASE_NAMESPACE)
    .fetch_one(&other)
    .await
    .expect("terminate");
    assert_eq!(killed, 1, "exactly one session held the lease");

    tokio::time::timeout(Duration::from_secs(10), lease.lost())
        .await
        .expect("loss noticed within 10 s");
    assert!(!lease.is_held());
    assert!(acquire_within(&other, "retention", Duration::from_secs(10)).await.is_some());
}
