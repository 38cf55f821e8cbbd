//! The dispatcher: one per database, under the `notify-dispatcher` lease. At start it resolves
//! every message a stopped process left mid-send ([`outbox::recover`]); then it delivers due
//! outbox rows round after round, woken by `NOTIFY fleet_notify_outbox` (sent by the transaction
//! that routed them) and polling as a fallback. Every `sweep_every`, even while a backlog keeps
//! the rounds busy, it runs the notify sweep and resolves messages whose attempt started longer
//! ago than any send may take (an outcome that could not be recorded).
//!
//! Delivery is record-before-send: a message is marked `sending` with its attempt `started` and
//! committed before it leaves; the outcome is recorded after. A round claims no more messages
//! than it sends at once, so `sending` means a send in flight. The lease is checked before each
//! claim: a dispatcher that lost it claims nothing more. See docs/NOTIFICATIONS.md, "Delivery,
//! retries and exactly once".

mod backoff;
mod send;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_db::notifications::outbox;
use fleet_db::notifications::route::OUTBOX_CHANNEL;
use fleet_db::notify::NotifyKey;
use fleet_db::{Lease, LeaseOptions};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use backoff::{delay as backoff_delay, BASE as BACKOFF_BASE, CAP as BACKOFF_CAP};

use crate::channels::Channels;

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Poll for due messages this often when no NOTIFY arrives (retries fall due silently).
    pub poll: Duration,
    /// Sends in flight at once, and so messages claimed per round.
    pub concurrency: usize,
    /// The first retry of a failed send waits about this long; each next one twice as long
    /// (jittered, at most [`BACKOFF_CAP`]).
    pub retry_base: Duration,
    /// A message still undelivered this long after it was queued becomes a dead letter
    /// (`FLEETD_NOTIFY_GIVE_UP_H`).
    pub give_up_after: Duration,
    /// Links in messages start with it (`FLEETD_PUBLIC_URL`).
    pub public_url: String,
    /// Run the offline / not-moved sweep, and resolve stale `sending` messages, this often.
    pub sweep_every: Duration,
    /// A message `sending` this much longer than a send may take is resolved as a stopped one
    /// would be (its outcome could not be recorded).
    pub stale_margin: Duration,
    pub lease_name: String,
    pub lease_check: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(2),
            concurrency: 16,
            retry_base: BACKOFF_BASE,
            give_up_after: Duration::from_secs(24 * 3600),
            public_url: "http://localhost:8080".to_owned(),
            sweep_every: Duration::from_secs(30),
            stale_margin: Duration::from_secs(30),
            lease_name: "notify-dispatcher".to_owned(),
            lease_check: Duration::from_secs(5),
        }
    }
}

impl DispatcherConfig {
    /// The defaults with the public URL and give-up horizon of `config`.
    pub fn from_config(config: &fleet_config::Config) -> Self {
        Self {
            give_up_after: config.notify.give_up_after,
            public_url: config.notify.public_url.clone(),
            ..Self::default()
        }
    }
}

/// Delivers notifications until `shutdown`, holding the lease; another process holding it makes
/// this one stand by. On shutdown the round in flight finishes (each send is time-limited)
/// before the lease is released.
pub async fn run(
    pool: PgPool,
    config: DispatcherConfig,
    channels: Arc<Channels>,
    shutdown: CancellationToken,
) {
    loop {
        let Some(lease) = acquire(&pool, &config, &shutdown).await else { return };
        // holding the lease, nothing else claims: every `sending` row is a stopped process's
        // (or one that lost the lease, whose late outcome `finish` then leaves alone)
        match outbox::recover(&pool, Duration::ZERO).await {
            Ok(r) if r.retried + r.unknown > 0 => warn!(
                retried = r.retried,
                unknown = r.unknown,
                "notifications left mid-send by a stopped process resolved"
            ),
            Ok(_) => {}
            Err(e) => {
                error!(error = %e, "could not resolve notifications left mid-send; retrying");
                lease.release().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(config.poll) => continue,
                }
            }
        }
        let stop = hold(&pool, &config, &channels, &shutdown, &lease).await;
        lease.release().await;
        if stop {
            info!("notification dispatcher stopped");
            return;
        }
    }
}

