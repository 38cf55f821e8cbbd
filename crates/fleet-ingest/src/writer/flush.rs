//! One flush: every submission of a batch stored in a single transaction. Positions go through
//! COPY into a session-local staging table and one `INSERT … ON CONFLICT DO NOTHING`, with
//! `device_latest` moved forward in the same transaction; the other kinds are small and use
//! array inserts. Counts are kept per submission so each producer learns what was new.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use fleet_core::notification::{Event, EventKind, Facts};
use fleet_db::changes::ChangeNotice;
use fleet_db::notifications::derive::{self, key_time};
use fleet_db::notifications::events;
use fleet_db::notifications::route::Rules;
use fleet_db::notify::NotifyKey;
use fleet_db::{alarms, devices, feeds, housekeeping, ingest_log, positions};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use super::window::ClosedWindow;
use super::WriteReport;
use crate::{Record, Reject};

/// What every flush of a writer shares: whether unknown IMEIs register, and the key its change
/// notifications are signed with (loaded at the first flush).
#[derive(Debug)]
pub struct Shared {
    register_unknown: bool,
    key: tokio::sync::OnceCell<NotifyKey>,
}

impl Shared {
    pub fn new(register_unknown: bool) -> Self {
        Self { register_unknown, key: tokio::sync::OnceCell::new() }
    }
}

/// How a flush relates to the one running before it, if any.
#[derive(Debug, Default, Clone)]
pub struct Order {
    /// Cancelled once the flush before committed or failed.
    pub after: Option<CancellationToken>,
    /// The batch shares no fix with the one before, registers no device and stores nothing but
    /// fixes and rejects: it may run beside it unless event rules read the latest positions.
    pub independent: bool,
}

impl Order {
    /// Waits for the flush before when this one must see its effects.
    async fn wait_if(&self, needed: bool) {
        if let Some(before) = &self.after {
            if needed || !self.independent {
                before.cancelled().await;
            }
        }
    }
}

/// Stores `jobs` (channel, records) and the closed log `windows`; returns one report per job.
/// One `writer_flush` span per batch (never per record): submissions, rows and log windows.
#[tracing::instrument(
    name = "writer_flush",
    skip_all,
    fields(
        submissions = jobs.len(),
        rows = jobs.iter().map(|(_, r)| r.len()).sum::<usize>(),
        windows = windows.len()
    )
)]
/// `known` are device ids of IMEIs registered before; returns the reports and the ids the flush
/// resolved beyond those (committed with it).
pub async fn flush(
    pool: &PgPool,
    shared: &Shared,
    known: &HashMap<String, i32>,
    jobs: &[(&str, &[Record])],
    windows: &[ClosedWindow],
    order: Order,
) -> Result<(Vec<WriteReport>, HashMap<String, i32>), sqlx::Error> {
    let key = shared.key.get_or_try_init(|| NotifyKey::load(pool)).await?.clone();
    // a flush that waits for the one before takes no connection until then: a transaction open
    // and idle while it waits would hold a pooled connection (and its snapshot) for nothing
    order.wait_if(false).await;
    // the enabled notification rules: one query over a small table per flush, outside the
    // transaction for the same reason; without any, no event is derived or stored
    let rules = Rules::load(&mut *pool.acquire().await?).await?;
    // events derived from the latest positions compare with what the flush before stored
    let reads_latest = rules.wants(EventKind::PowerLost)
        || rules.wants(EventKind::Online)
        || rules.wants(EventKind::Offline);
    order.wait_if(reads_latest).await;
    let mut tx = pool.begin().await?;
    let mut notify: Vec<Event> = Vec::new();
    let (ids, resolved) = resolve_devices(&mut tx, shared, known, jobs).await?;
    let mut reports: Vec<WriteReport> = jobs
        .iter()
        .map(|(_, r)| WriteReport { received: r.len(), ..WriteReport::default() })
        .collect();

    // positions of every job in one COPY; keys remember which job sent each fix first
    let mut staged = positions::StageRows::new();
    let mut first_sender: HashMap<(i32, i64), usize> = HashMap::new();
    let mut backlog = Backlog::default();
    let mut changes = ChangeNotice::default();
    let mut positions_per_job = vec![0usize; jobs.len()];
    for (sub, (_, records)) in jobs.iter().enumerate() {
        for r in records.iter() {
            if let Record::Position(p) = r {
                if let Some(&id) = ids.get(p.imei.as_str()) {
                    staged.push(sub, id, p);
                    first_sender.entry((id, p.gps_time.timestamp_micros())).or_insert(sub);
                    positions_per_job[sub] += 1;
                }
            }
        }
    }
    if !staged.is_empty() {
        positions::stage(&mut tx, staged).await?;
        let inserted = positions::insert_staged(&mut tx).await?;
        for (id, t) in inserted {
            backlog.positions(id, t);
            if let Some(&sub) = first_sender.get(&(id, t.timestamp_micros())) {
                reports[sub].new += 1;
            }
        }
        if rules.wants(EventKind::PowerLost) {
            notify.extend(power_lost(&mut tx).await?);
        }
        changes.latest = positions::advance_latest(&mut tx).await?;
        for (sub, n) in positions_per_job.iter().enumerate() {
            reports[sub].duplicate += n - reports[sub].new;
        }
    }

    for (sub, (channel, records)) in jobs.iter().enumerate() {
        let mut rejects: Vec<Reject> = Vec::new();
        let mut others: Vec<(i32, &Record)> = Vec::new();
        for r in records.iter() {
            match (r, r.imei().and_then(|i| ids.get(i.as_str()))) {
                (Record::Reject(rej), _) => rejects.push(rej.clone()),
                (Record::Position(_), Some(_)) => {}
                (_, Some(&id)) => others.push((id, r)),
                (_, None) => rejects.push(unknown_device(r)),
            }
        }
        let stored =
            store_others(&mut tx, &others, &mut backlog, &mut changes, &mut notify).await?;
        reports[sub].new += stored;
        reports[sub].duplicate += others.len() - stored;
        store_rejects(&mut tx, channel, &rejects).await?;
        reports[sub].rejected += rejects.len();
    }
    backlog.store(&mut tx).await?;
    store_windows(&mut tx, windows).await?;
    if rules.wants(EventKind::Online) || rules.wants(EventKind::Offline) {
        notify.extend(derive::back_online(&mut tx, &changes.latest).await?);
    }
    if !notify.is_empty() {
        let recorded = events::record(&mut tx, &rules, &notify, Utc::now()).await?;
        changes.inbox = recorded.routed.inbox;
    }
    // delivered to listeners only if and when the transaction commits
    changes.notify(&mut tx, &key).await?;
    tx.commit().await?;
    // only now are newly registered devices real
    Ok((reports, resolved))
}

