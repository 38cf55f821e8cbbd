//! One flush: every submission of a batch stored in a single transaction. Positions go through
//! COPY into a session-local staging table and one `INSERT … ON CONFLICT DO NOTHING`, with
//! `device_latest` moved forward in the same transaction; the other kinds are small and use
//! array inserts. Counts are kept per submission so each producer learns what was new.

use std::collections::{BTreeSet, HashMap};

use fleet_core::{AlarmEvent, PositionSource};
use fleet_db::notify::NotifyKey;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::copy::{position_row, STAGE_COLUMNS};
use super::window::ClosedWindow;
use super::WriteReport;
use crate::{Record, Reject};

/// What the writer remembers between flushes: device ids of IMEIs already resolved, and the
/// key its change notifications are signed with (loaded at the first flush).
#[derive(Debug)]
pub struct FlushState {
    register_unknown: bool,
    ids: HashMap<String, i32>,
    key: Option<NotifyKey>,
}

impl FlushState {
    pub fn new(register_unknown: bool) -> Self {
        Self { register_unknown, ids: HashMap::new(), key: None }
    }
}

const STAGE_TABLE: &str = "create temp table if not exists fleetd_stage_positions (
    sub int, device_id int, gps_time timestamptz, lat float8, lon float8, speed_kmh real,
    course_deg real, altitude_m real, ignition bool, satellites int2, fix_kind text,
    battery_pct real, external_v real, odometer_m float8, source text, extra jsonb
) on commit delete rows";

const INSERT_POSITIONS: &str = "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh,
        course_deg, altitude_m, ignition, satellites, fix_kind, battery_pct, external_v, odometer_m,
        source, extra)
    select distinct on (device_id, gps_time) device_id, gps_time, lat, lon, speed_kmh, course_deg,
        altitude_m, ignition, satellites, fix_kind, battery_pct, external_v, odometer_m, source, extra
    from fleetd_stage_positions
    order by device_id, gps_time, sub
    on conflict do nothing
    returning device_id, gps_time";

/// The newest staged fix of each device becomes its latest position if it is newer than the one
/// stored; the motion state's start moves only when the state changes.
const UPDATE_LATEST: &str =
    "insert into fleet.device_latest (device_id, gps_time, received_at, lat,
        lon, speed_kmh, course_deg, ignition, fix_kind, battery_pct, external_v, odometer_m, source,
        motion_state, state_since)
    select distinct on (s.device_id) s.device_id, s.gps_time, now(), s.lat, s.lon, s.speed_kmh,
        s.course_deg, s.ignition, s.fix_kind, s.battery_pct, s.external_v, s.odometer_m, s.source,
        case when coalesce(s.speed_kmh, 0) >= g.moving_speed_kmh then 'moving'
             when s.ignition then 'idling' else 'parked' end,
        s.gps_time
    from fleetd_stage_positions s
    cross join (select moving_speed_kmh from fleet.analytics_config where scope = 'global') g
    order by s.device_id, s.gps_time desc
    on conflict (device_id) do update set
        gps_time = excluded.gps_time, received_at = excluded.received_at, lat = excluded.lat,
        lon = excluded.lon, speed_kmh = excluded.speed_kmh, course_deg = excluded.course_deg,
        ignition = excluded.ignition, fix_kind = excluded.fix_kind,
        battery_pct = excluded.battery_pct, external_v = excluded.external_v,
        odometer_m = excluded.odometer_m, source = excluded.source,
        state_since = case when fleet.device_latest.motion_state = excluded.motion_state
                           then fleet.device_latest.state_since else excluded.gps_time end,
        motion_state = excluded.motion_state, updated_at = now()
    where excluded.gps_time > fleet.device_latest.gps_time
    returning device_id";

