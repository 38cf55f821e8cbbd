//! Advisory-lock leases for single-writer jobs (trip building, retention, polling).
//!
//! A lease is a session-level `pg_try_advisory_lock` held on a connection of its own, taken from
//! the process's pool so it counts against the budget. A background task checks every
//! `check_every` that the connection is alive and the lock still held; when either fails the
//! lease is *lost* and its holder must stop writing. Releasing unlocks and returns the
//! connection; dropping without releasing does the same from the background task, and if the
//! process dies the server frees the lock when the connection closes.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::{Context, DbError};

/// First key of the two-key advisory lock form, reserved for fleetd's leases ("FLTD"), so they
/// never collide with other users of single-key advisory locks (sqlx's migrator among them).
pub const LEASE_NAMESPACE: i32 = 0x464c_5444;

/// How a lease watches its connection.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    pub check_every: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self { check_every: Duration::from_secs(5) }
    }
}

/// A held lease. See the module docs.
#[derive(Debug)]
pub struct Lease {
    name: String,
    lost: watch::Receiver<bool>,
    release: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Lease {
    /// Takes the lease `name` if nobody holds it; `Ok(None)` when another session does.
    /// Never waits for the holder.
    pub async fn try_acquire(
        pool: &PgPool,
        name: &str,
        opts: LeaseOptions,
    ) -> Result<Option<Lease>, DbError> {
        let mut conn = pool.acquire().await.context("taking a connection for a lease")?;
        let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, hashtext($2))")
            .bind(LEASE_NAMESPACE)
            .bind(name)
            .fetch_one(&mut *conn)
            .await
            .context("trying an advisory lock")?;
        if !got {
            return Ok(None);
        }
        let (lost_tx, lost) = watch::channel(false);
        let (release_tx, release_rx) = oneshot::channel();
        let task = tokio::spawn(hold(conn, name.to_owned(), opts, lost_tx, release_rx));
        tracing::info!(lease = name, "lease acquired");
        Ok(Some(Lease { name: name.to_owned(), lost, release: Some(release_tx), task: Some(task) }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once the lease is known to be lost.
    pub fn is_held(&self) -> bool {
        !*self.lost.borrow()
    }

    /// Resolves when the lease is lost (connection gone or lock no longer held).
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // an Err means the task ended, which only happens on loss or release
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// Unlocks and gives the connection back to the pool.
    pub async fn release(mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // dropping the sender wakes the task, which unlocks on its own
        self.release.take();
    }
}

const STILL_HELD: &str = "select exists (
    select from pg_locks
    where locktype = 'advisory' and pid = pg_backend_pid() and granted
      and database = (select oid from pg_database where datname = current_database())
      and classid = $1::oid and objid = hashtext($2)::oid and objsubid = 2)";

async fn hold(
    mut conn: PoolConnection<Postgres>,
    name: String,
    opts: LeaseOptions,
    lost: watch::Sender<bool>,
    mut release: oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(opts.check_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut release => break,
            _ = ticker.tick() => {
                let held: Result<bool, _> = sqlx::query_scalar(STILL_HELD)
                    .bind(LEASE_NAMESPACE)
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await;
                match held {
                    Ok(true) => continue,
                    Ok(false) => tracing::error!(lease = %name, "lease lost: lock no longer held"),
                    Err(e) => tracing::error!(lease = %name, error = %e, "lease lost: connection failed"),
                }
                let _ = lost.send(true);
                // never hand a broken or lock-less connection back to the pool
                conn.close_on_drop();
                return;
            }
        }
    }
    let unlocked: Result<bool, _> =
        sqlx::query_scalar("select pg_advisory_unlock($1, hashtext($2))")
            .bind(LEASE_NAMESPACE)
            .bind(&name)
            .fetch_one(&mut *conn)
            .await;
    let _ = lost.send(true);
    match unlocked {
        Ok(true) => tracing::info!(lease = %name, "lease released"),
        other => {
            tracing::warn!(lease = %name, result = ?other, "lease unlock failed; closing its connection");
            conn.close_on_drop();
        }
    }
}

/// Whether any session holds the lease `name` in this database (advisory locks belong to one
/// database; other databases on the same server have their own).
pub async fn is_taken(pool: &PgPool, name: &str) -> Result<bool, DbError> {
    sqlx::query_scalar(
        "select exists (select from pg_locks where locktype = 'advisory' and granted
           and database = (select oid from pg_database where datname = current_database())
           and classid = $1::oid and objid = hashtext($2)::oid and objsubid = 2)",
    )
    .bind(LEASE_NAMESPACE)
    .bind(name)
    .fetch_one(pool)
    .await
    .context("checking a lease")
}
