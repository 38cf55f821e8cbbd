//! The trips benchmark's data and its baseline.
//!
//! The data is generated inside PostgreSQL (so generation does not dominate the run): each
//! vehicle repeats a 55-minute cycle of 60 driving fixes 15 s apart (about 40 km/h, ignition on,
//! heading east) and 40 parked fixes a minute apart (ignition off), with per-vehicle phase and
//! speed noise. The baseline is the reference stack's approach: a materialized view that finds
//! trips with gaps-and-islands window functions over all positions, refreshed in full.

/// Inserts `cycles` cycles of 100 fixes for each of the first `vehicles` devices, starting at
/// `start` (an SQL timestamptz literal), cycle numbers from `first_cycle`, and marks the devices
/// in the analytics backlog with their earliest new fix, as the ingest writer does.
pub fn generate_sql(vehicles: u32, first_cycle: u32, cycles: u32, start: &str) -> String {
    format!(
        "with new as (
         insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source)
         select d.device_id,
                timestamptz '{start}' + (d.device_id % 50) * interval '1 minute'
                    + c * interval '55 minutes'
                    + case when k < 60 then k * interval '15 seconds'
                           else interval '15 minutes' + (k - 60) * interval '1 minute' end,
                -1.0 - (d.device_id % 100) * 0.01,
                30.0 + (d.device_id % 10)
                    + case when k < 60 then c * 0.09 + k * 0.0015 else (c + 1) * 0.09 end,
                case when k < 60 then 35 + (hashint4(d.device_id * 1000 + k) & 15)::real
                     else 0 end,
                k < 60,
                'push'
         from (select device_id from fleet.devices order by device_id limit {vehicles}) d,
              generate_series({first_cycle}, {last}) as c,
              generate_series(0, 99) as k
         returning device_id, gps_time)
         insert into fleet.analytics_backlog (device_id, positions_from)
         select device_id, min(gps_time) from new group by device_id order by device_id
         on conflict (device_id) do update set
             positions_from = least(fleet.analytics_backlog.positions_from, excluded.positions_from),
             version = fleet.analytics_backlog.version + 1",
        last = first_cycle + cycles - 1
    )
}

/// The reference approach: trips as islands of moving fixes (ignition on, or moving without
/// ignition data), split at gaps over 30 minutes, with haversine distance, kept when they last
/// two minutes.
pub const BASELINE_VIEW_SQL: &str = "create materialized view bench_trips_mv as
with flagged as (
    select device_id, gps_time, lat, lon, speed_kmh,
           coalesce(ignition, speed_kmh >= 5) as moving,
           lag(gps_time) over w as prev_time,
           lag(lat) over w as prev_lat,
           lag(lon) over w as prev_lon,
           lag(coalesce(ignition, speed_kmh >= 5)) over w as prev_moving
    from fleet.positions
    window w as (partition by device_id order by gps_time)
), islands as (
    select *,
           sum(case when prev_moving is distinct from moving
                     or gps_time - prev_time > interval '30 minutes' then 1 else 0 end)
               over (partition by device_id order by gps_time) as island
    from flagged
)
select device_id, island,
       min(gps_time) as start_time, max(gps_time) as end_time,
       count(*) as point_count,
       max(speed_kmh) as max_speed_kmh,
       sum(case when prev_lat is null then 0 else
           2 * 6378137 * asin(sqrt(
               power(sin(radians(lat - prev_lat) / 2), 2)
               + cos(radians(prev_lat)) * cos(radians(lat))
                 * power(sin(radians(lon - prev_lon) / 2), 2))) end) as distance_m
from islands
where moving
group by device_id, island
having max(gps_time) - min(gps_time) >= interval '2 minutes'
with no data";