/// Stores `jobs` (channel, records) and the closed log `windows`; returns one report per job.
pub async fn flush(
    pool: &PgPool,
    state: &mut FlushState,
    jobs: &[(&str, &[Record])],
    windows: &[ClosedWindow],
) -> Result<Vec<WriteReport>, sqlx::Error> {
    let key = match &state.key {
        Some(k) => k.clone(),
        None => {
            let k = NotifyKey::load(pool).await?;
            state.key = Some(k.clone());
            k
        }
    };
    let mut tx = pool.begin().await?;
    let ids = resolve_devices(&mut tx, state, jobs).await?;
    let mut reports: Vec<WriteReport> = jobs
        .iter()
        .map(|(_, r)| WriteReport { received: r.len(), ..WriteReport::default() })
        .collect();

    // positions of every job in one COPY; keys remember which job sent each fix first
    let mut copy_buf = String::new();
    let mut first_sender: HashMap<(i32, i64), usize> = HashMap::new();
    let mut backlog = Backlog::default();
    let mut changes = Changes::default();
    let mut positions_per_job = vec![0usize; jobs.len()];
    for (sub, (_, records)) in jobs.iter().enumerate() {
        for r in records.iter() {
            if let Record::Position(p) = r {
                if let Some(&id) = ids.get(p.imei.as_str()) {
                    position_row(&mut copy_buf, sub, id, p);
                    first_sender.entry((id, p.gps_time.timestamp_micros())).or_insert(sub);
                    positions_per_job[sub] += 1;
                }
            }
        }
    }
    if !copy_buf.is_empty() {
        sqlx::query(STAGE_TABLE).execute(&mut *tx).await?;
        let mut copy = tx
            .copy_in_raw(&format!("copy fleetd_stage_positions ({STAGE_COLUMNS}) from stdin"))
            .await?;
        copy.send(copy_buf.into_bytes()).await?;
        copy.finish().await?;
        let inserted: Vec<(i32, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as(INSERT_POSITIONS).fetch_all(&mut *tx).await?;
        for (id, t) in inserted {
            backlog.positions(id, t);
            if let Some(&sub) = first_sender.get(&(id, t.timestamp_micros())) {
                reports[sub].new += 1;
            }
        }
        changes.latest = sqlx::query_scalar(UPDATE_LATEST).fetch_all(&mut *tx).await?;
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
        let stored = store_others(&mut tx, &others, &mut backlog, &mut changes).await?;
        reports[sub].new += stored;
        reports[sub].duplicate += others.len() - stored;
        store_rejects(&mut tx, channel, &rejects).await?;
        reports[sub].rejected += rejects.len();
    }
    backlog.store(&mut tx).await?;
    store_windows(&mut tx, windows).await?;
    // delivered to listeners only if and when the transaction commits
    changes.notify(&mut tx, &key).await?;
    tx.commit().await?;
    // only now are newly registered devices real
    state.ids.extend(ids);
    Ok(reports)
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

/// Device ids for every IMEI of the batch, registering unknown ones when allowed.
async fn resolve_devices(
    tx: &mut Transaction<'_, Postgres>,
    state: &FlushState,
    jobs: &[(&str, &[Record])],
) -> Result<HashMap<String, i32>, sqlx::Error> {
    let mut ids: HashMap<String, i32> = HashMap::new();
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for (_, records) in jobs {
        for imei in records.iter().filter_map(Record::imei) {
            match state.ids.get(imei.as_str()) {
                Some(&id) => {
                    ids.insert(imei.to_string(), id);
                }
                None => {
                    missing.insert(imei.to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(ids);
    }
    let missing: Vec<String> = missing.into_iter().collect();
    if state.register_unknown {
        sqlx::query(
            "insert into fleet.devices (imei, name) select i, i from unnest($1::text[]) i
             on conflict (imei) do nothing",
        )
        .bind(&missing)
        .execute(&mut **tx)
        .await?;
    }
    let found: Vec<(String, i32)> =
        sqlx::query_as("select imei, device_id from fleet.devices where imei = any($1)")
            .bind(&missing)
            .fetch_all(&mut **tx)
            .await?;
    ids.extend(found);
    Ok(ids)
}

fn alarm_source(a: &AlarmEvent) -> &'static str {
    match a.source {
        PositionSource::Push => "push",
        PositionSource::Gt06 => "gt06",
        PositionSource::Poll | PositionSource::Track => "poll",
    }
}

/// Inserts the non-position records; returns how many were new.
async fn store_others(
    tx: &mut PgConnection,
    others: &[(i32, &Record)],
    backlog: &mut Backlog,
    changes: &mut Changes,
) -> Result<usize, sqlx::Error> {
    let mut new = 0u64;
    for (id, r) in others {
        let q = match r {
            Record::Alarm(a) => sqlx::query(
                "insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_name, alarm_class,
                     lat, lon, speed_kmh, source, extra)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing",
            )
            .bind(id)
            .bind(a.alarm_time)
            .bind(&a.alarm_type)
            .bind(&a.alarm_name)
            .bind(a.class.as_str())
            .bind(a.location.map(|l| l.lat()))
            .bind(a.location.map(|l| l.lon()))
            .bind(a.speed_kmh)
            .bind(alarm_source(a))
            .bind(&a.extra),
            Record::Heartbeat(h) => sqlx::query(
                "insert into fleet.heartbeats (device_id, gate_time, power_level, gsm_signal, ignition, extra)
                 values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
            )
            .bind(id)
            .bind(h.gate_time)
            .bind(h.power_level)
            .bind(h.gsm_signal)
            .bind(h.ignition)
            .bind(&h.extra),
            Record::Event(e) => sqlx::query(
                "insert into fleet.device_events (device_id, event_time, event_type, timezone, extra)
                 values ($1, $2, $3, $4, $5) on conflict do nothing",
            )
            .bind(id)
            .bind(e.time)
            .bind(e.kind.as_str())
            .bind(&e.timezone)
            .bind(&e.extra),
            Record::Cell(c) => sqlx::query(
                "insert into fleet.cell_fixes (device_id, gate_time, fix_kind, cells, extra)
                 values ($1, $2, $3, $4, $5) on conflict do nothing",
            )
            .bind(id)
            .bind(c.gate_time)
            .bind(&c.fix_kind)
            .bind(&c.cells)
            .bind(&c.extra),
            Record::Sensor(s) => sqlx::query(
                "insert into fleet.sensor_readings (device_id, reading_time, kind, item)
                 values ($1, $2, $3, $4) on conflict do nothing",
            )
            .bind(id)
            .bind(s.time)
            .bind(s.kind.as_str())
            .bind(&s.item),
            Record::VendorTrip { trip: t, pushed } => sqlx::query(
                "insert into fleet.vendor_trips (device_id, start_time, end_time, start_lat, start_lon,
                     end_lat, end_lon, distance_m, duration_s, avg_speed_kmh, max_speed_kmh, source, extra)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) on conflict do nothing",
            )
            .bind(id)
            .bind(t.start_time)
            .bind(t.end_time)
            .bind(t.start.map(|l| l.lat()))
            .bind(t.start.map(|l| l.lon()))
            .bind(t.end.map(|l| l.lat()))
            .bind(t.end.map(|l| l.lon()))
            .bind(t.distance_m)
            .bind(t.duration_s.and_then(|d| i32::try_from(d).ok()))
            .bind(t.avg_speed_kmh)
            .bind(t.max_speed_kmh)
            .bind(if *pushed { "push" } else { "poll" })
            .bind(&t.extra),
            Record::Position(_) | Record::Reject(_) => continue,
        };
        let inserted = q.execute(&mut *tx).await?.rows_affected();
        new += inserted;
        // alarms and the vendor's trips feed daily KPIs (alarms by class, reconciliation)
        match r {
            Record::Alarm(a) if inserted > 0 => {
                backlog.kpi(*id, a.alarm_time);
                changes.alarms.push((*id, a.alarm_time, a.alarm_type.clone()));
            }
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
    sqlx::query(
        "insert into fleet.ingest_rejects (channel, reason, imei, raw)
         select $1, r, i, w from unnest($2::text[], $3::text[], $4::text[]) as t(r, i, w)",
    )
    .bind(channel)
    .bind(&reasons)
    .bind(&imeis)
    .bind(&raws)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn store_windows(tx: &mut PgConnection, windows: &[ClosedWindow]) -> Result<(), sqlx::Error> {
    for w in windows {
        let c = &w.counts;
        let status = if c.rejected > 0 { "partial" } else { "ok" };
        sqlx::query(
            "insert into fleet.ingestion_log (job, started_at, finished_at, status, rows_in, rows_new,
                 rows_duplicate, rows_rejected, detail)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&w.channel)
        .bind(w.started_at)
        .bind(w.finished_at)
        .bind(status)
        .bind(c.received as i32)
        .bind(c.new as i32)
        .bind(c.duplicate as i32)
        .bind(c.rejected as i32)
        .bind(Value::from("writer window"))
        .execute(&mut *tx)
        .await?;
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
pub const CHANGES_CHANNEL: &str = fleet_db::notify::CHANGES_CHANNEL;

/// NOTIFY payloads must stay below 8000 bytes, signature included; changes are split into
/// payloads of at most this before they are signed.
const MAX_PAYLOAD: usize = 7_000;
const _: () = assert!(MAX_PAYLOAD + fleet_db::notify::SIGNATURE_LEN < 8_000);

/// What a flush changed, told to listeners as compact JSON payloads:
/// `{"p":[device ids whose device_latest moved],"a":[[device_id,"alarm_time","alarm_type"],…]}`.
/// A listener reads the rows themselves; the payload only says which.
#[derive(Debug, Default)]
struct Changes {
    latest: Vec<i32>,
    alarms: Vec<(i32, chrono::DateTime<chrono::Utc>, String)>,
}

impl Changes {
    fn payloads(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut latest: Vec<String> = Vec::new();
        let mut alarms: Vec<String> = Vec::new();
        let mut size = 0usize;
        let emit = |latest: &mut Vec<String>, alarms: &mut Vec<String>, out: &mut Vec<String>| {
            if !latest.is_empty() || !alarms.is_empty() {
                out.push(format!("{{\"p\":[{}],\"a\":[{}]}}", latest.join(","), alarms.join(",")));
            }
            latest.clear();
            alarms.clear();
        };
        for id in &self.latest {
            let item = id.to_string();
            if size + item.len() + 1 > MAX_PAYLOAD {
                emit(&mut latest, &mut alarms, &mut out);
                size = 0;
            }
            size += item.len() + 1;
            latest.push(item);
        }
        for (id, time, kind) in &self.alarms {
            let item = serde_json::json!([id, time, kind]).to_string();
            if item.len() > MAX_PAYLOAD {
                tracing::warn!(device_id = id, "alarm type too long to announce; not streamed");
                continue;
            }
            if size + item.len() + 1 > MAX_PAYLOAD {
                emit(&mut latest, &mut alarms, &mut out);
                size = 0;
            }
            size += item.len() + 1;
            alarms.push(item);
        }
        emit(&mut latest, &mut alarms, &mut out);
        out
    }

    async fn notify(&self, tx: &mut PgConnection, key: &NotifyKey) -> Result<(), sqlx::Error> {
        let payloads: Vec<String> =
            self.payloads().iter().map(|p| key.sign(CHANGES_CHANNEL, p)).collect();
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query("select pg_notify($1, p) from unnest($2::text[]) p")
            .bind(CHANGES_CHANNEL)
            .bind(&payloads)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_change_payloads_stay_under_the_notify_limit_and_keep_every_change() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let changes = Changes {
            latest: (1..=5_000).collect(),
            alarms: (1..=300).map(|i| (i, t, format!("type-{i}"))).collect(),
        };
        let payloads = changes.payloads();
        assert!(payloads.len() > 1);
        let key = NotifyKey::from_bytes([3; 32]);
        let (mut ids, mut alarms) = (0, 0);
        for p in &payloads {
            let signed = key.sign(CHANGES_CHANNEL, p);
            assert!(signed.len() < 8_000, "{}", signed.len());
            let p = key.verify(CHANGES_CHANNEL, &signed).expect("verifies").payload;
            let v: serde_json::Value = serde_json::from_str(p).expect("json");
            ids += v["p"].as_array().expect("p").len();
            alarms += v["a"].as_array().expect("a").len();
        }
        assert_eq!((ids, alarms), (5_000, 300));
        assert!(Changes::default().payloads().is_empty());
    }
}
