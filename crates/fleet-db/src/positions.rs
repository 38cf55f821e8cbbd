//! Storing fixes: how the ingest writer puts a batch of positions into `fleet.positions` and
//! moves `fleet.device_latest` forward, inside its flush's transaction. The batch goes through
//! COPY into a session-local staging table ([`stage`]), then one `INSERT … ON CONFLICT DO
//! NOTHING` ([`insert_staged`]) and one upsert of the newest fix per device
//! ([`advance_latest`]).
//!
//! These statements read the staging table, which exists only in the writer's session, so the
//! query macros cannot check them against the schema: they stay runtime queries, exercised by
//! every writer test.

mod copy;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub use copy::{StageRows, STAGE_COLUMNS};

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

/// Creates the session's staging table (once; emptied at each commit) and copies `rows` into
/// it.
pub async fn stage(conn: &mut PgConnection, rows: StageRows) -> Result<(), sqlx::Error> {
    sqlx::query(STAGE_TABLE).execute(&mut *conn).await?;
    let mut copy = conn
        .copy_in_raw(&format!(
            "copy fleetd_stage_positions ({STAGE_COLUMNS}) from stdin (format binary)"
        ))
        .await?;
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// Inserts the staged fixes not stored before (of a fix staged twice, the first submission's);
/// returns the (device, GPS time) of each new one.
pub async fn insert_staged(
    conn: &mut PgConnection,
) -> Result<Vec<(i32, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(INSERT_POSITIONS).fetch_all(&mut *conn).await
}

/// Staged fixes newer than the device's latest position (read before [`advance_latest`]) whose
/// external power fell below `low_v` right after a fix at or above `high_v` (the previous
/// staged fix with a voltage, or the stored latest position for the first): the supply was cut.
/// Fixes without a voltage are passed over.
const POWER_DROPS: &str = "select device_id, gps_time, lat, lon, prev_v::float8 from (
        select s.device_id, s.gps_time, s.lat, s.lon, s.external_v,
               case when row_number() over w = 1 then l.external_v
                    else lag(s.external_v) over w end as prev_v
        from (select distinct on (device_id, gps_time) device_id, gps_time, lat, lon, external_v
              from fleetd_stage_positions where external_v is not null
              order by device_id, gps_time, sub) s
        left join fleet.device_latest l on l.device_id = s.device_id
        where l.device_id is null or s.gps_time > l.gps_time
        window w as (partition by s.device_id order by s.gps_time)
    ) x
    where external_v < $1 and prev_v >= $2
    order by device_id, gps_time";

/// A drop of external power: device, time and place of the first fix without it, and the
/// voltage before.
pub type PowerDrop = (i32, DateTime<Utc>, f64, f64, f64);

/// Staged fixes where external power fell below `low_v` right after `high_v` or more (see the
/// query); call between [`insert_staged`] and [`advance_latest`].
pub async fn power_drops(
    conn: &mut PgConnection,
    low_v: f32,
    high_v: f32,
) -> Result<Vec<PowerDrop>, sqlx::Error> {
    sqlx::query_as(POWER_DROPS).bind(low_v).bind(high_v).fetch_all(&mut *conn).await
}

/// Moves each staged device's latest position forward to its newest staged fix; returns the
/// devices whose latest position moved.
pub async fn advance_latest(conn: &mut PgConnection) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar(UPDATE_LATEST).fetch_all(&mut *conn).await
}