/// External power below this after a fix with at least [`POWER_ON_V`] is a cut supply.
const POWER_OFF_V: f32 = 1.0;
/// A vehicle's supply (12 V or 24 V systems, with margin for a weak battery).
const POWER_ON_V: f32 = 9.0;

/// The notification event of a newly stored alarm.
fn alarm_event(device_id: i32, a: &fleet_core::AlarmEvent) -> Event {
    Event {
        key: format!("alarm:{device_id}:{}:{}", key_time(a.alarm_time), a.alarm_type),
        device_id,
        time: a.alarm_time,
        kind: EventKind::of_alarm(a.class),
        facts: Facts {
            lat: a.location.map(|l| l.lat()),
            lon: a.location.map(|l| l.lon()),
            speed_kmh: a.speed_kmh.map(f64::from),
            alarm_type: Some(a.alarm_type.clone()),
            alarm_name: Some(a.alarm_name.clone()),
            ..Facts::default()
        },
    }
}

/// `power_lost` events of the staged fixes (before the latest positions move).
async fn power_lost(tx: &mut PgConnection) -> Result<Vec<Event>, sqlx::Error> {
    let drops = positions::power_drops(tx, POWER_OFF_V, POWER_ON_V).await?;
    Ok(drops
        .into_iter()
        .map(|(device_id, time, lat, lon, before_v)| Event {
            key: format!("power_lost:{device_id}:{}", key_time(time)),
            device_id,
            time,
            kind: EventKind::PowerLost,
            facts: Facts {
                lat: Some(lat),
                lon: Some(lon),
                external_v: Some(before_v),
                ..Facts::default()
            },
        })
        .collect())
}

fn unknown_device(r: &Record) -> Reject {
    let imei = r.imei().map(|i| i.to_string());
    let raw = match r {
        Record::Position(x) => serde_json::to_string(x),
        Record::Alarm(x) => serde_json::to_string(x),
        Record::Heartbeat(x) => serde_json::to_string(x),
        Record::Event(x) => serde_json::to_string(x),
        Record::Cell(x) => serde_json::to_string(x),
        Record::Sensor(x) => serde_json::to_string(x),
        Record::VendorTrip { trip, .. } => serde_json::to_string(trip),
        Record::Reject(x) => Ok(x.raw.clone()),
    }
    .unwrap_or_default();
    Reject::new(
        format!(
            "unknown IMEI {}: not registered and registration is off",
            imei.as_deref().unwrap_or("?")
        ),
        imei,
        raw,
    )
}

