//! Clock-derived events (offline longer than a rule's limit, not moved by a time of day) and the
//! per-vehicle edges in `fleet.notify_device_state` (back online).
//!
//! Absence of data can only be noticed by a clock: the notify sweep (fleet-notify, under the
//! dispatcher's lease) calls [`offline_due`] and [`not_moved_due`] every few seconds; the ingest
//! writer calls [`back_online`] for the devices a flush moved. Each returns events with stable
//! keys for [`super::events::record`], in the caller's transaction.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use fleet_core::notification::{Event, EventKind, Facts};
use sqlx::PgConnection;

/// A time as event keys spell it: RFC 3339, UTC, microseconds.
pub fn key_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Devices of `moved` (their latest fix just moved forward) that were told offline: their
/// offline edge is cleared and one `online` event each returned (key
/// `online:<device>:<offline since>`), with the first fix after the silence. One indexed query
/// over the moved devices only.
pub async fn back_online(
    conn: &mut PgConnection,
    moved: &[i32],
) -> Result<Vec<Event>, sqlx::Error> {
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"with was as (
               select s.device_id, s.offline_since
               from fleet.notify_device_state s
               where s.device_id = any($1) and s.offline_since is not null
               order by s.device_id
               for update
           )
           update fleet.notify_device_state s
           set offline_since = null, offline_thresholds = '{}', updated_at = now()
           from was, fleet.device_latest l
           where s.device_id = was.device_id and l.device_id = s.device_id
             and l.gps_time > was.offline_since
           returning s.device_id, was.offline_since as "offline_since!", l.gps_time, l.lat, l.lon,
                     l.speed_kmh"#,
        moved
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Event {
            key: format!("online:{}:{}", r.device_id, key_time(r.offline_since)),
            device_id: r.device_id,
            time: r.gps_time,
            kind: EventKind::Online,
            facts: Facts {
                lat: Some(r.lat),
                lon: Some(r.lon),
                speed_kmh: r.speed_kmh.map(f64::from),
                last_fix: Some(r.gps_time),
                duration_s: Some((r.gps_time - r.offline_since).num_seconds()),
                ..Facts::default()
            },
        })
        .collect())
}

/// For each of `thresholds` (seconds of silence, the distinct limits enabled offline rules
/// name), active devices whose latest fix is older than it and which were not yet told for that
/// threshold since that fix: one `offline` event each (key
/// `offline:<device>:<last fix>:<threshold>`, time = last fix + threshold), and the threshold
/// remembered in `fleet.notify_device_state` so the next sweep is quiet and the next fix is
/// told as back online.
pub async fn offline_due(
    conn: &mut PgConnection,
    thresholds: &[i64],
) -> Result<Vec<Event>, sqlx::Error> {
    let thresholds: Vec<i32> =
        thresholds.iter().filter_map(|t| i32::try_from(*t).ok()).filter(|t| *t > 0).collect();
    if thresholds.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"with due as (
               select l.device_id, l.gps_time, l.lat, l.lon, t.threshold
               from fleet.device_latest l
               join fleet.devices d on d.device_id = l.device_id and d.active
               cross join unnest($1::int[]) as t(threshold)
               left join fleet.notify_device_state s on s.device_id = l.device_id
               where l.gps_time < now() - make_interval(secs => t.threshold)
                 and not (s.offline_since is not distinct from l.gps_time
                          and t.threshold = any(s.offline_thresholds))
           ),
           marked as (
               insert into fleet.notify_device_state as s
                   (device_id, offline_since, offline_thresholds, updated_at)
               select device_id, gps_time, array_agg(threshold order by threshold), now()
               from due group by device_id, gps_time
               -- device order, as the writer locks these rows: the two never deadlock
               order by device_id
               on conflict (device_id) do update set
                   offline_thresholds = case
                       when s.offline_since is not distinct from excluded.offline_since
                       then array(select distinct x from unnest(s.offline_thresholds
                                  || excluded.offline_thresholds) x order by x)
                       else excluded.offline_thresholds end,
                   offline_since = excluded.offline_since,
                   updated_at = now()
           )
           select device_id as "device_id!", gps_time as "gps_time!", lat as "lat!",
                  lon as "lon!", threshold as "threshold!"
           from due order by device_id, threshold"#,
        &thresholds
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let threshold = i64::from(r.threshold);
            Event {
                key: format!("offline:{}:{}:{}", r.device_id, key_time(r.gps_time), threshold),
                device_id: r.device_id,
                time: r.gps_time + TimeDelta::seconds(threshold),
                kind: EventKind::Offline,
                facts: Facts {
                    lat: Some(r.lat),
                    lon: Some(r.lon),
                    last_fix: Some(r.gps_time),
                    threshold_s: Some(threshold),
                    duration_s: Some(threshold),
                    ..Facts::default()
                },
            }
        })
        .collect())
}

