//! The one listener task per process: turns the ingest writer's signed `fleet_changes`
//! notifications into the hub's events, sweeps for devices gone offline, and re-checks the open
//! streams' credentials when `fleet_auth` says one may have ended (and every `recheck_every`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_db::notify::{NotifyKey, AUTH_CHANNEL};
use serde::Deserialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    AlarmStreamEvent, PositionEvent, ResetEvent, Scope, StatusEvent, StreamHub, CHANGES_CHANNEL,
    OFFLINE_SWEEP,
};

/// Starts the listener task; it runs until `shutdown` is cancelled, then ends the open streams.
pub fn spawn_listener(
    pool: PgPool,
    hub: Arc<StreamHub>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let closer = hub.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            closer.close();
        });
        let mut first = true;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let outcome = listen(&pool, &hub, &shutdown, first).await;
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

#[derive(Debug, Default, Deserialize)]
struct Payload {
    #[serde(default)]
    p: Vec<i32>,
    #[serde(default)]
    a: Vec<(i32, DateTime<Utc>, String)>,
}

/// How long the listener gathers notifications before reading the changed rows.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(200);

impl Payload {
    /// Adds one notification's changes (alarms are distinct by key; devices are deduplicated
    /// once the batch is complete).
    fn merge(&mut self, key: &NotifyKey, signed: &str) {
        let Some(payload) = key.verify(CHANGES_CHANNEL, signed) else {
            // not from a fleetd session: any role may notify any channel
            metrics::counter!("fleetd_stream_notifications_rejected_total").increment(1);
            tracing::warn!(
                payload.bytes = signed.len(),
                "ignoring a fleet_changes notification without a valid signature"
            );
            return;
        };
        match serde_json::from_str::<Payload>(payload) {
            Ok(more) => {
                self.p.extend(more.p);
                self.a.extend(more.a);
            }
            Err(e) => tracing::warn!(error = %e, "unreadable fleet_changes payload"),
        }
    }
}

#[derive(sqlx::FromRow)]
struct LatestRow {
    device_id: i32,
    imei: String,
    cost_centre: Option<String>,
    city: Option<String>,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f32>,
    course_deg: Option<f32>,
    ignition: Option<bool>,
    gps_time: DateTime<Utc>,
    status: String,
    state_since: DateTime<Utc>,
}

/// The latest rows of active devices, with their status, and `$filter` appended.
macro_rules! latest {
    ($filter:literal) => {
        concat!(
            "select d.device_id, d.imei, d.cost_centre, d.city, l.lat, l.lon, l.speed_kmh,
        l.course_deg, l.ignition, l.gps_time,
        case when now() - l.gps_time > make_interval(secs => g.offline_after_s)
             then 'offline' else l.motion_state end as status,
        l.state_since
    from fleet.device_latest l
    join fleet.devices d using (device_id)
    cross join (select offline_after_s from fleet.analytics_config where scope = 'global') g
    where d.active",
            $filter
        )
    };
}

/// Every active device's latest row and status.
const LATEST: &str = latest!("");
/// The latest rows of the devices in `$1` (two statements, so each keeps a fitting plan).
const LATEST_OF: &str = latest!(" and l.device_id = any($1)");

#[derive(sqlx::FromRow)]
struct AlarmRow {
    device_id: i32,
    imei: String,
    cost_centre: Option<String>,
    city: Option<String>,
    alarm_time: DateTime<Utc>,
    alarm_type: String,
    alarm_class: String,
    alarm_name: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

async fn listen(
    pool: &PgPool,
    hub: &StreamHub,
    shutdown: &CancellationToken,
    first: bool,
) -> Result<(), sqlx::Error> {
    let key = NotifyKey::load(pool).await?;
    // PgListener keeps the connection it takes from a pool: a pool of its own (one connection
    // with the same options) keeps it out of the API's budget
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen_all([CHANGES_CHANNEL, AUTH_CHANNEL]).await?;
    // listening first, then the snapshot: a change between the two is seen twice, not never
    let mut known: HashMap<i32, Known> = HashMap::new();
    for r in sqlx::query_as::<_, LatestRow>(LATEST).fetch_all(pool).await? {
        known.insert(r.device_id, Known { status: r.status });
    }
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = recheck.tick() => {
                streams.revalidate(pool).await?;
            }
            _ = sweep.tick() => {
                let rows: Vec<LatestRow> = sqlx::query_as(LATEST).fetch_all(pool).await?;
                for r in rows {
                    status_change(hub, &mut known, &r);
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
                let mut batch = Payload::default();
                let mut auth = false;
                let mut take = |n: &sqlx::postgres::PgNotification, batch: &mut Payload| {
                    if n.channel() == AUTH_CHANNEL {
                        auth = true;
                    } else {
                        batch.merge(&key, n.payload());
                    }
                };
                take(&n, &mut batch);
                tokio::time::sleep(COALESCE).await;
                while let Some(n) = listener.next_buffered() {
                    take(&n, &mut batch);
                }
                if auth {
                    streams.revalidate(pool).await?;
                }
                batch.p.sort_unstable();
                batch.p.dedup();
                if !batch.p.is_empty() || !batch.a.is_empty() {
                    changed(pool, hub, &mut known, batch).await?;
                }
            }
        }
    }
}

fn scope_of(device_id: i32, cost_centre: &Option<String>, city: &Option<String>) -> Scope {
    Scope { device_id: Some(device_id), cost_centre: cost_centre.clone(), city: city.clone() }
}

/// Sends a `status` event when the row's status differs from the one known.
fn status_change(hub: &StreamHub, known: &mut HashMap<i32, Known>, r: &LatestRow) {
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
    p: Payload,
) -> Result<(), sqlx::Error> {
    if !p.p.is_empty() {
        let rows: Vec<LatestRow> = sqlx::query_as(LATEST_OF).bind(&p.p).fetch_all(pool).await?;
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
    if !p.a.is_empty() {
        let ids: Vec<i32> = p.a.iter().map(|a| a.0).collect();
        let times: Vec<DateTime<Utc>> = p.a.iter().map(|a| a.1).collect();
        let types: Vec<&str> = p.a.iter().map(|a| a.2.as_str()).collect();
        let rows: Vec<AlarmRow> = sqlx::query_as(
            "select a.device_id, d.imei, d.cost_centre, d.city, a.alarm_time, a.alarm_type,
                    a.alarm_class, a.alarm_name, a.lat, a.lon
             from unnest($1::int[], $2::timestamptz[], $3::text[]) k(device_id, alarm_time, alarm_type)
             join fleet.alarms a using (device_id, alarm_time, alarm_type)
             join fleet.devices d on d.device_id = a.device_id
             order by a.alarm_time, a.device_id",
        )
        .bind(&ids)
        .bind(&times)
        .bind(&types)
        .fetch_all(pool)
        .await?;
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
    Ok(())
}