/// Device ids for every IMEI of the batch, registering unknown ones when allowed; also those
/// not among `known`.
async fn resolve_devices<'a>(
    tx: &mut Transaction<'_, Postgres>,
    shared: &Shared,
    known: &'a HashMap<String, i32>,
    jobs: &[(&str, &[Record])],
) -> Result<(Ids<'a>, HashMap<String, i32>), sqlx::Error> {
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for (_, records) in jobs {
        for imei in records.iter().filter_map(Record::imei) {
            if !known.contains_key(imei.as_str()) {
                missing.insert(imei.to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok((Ids { known, resolved: HashMap::new() }, HashMap::new()));
    }
    let missing: Vec<String> = missing.into_iter().collect();
    if shared.register_unknown {
        devices::register_imeis(tx, &missing).await?;
    }
    let resolved: HashMap<String, i32> =
        devices::ids_by_imei(tx, &missing).await?.into_iter().collect();
    Ok((Ids { known, resolved: resolved.clone() }, resolved))
}

/// The device ids a flush sees: those known before it and those it resolved.
struct Ids<'a> {
    known: &'a HashMap<String, i32>,
    resolved: HashMap<String, i32>,
}

impl Ids<'_> {
    fn get(&self, imei: &str) -> Option<&i32> {
        self.known.get(imei).or_else(|| self.resolved.get(imei))
    }
}

/// Inserts the non-position records; returns how many were new.
async fn store_others(
    tx: &mut PgConnection,
    others: &[(i32, &Record)],
    backlog: &mut Backlog,
    changes: &mut ChangeNotice,
    notify: &mut Vec<Event>,
) -> Result<usize, sqlx::Error> {
    let mut new = 0u64;
    for (id, r) in others {
        if let Record::Alarm(a) = r {
            if alarms::store(tx, *id, a).await? {
                new += 1;
                // alarms feed daily KPIs (alarms by class)
                backlog.kpi(*id, a.alarm_time);
                changes.alarms.push((*id, a.alarm_time, a.alarm_type.clone()));
                notify.push(alarm_event(*id, a));
            }
            continue;
        }
        let inserted = match r {
            Record::Heartbeat(h) => feeds::heartbeat(tx, *id, h).await?,
            Record::Event(e) => feeds::event(tx, *id, e).await?,
            Record::Cell(c) => feeds::cell_fix(tx, *id, c).await?,
            Record::Sensor(s) => feeds::sensor_reading(tx, *id, s).await?,
            Record::VendorTrip { trip, pushed } => {
                feeds::vendor_trip(tx, *id, trip, *pushed).await?
            }
            Record::Alarm(_) | Record::Position(_) | Record::Reject(_) => continue,
        };
        new += inserted;
        // the vendor's trips feed daily KPIs (reconciliation)
        match r {
            Record::VendorTrip { trip, .. } if inserted > 0 => backlog.kpi(*id, trip.start_time),
            _ => {}
        }
    }
    Ok(new as usize)
}

async fn store_rejects(
    tx: &mut PgConnection,
    channel: &str,
    rejects: &[Reject],
) -> Result<(), sqlx::Error> {
    if rejects.is_empty() {
        return Ok(());
    }
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    let imeis: Vec<Option<&str>> = rejects.iter().map(|r| r.imei.as_deref()).collect();
    let raws: Vec<&str> = rejects.iter().map(Reject::stored_raw).collect();
    housekeeping::store_rejects(tx, channel, &reasons, &imeis, &raws).await
}

async fn store_windows(tx: &mut PgConnection, windows: &[ClosedWindow]) -> Result<(), sqlx::Error> {
    for w in windows {
        let c = &w.counts;
        let status = if c.rejected > 0 { "partial" } else { "ok" };
        let run = ingest_log::RunLog {
            job: &w.channel,
            started_at: w.started_at,
            finished_at: w.finished_at,
            status,
            rows_in: c.received as i32,
            rows_new: c.new as i32,
            rows_duplicate: c.duplicate as i32,
            rows_rejected: c.rejected as i32,
            error: None,
            detail: Value::from("writer window"),
        };
        ingest_log::record(&mut *tx, &run).await?;
    }
    Ok(())
}

/// Devices whose new data the trip builder must process, marked in the flush's transaction so
/// a mark exists exactly when the data does.
#[derive(Debug, Default)]
struct Backlog {
    /// Earliest new fix per device.
    positions: HashMap<i32, chrono::DateTime<chrono::Utc>>,
    /// Earliest new alarm or vendor trip per device.
    kpi: HashMap<i32, chrono::DateTime<chrono::Utc>>,
}

impl Backlog {
    fn positions(&mut self, id: i32, t: chrono::DateTime<chrono::Utc>) {
        let e = self.positions.entry(id).or_insert(t);
        *e = (*e).min(t);
    }

    fn kpi(&mut self, id: i32, t: chrono::DateTime<chrono::Utc>) {
        let e = self.kpi.entry(id).or_insert(t);
        *e = (*e).min(t);
    }

    async fn store(&self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.positions.is_empty() && self.kpi.is_empty() {
            return Ok(());
        }
        let ids: BTreeSet<i32> = self.positions.keys().chain(self.kpi.keys()).copied().collect();
        let positions: Vec<_> = ids.iter().map(|id| self.positions.get(id).copied()).collect();
        let kpi: Vec<_> = ids.iter().map(|id| self.kpi.get(id).copied()).collect();
        let ids: Vec<i32> = ids.into_iter().collect();
        // devices in id order, so concurrent flushes lock backlog rows in one order
        fleet_db::analytics::mark_new_data(tx, &ids, &positions, &kpi).await
    }
}

/// Channel on which every flush that moved a device's latest position or stored new alarms
/// notifies (`pg_notify` inside the flush's transaction, so only committed changes are told).
pub const CHANGES_CHANNEL: &str = fleet_db::changes::CHANGES_CHANNEL;