/// For each of `deadlines` (seconds after local midnight in the fleet's timezone) already
/// passed today, active devices that have reported before and have not moved since local
/// midnight (no trip ending after it, and not moving now) and were not told yet today: one
/// `not_moved` event each (key `not_moved:<device>:<local date>:<deadline>`, time = the
/// deadline). Trips are the trip builder's, at most one pass behind.
pub async fn not_moved_due(
    conn: &mut PgConnection,
    deadlines: &[i64],
) -> Result<Vec<Event>, sqlx::Error> {
    let deadlines: Vec<i32> = deadlines
        .iter()
        .filter_map(|t| i32::try_from(*t).ok())
        .filter(|t| (0..86_400).contains(t))
        .collect();
    if deadlines.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"with today as (
               select (now() at time zone g.timezone)::date as local_date, g.timezone
               from fleet.analytics_config g where g.scope = 'global'
           ),
           due as (
               select t.deadline, today.local_date,
                      (today.local_date::timestamp at time zone today.timezone) as midnight,
                      ((today.local_date + make_interval(secs => t.deadline))
                          at time zone today.timezone) as due_at
               from today cross join unnest($1::int[]) as t(deadline)
           )
           select l.device_id as "device_id!", due.deadline as "deadline!",
                  due.local_date::text as "local_date!", due.due_at as "due_at!",
                  l.lat as "lat!", l.lon as "lon!", l.gps_time as "last_fix!"
           from due
           cross join fleet.device_latest l
           join fleet.devices d on d.device_id = l.device_id and d.active
           where due.due_at <= now()
             and l.motion_state <> 'moving'
             -- trips end at the local day's end, so one starting over a day earlier is over
             and not exists (select from fleet.trips x
                             where x.device_id = l.device_id
                               and x.start_time > due.midnight - interval '1 day'
                               and x.end_time >= due.midnight)
             and not exists (select from fleet.notify_events e
                             where e.event_key = 'not_moved:' || l.device_id || ':'
                                   || due.local_date || ':' || due.deadline)
           order by l.device_id, due.deadline"#,
        &deadlines
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Event {
            key: format!("not_moved:{}:{}:{}", r.device_id, r.local_date, r.deadline),
            device_id: r.device_id,
            time: r.due_at,
            kind: EventKind::NotMoved,
            facts: Facts {
                lat: Some(r.lat),
                lon: Some(r.lon),
                last_fix: Some(r.last_fix),
                threshold_s: Some(i64::from(r.deadline)),
                ..Facts::default()
            },
        })
        .collect())
}

/// A trip's start: device, time, lat, lon.
pub type TripStart = (i32, DateTime<Utc>, f64, f64);

/// Of `starts`, the trips starting outside their vehicle's shift hours (its analytics settings:
/// shift weekdays, start and end in its timezone, a shift ending before it starts running over
/// midnight): one `after_hours` event each (key `after_hours:<device>:<trip start>`).
pub async fn after_hours(
    conn: &mut PgConnection,
    starts: &[TripStart],
) -> Result<Vec<Event>, sqlx::Error> {
    if starts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = starts.iter().map(|s| s.0).collect();
    let times: Vec<DateTime<Utc>> = starts.iter().map(|s| s.1).collect();
    let lats: Vec<f64> = starts.iter().map(|s| s.2).collect();
    let lons: Vec<f64> = starts.iter().map(|s| s.3).collect();
    let rows = sqlx::query!(
        r#"select v.device_id as "device_id!", v.t as "start_time!", v.lat as "lat!",
                  v.lon as "lon!"
           from unnest($1::int[], $2::timestamptz[], $3::float8[], $4::float8[])
                as v(device_id, t, lat, lon)
           join reporting.v_device_analytics_settings s on s.device_id = v.device_id
           cross join lateral (select (v.t at time zone s.timezone) as local) l
           where not (
               extract(isodow from l.local)::smallint = any(s.shift_weekdays)
               and case when s.shift_start < s.shift_end
                        then l.local::time >= s.shift_start and l.local::time < s.shift_end
                        else l.local::time >= s.shift_start or l.local::time < s.shift_end end)
           order by v.device_id, v.t"#,
        &ids,
        &times,
        &lats,
        &lons,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Event {
            key: format!("after_hours:{}:{}", r.device_id, key_time(r.start_time)),
            device_id: r.device_id,
            time: r.start_time,
            kind: EventKind::AfterHours,
            facts: Facts { lat: Some(r.lat), lon: Some(r.lon), ..Facts::default() },
        })
        .collect())
}