/// The loop while the lease is held; true when stopped by `shutdown`, false when the lease
/// was lost.
async fn hold(
    pool: &PgPool,
    config: &DispatcherConfig,
    channels: &Channels,
    shutdown: &CancellationToken,
    lease: &Lease,
) -> bool {
    let mut listener = listen(pool).await;
    let mut key: Option<NotifyKey> = None;
    let mut next_sweep = Instant::now();
    let stale_after = channels.send_limit() + config.stale_margin;
    loop {
        // rounds until nothing more is due (a full round suggests more) or the sweep is due
        let mut more = false;
        loop {
            if shutdown.is_cancelled() {
                return true;
            }
            if !lease.is_held() {
                error!(lease = lease.name(), "notification dispatcher lease lost; standing by");
                return false;
            }
            if Instant::now() >= next_sweep {
                break;
            }
            match send::round(pool, config, channels, lease).await {
                Ok(n) if n >= config.concurrency.max(1) => more = true,
                Ok(_) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    error!(error = %e, "notification dispatch failed; retrying");
                    more = false;
                    break;
                }
            }
        }
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + config.sweep_every;
            match outbox::recover(pool, stale_after).await {
                Ok(r) if r.retried + r.unknown > 0 => warn!(
                    retried = r.retried,
                    unknown = r.unknown,
                    "notifications whose outcome was never recorded resolved"
                ),
                Ok(_) => {}
                Err(e) => error!(error = %e, "could not resolve stale notifications; retrying"),
            }
            if key.is_none() {
                key = NotifyKey::load(pool)
                    .await
                    .map_err(|e| error!(error = %e, "no notify key"))
                    .ok();
            }
            if let Some(k) = &key {
                match crate::sweep::sweep(pool, k).await {
                    Ok(r) if r.events > 0 => {
                        info!(events = r.events, outbox = r.outbox, "notify sweep told events")
                    }
                    Ok(_) => {}
                    Err(e) => error!(error = %e, "notify sweep failed; retrying"),
                }
            }
        }
        if more {
            continue;
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        let listener_failed = tokio::select! {
            _ = shutdown.cancelled() => return true,
            _ = lease.lost() => {
                error!(lease = lease.name(), "notification dispatcher lease lost; standing by");
                return false;
            }
            r = woken => match r {
                Ok(()) => false,
                Err(e) => {
                    warn!(error = %e, "outbox listener failed; polling until it is back");
                    true
                }
            },
            _ = tokio::time::sleep(config.poll.min(next_sweep.saturating_duration_since(Instant::now()))) => false,
        };
        if listener_failed {
            listener = None;
        } else if listener.is_none() {
            listener = listen(pool).await;
        }
    }
}

/// Listens on a connection of its own (not one of the workers' pool, which the leases and the
/// writer need), opened with the pool's settings.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut l = match PgListener::connect_with(&own).await {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot listen for new notifications; polling");
            return None;
        }
    };
    match l.listen(OUTBOX_CHANNEL).await {
        Ok(()) => Some(l),
        Err(e) => {
            warn!(error = %e, "cannot listen for new notifications; polling");
            None
        }
    }
}

async fn acquire(
    pool: &PgPool,
    config: &DispatcherConfig,
    shutdown: &CancellationToken,
) -> Option<Lease> {
    let opts = LeaseOptions { check_every: config.lease_check };
    let mut standing_by = false;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = Lease::try_acquire(pool, &config.lease_name, opts) => r,
        };
        match attempt {
            Ok(Some(lease)) => return Some(lease),
            Ok(None) if !standing_by => {
                info!(lease = %config.lease_name, "another process dispatches notifications; standing by");
                standing_by = true;
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "could not try the notification dispatcher lease"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
}
