//! The one listener task per process: turns the ingest writer's signed `fleet_changes`
//! notifications into the hub's events, sweeps for devices gone offline, and re-checks the open
//! streams' credentials when `fleet_auth` says one may have ended (and every `recheck_every`).
//!
//! It reads through a pool of its own ([`LISTENER_CONNECTIONS`]: the LISTEN connection and one
//! for its queries), so a busy API pool delays nothing here, and a failed read is retried
//! rather than dropping the LISTEN (which would send `reset` and make every client reload).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_db::changes::ChangeNotice;
use fleet_db::live::LatestFix;
use fleet_db::notify::{NotifyKey, AUTH_CHANNEL};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::replay::{RefusalLog, ReplayGuard};
use super::{
    AlarmStreamEvent, PositionEvent, ResetEvent, Scope, StatusEvent, StreamHub, CHANGES_CHANNEL,
    OFFLINE_SWEEP,
};

/// Connections the listener opens: the one that LISTENs and one for its queries.
pub const LISTENER_CONNECTIONS: u32 = 2;

/// First wait before a failed read is tried again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Starts the listener task; it runs until `shutdown` is cancelled, then ends the open streams.
/// `api` gives the connection options; the listener opens its own connections with them.
pub fn spawn_listener(
    api: PgPool,
    hub: Arc<StreamHub>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    // PgListener keeps the connection it takes from a pool; the queries get the other one
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(LISTENER_CONNECTIONS)
        .acquire_timeout(api.options().get_acquire_timeout())
        .connect_lazy_with((*api.connect_options()).clone());
    tokio::spawn(async move {
        let closer = hub.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            closer.close();
        });
        let mut first = true;
        let mut remembered = (ReplayGuard::default(), RefusalLog::default());
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let outcome = listen(&pool, &hub, &shutdown, first, &mut remembered).await;
            hub.listening.store(false, Ordering::Release);
            match outcome {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream listener failed; reconnecting");
                    first = false;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}

/// What the listener remembers of a device.
struct Known {
    status: String,
}

/// How often the listener notes whether a client is connected (for the resume grace).
const WATCHERS_CHECK: Duration = Duration::from_secs(1);

/// How long the listener gathers notifications before reading the changed rows.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(200);

/// What decides whether a notification is believed (the memory of seen signatures outlives a
/// reconnect, so a replay cannot slip in right after one).
struct Gate<'a> {
    key: NotifyKey,
    seen: &'a mut ReplayGuard,
    refusals: &'a mut RefusalLog,
}

impl Gate<'_> {
    /// Adds one notification's changes to `batch` (alarms are distinct by key; devices are
    /// deduplicated once the batch is complete).
    fn admit(&mut self, batch: &mut ChangeNotice, signed: &str) {
        // any role may notify any channel: only fresh, unseen payloads signed by fleetd count
        let Some(verified) = self.key.verify(CHANGES_CHANNEL, signed) else {
            self.refusals.refused(super::replay::Refused::Unsigned, signed.len());
            return;
        };
        if let Err(why) = self.seen.admit(&verified, Utc::now().timestamp_millis()) {
            self.refusals.refused(why, signed.len());
            return;
        }
        match ChangeNotice::parse(verified.payload) {
            Ok(more) => batch.merge(more),
            Err(e) => tracing::warn!(error = %e, "unreadable fleet_changes payload"),
        }
    }
}

