//! Limits on the analyst role `fleet_ro`: session defaults (statement and idle-in-transaction
//! timeouts, `work_mem`), a connection limit, and a watchdog that cancels `fleet_ro` queries
//! running past the statement timeout, because a session may lift its own role defaults
//! (`SET statement_timeout = 0`) and PostgreSQL has no way to forbid that.
//!
//! The watchdog needs to see other roles' queries (superuser or `pg_read_all_stats`) and to
//! cancel them (superuser or `pg_signal_backend`); without either it logs a warning once, sets
//! `fleetd_analyst_watchdog_active` to 0 and does nothing else.

use std::time::Duration;

use fleet_config::AnalystLimits;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::roles::{retry_catalog_race, ANALYST_ROLE};
use crate::{Context, DbError};

/// `work_mem` of analyst sessions: a sort or hash larger than this spills to disk instead of
/// taking the server's memory.
pub const ANALYST_WORK_MEM: &str = "32MB";
/// A transaction left idle this long is ended (it holds locks and snapshot horizons).
pub const ANALYST_IDLE_IN_TRANSACTION: &str = "5min";

/// Sets `fleet_ro`'s connection limit and session defaults. Returns false, with a warning,
/// when fleetd's role may not alter roles (no CREATEROLE).
pub async fn apply_analyst_limits(pool: &PgPool, limits: &AnalystLimits) -> Result<bool, DbError> {
    if !crate::roles::may_alter_roles(pool).await? {
        tracing::warn!(
            role = ANALYST_ROLE,
            "fleetd's database role lacks CREATEROLE; the analyst role's limits are left unchanged"
        );
        return Ok(false);
    }
    let timeout_ms = limits.statement_timeout.as_millis();
    let statements = [
        format!("alter role {ANALYST_ROLE} with connection limit {}", limits.connection_limit),
        format!("alter role {ANALYST_ROLE} set statement_timeout = {timeout_ms}"),
        format!(
            "alter role {ANALYST_ROLE} set idle_in_transaction_session_timeout = '{ANALYST_IDLE_IN_TRANSACTION}'"
        ),
        format!("alter role {ANALYST_ROLE} set work_mem = '{ANALYST_WORK_MEM}'"),
    ];
    for sql in &statements {
        retry_catalog_race(|| sqlx::query(sql).execute(pool))
            .await
            .context("setting the analyst role's limits")?;
    }
    tracing::debug!(
        role = ANALYST_ROLE,
        connection_limit = limits.connection_limit,
        statement_timeout_ms = timeout_ms as u64,
        "analyst role limits set"
    );
    Ok(true)
}

/// Whether fleetd's role may see and cancel other roles' queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogRights {
    pub see: bool,
    pub cancel: bool,
}

/// What fleetd's role may do to analyst queries.
pub async fn watchdog_rights(pool: &PgPool) -> Result<WatchdogRights, DbError> {
    let (see, cancel): (bool, bool) = sqlx::query_as(
        "select r.rolsuper or pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
                r.rolsuper or pg_has_role(current_user, 'pg_signal_backend', 'USAGE')
         from pg_roles r where r.rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("checking fleetd's monitoring privileges")?;
    Ok(WatchdogRights { see, cancel })
}

/// Cancels every `fleet_ro` query (on any database of the server) running longer than
/// `limit`; returns the backends' pids.
pub async fn cancel_overrunning(pool: &PgPool, limit: Duration) -> Result<Vec<i32>, DbError> {
    let cancelled: Vec<i32> = sqlx::query_scalar(
        // offset 0 keeps the filter inside: pg_cancel_backend must only ever see these pids
        "select pid from (
             select pid from pg_stat_activity
             where usename = $1 and state = 'active'
               and now() - query_start > make_interval(secs => $2)
             offset 0
         ) overrunning
         where pg_cancel_backend(pid)",
    )
    .bind(ANALYST_ROLE)
    .bind(limit.as_secs_f64())
    .fetch_all(pool)
    .await
    .context("cancelling overrunning analyst queries")?;
    Ok(cancelled)
}

/// Runs the watchdog until `shutdown`: every few seconds (at most half the limit) cancels the
/// analyst queries past `limit`.
pub async fn watch(pool: PgPool, limit: Duration, shutdown: CancellationToken) {
    let rights = match watchdog_rights(&pool).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the analyst query watchdog cannot start");
            return;
        }
    };
    if !(rights.see && rights.cancel) {
        metrics::gauge!("fleetd_analyst_watchdog_active").set(0.0);
        tracing::warn!(
            role = ANALYST_ROLE,
            may_see = rights.see,
            may_cancel = rights.cancel,
            "fleetd's role cannot see or cancel other roles' queries (grant it pg_read_all_stats and pg_signal_backend); fleet_ro queries that lift their statement_timeout are not cancelled"
        );
        return;
    }
    metrics::gauge!("fleetd_analyst_watchdog_active").set(1.0);
    let every = (limit / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match cancel_overrunning(&pool, limit).await {
            Ok(pids) if pids.is_empty() => {}
            Ok(pids) => {
                metrics::counter!("fleetd_analyst_queries_cancelled_total")
                    .increment(pids.len() as u64);
                tracing::warn!(
                    role = ANALYST_ROLE,
                    ?pids,
                    limit_ms = limit.as_millis() as u64,
                    "cancelled analyst queries running past the statement timeout"
                );
            }
            Err(e) => tracing::warn!(error = %e, "the analyst query watchdog failed a round"),
        }
    }
}