async fn listen(
    pool: &PgPool,
    hub: &StreamHub,
    shutdown: &CancellationToken,
    first: bool,
    remembered: &mut (ReplayGuard, RefusalLog),
) -> Result<(), sqlx::Error> {
    let key = NotifyKey::load(pool).await?;
    let mut gate = Gate { key, seen: &mut remembered.0, refusals: &mut remembered.1 };
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANGES_CHANNEL, AUTH_CHANNEL]).await?;
    // listening first, then the snapshot: a change between the two is seen twice, not never
    let mut known = known_of(fleet_db::live::latest_all(pool).await?);
    if !first {
        hub.publish(
            "reset",
            Scope::default(),
            &ResetEvent { reason: "the server lost changes while reconnecting".to_owned() },
        );
    }
    hub.listening.store(true, Ordering::Release);
    let mut sweep = tokio::time::interval(OFFLINE_SWEEP);
    sweep.tick().await;
    let streams = hub.open.clone();
    // streams opened while the listener was away are checked now
    streams.revalidate(pool).await?;
    let mut recheck = tokio::time::interval(streams.limits().recheck_every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    recheck.tick().await;
    // while nobody watches (nor did within the resume grace), changes are skipped: `known` then
    // lags behind and is read again, silently, before changes become events again
    let mut stale = false;
    let mut watchers = tokio::time::interval(WATCHERS_CHECK);
    watchers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = watchers.tick() => {
                // when a long-open stream ends is known to this second, for the resume grace
                hub.note_watchers();
            }
            _ = recheck.tick() => {
                if !revalidate(pool, &streams, shutdown).await {
                    return Ok(());
                }
            }
            _ = sweep.tick() => {
                if hub.gap_if_unwatched() {
                    stale = true;
                    continue;
                }
                // a failed sweep is simply done again at the next tick
                match fleet_db::live::latest_all(pool).await {
                    Ok(rows) if stale => {
                        known = known_of(rows);
                        stale = false;
                    }
                    Ok(rows) => {
                        for r in rows {
                            status_change(hub, &mut known, &r);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "live stream offline sweep failed"),
                }
            }
            n = listener.try_recv() => {
                let Some(n) = n? else {
                    // the connection dropped; try_recv reconnects at the next call
                    hub.publish(
                        "reset",
                        Scope::default(),
                        &ResetEvent { reason: "the server lost changes while reconnecting".to_owned() },
                    );
                    continue;
                };
                // The writer notifies once per flush, up to hundreds of times a second under
                // load: gather what arrives within a short window and read the rows once, so
                // the listener's queries stay a few per second whatever the ingest rate.
                let mut batch = ChangeNotice::default();
                let mut auth = false;
                let mut take = |n: &sqlx::postgres::PgNotification, batch: &mut ChangeNotice| {
                    if n.channel() == AUTH_CHANNEL {
                        auth = true;
                    } else {
                        gate.admit(batch, n.payload());
                    }
                };
                take(&n, &mut batch);
                // keep reading through the window: the buffer holds only what one read brought,
                // and a flood of forged notifications must not queue the real ones behind it
                let window = tokio::time::Instant::now() + COALESCE;
                while let Ok(n) = tokio::time::timeout_at(window, listener.try_recv()).await {
                    match n? {
                        Some(n) => take(&n, &mut batch),
                        None => {
                            hub.publish(
                                "reset",
                                Scope::default(),
                                &ResetEvent { reason: "the server lost changes while reconnecting".to_owned() },
                            );
                            break;
                        }
                    }
                }
                while let Some(n) = listener.next_buffered() {
                    take(&n, &mut batch);
                }
                if auth && !revalidate(pool, &streams, shutdown).await {
                    return Ok(());
                }
                batch.latest.sort_unstable();
                batch.latest.dedup();
                if batch.is_empty() {
                    continue;
                }
                // nobody to tell: no rows are read (at fleet scale these reads cost PostgreSQL
                // a good part of a core while the writer is busy)
                if hub.gap_if_unwatched() {
                    stale = true;
                    continue;
                }
                // the LISTEN is fine: retry the read rather than start over (which would send
                // every client `reset` and have each reload the whole fleet)
                let mut wait = RETRY_FIRST;
                while let Err(e) = changed(pool, hub, &mut known, &mut stale, &batch).await {
                    tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "live stream read failed; retrying");
                    if !pause(shutdown, &mut wait).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Re-checks the open streams' credentials until it succeeds; `false` on shutdown.
async fn revalidate(
    pool: &PgPool,
    streams: &super::access::OpenStreams,
    shutdown: &CancellationToken,
) -> bool {
    let mut wait = RETRY_FIRST;
    while let Err(e) = streams.revalidate(pool).await {
        tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "live stream credential re-check failed; retrying");
        if !pause(shutdown, &mut wait).await {
            return false;
        }
    }
    true
}

/// Waits `wait` (then doubles it up to [`RETRY_MAX`]); `false` when shut down meanwhile.
async fn pause(shutdown: &CancellationToken, wait: &mut Duration) -> bool {
    let this = *wait;
    *wait = (this * 2).min(RETRY_MAX);
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(this) => true,
    }
}

fn scope_of(device_id: i32, cost_centre: &Option<String>, city: &Option<String>) -> Scope {
    Scope {
        device_id: Some(device_id),
        cost_centre: cost_centre.clone(),
        city: city.clone(),
        user_id: None,
    }
}

/// The status of every vehicle in `rows`, as the listener knows it.
fn known_of(rows: Vec<LatestFix>) -> HashMap<i32, Known> {
    rows.into_iter().map(|r| (r.device_id, Known { status: r.status })).collect()
}

/// Sends a `status` event when the row's status differs from the one known.
fn status_change(hub: &StreamHub, known: &mut HashMap<i32, Known>, r: &LatestFix) {
    let previous = known.get(&r.device_id).map(|k| k.status.clone());
    if previous.as_deref() == Some(r.status.as_str()) {
        return;
    }
    hub.publish(
        "status",
        scope_of(r.device_id, &r.cost_centre, &r.city),
        &StatusEvent {
            device_id: r.device_id,
            imei: r.imei.clone(),
            status: r.status.clone(),
            previous,
            since: r.state_since,
        },
    );
    known.insert(r.device_id, Known { status: r.status.clone() });
}

async fn changed(
    pool: &PgPool,
    hub: &StreamHub,
    known: &mut HashMap<i32, Known>,
    stale: &mut bool,
    p: &ChangeNotice,
) -> Result<(), sqlx::Error> {
    if *stale {
        // statuses that changed while changes were skipped are not news to a client that
        // connected since (it loaded the fleet's state); what this batch's devices were before
        // it is not known any more, so their status goes out again, without a previous one
        *known = known_of(fleet_db::live::latest_all(pool).await?);
        for id in &p.latest {
            known.remove(id);
        }
        *stale = false;
    }
    if !p.latest.is_empty() {
        let rows = fleet_db::live::latest_of(pool, &p.latest).await?;
        for r in &rows {
            hub.publish(
                "position",
                scope_of(r.device_id, &r.cost_centre, &r.city),
                &PositionEvent {
                    device_id: r.device_id,
                    imei: r.imei.clone(),
                    lat: r.lat,
                    lon: r.lon,
                    speed_kmh: r.speed_kmh,
                    course_deg: r.course_deg,
                    ignition: r.ignition,
                    gps_time: r.gps_time,
                    status: r.status.clone(),
                },
            );
            status_change(hub, known, r);
        }
    }
    if !p.alarms.is_empty() {
        let rows = fleet_db::live::alarms_by_key(pool, &p.alarms).await?;
        for r in rows {
            hub.publish(
                "alarm",
                scope_of(r.device_id, &r.cost_centre, &r.city),
                &AlarmStreamEvent {
                    device_id: r.device_id,
                    imei: r.imei,
                    alarm_time: r.alarm_time,
                    type_: r.alarm_type,
                    class: r.alarm_class,
                    name: r.alarm_name,
                    lat: r.lat,
                    lon: r.lon,
                },
            );
        }
    }
    if !p.inbox.is_empty() {
        let mut conn = pool.acquire().await?;
        let rows = fleet_db::notifications::inbox::by_ids(&mut conn, &p.inbox).await?;
        for r in rows {
            let scope = Scope { user_id: Some(r.user_id), ..Scope::default() };
            hub.publish("notification", scope, &crate::api::notifications::Notification::from(r));
        }
    }
    Ok(())
}
