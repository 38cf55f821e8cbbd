-- A device's status (moving, idling, parked, or offline when its newest fix is older than its
-- offline_after_s) is one function. Every reader calls it with the threshold of
-- reporting.v_device_analytics_settings, so per-device, cost-centre and city overrides apply
-- everywhere: before, the live map, the live stream and v_live_positions used the global value
-- while ingest health used the device's own, and a vehicle could be offline in one and parked
-- in the other at the same moment.
--
-- A single-statement SQL function, stable (it reads now()), so the planner inlines it into the
-- calling query: it costs no more than the case expression it replaces.
create function fleet.device_status(motion_state text, gps_time timestamptz, offline_after_s integer)
returns text
language sql stable parallel safe
return case when now() - gps_time > make_interval(secs => offline_after_s) then 'offline'
            else motion_state end;

comment on function fleet.device_status(text, timestamptz, integer) is 'A device''s status: offline when gps_time (its newest fix) is older than offline_after_s seconds, else its motion_state (moving, idling, parked). Pass the device''s threshold from reporting.v_device_analytics_settings (overrides applied). Null when gps_time is null (no fix).';

-- The views that wrote the rule themselves now call the function, with the device's threshold.
-- Same columns in the same order, so nothing that reads them changes.
create or replace view reporting.v_live_positions as
select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
       l.gps_time, l.received_at, l.lat, l.lon, l.speed_kmh, l.course_deg, l.ignition,
       l.fix_kind, l.battery_pct, l.external_v,
       fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) as status,
       l.state_since,
       extract(epoch from now() - l.gps_time)::bigint as fix_age_s,
       (select count(*) from fleet.alarms a
         where a.device_id = l.device_id and a.acknowledged_at is null
           and a.alarm_time > now() - interval '24 hours') as open_alarms_24h
from fleet.device_latest l
join fleet.devices d using (device_id)
join reporting.v_device_analytics_settings s using (device_id)
where d.active;

comment on view reporting.v_live_positions is 'Each active vehicle''s newest fix and status (fleet.device_status): moving, idling, parked, or offline when the fix is older than the vehicle''s offline_after_s (overrides applied). Reads device_latest, never positions.';

create or replace view reporting.v_ingest_health_devices as
select d.device_id, d.imei, d.name, d.plate, d.cost_centre, d.city,
       l.gps_time as last_gps_time,
       l.received_at as last_received_at,
       extract(epoch from now() - l.gps_time)::bigint as gps_age_s,
       delay.fixes_24h,
       delay.p[1] as delay_p50_s,
       delay.p[2] as delay_p95_s,
       case when l.device_id is null then 'never_seen'
            when fleet.device_status(l.motion_state, l.gps_time, g.offline_after_s) = 'offline'
                then 'offline'
            when now() - l.gps_time > interval '10 minutes' then 'stale'
            else 'live' end as status
from fleet.devices d
left join fleet.device_latest l using (device_id)
join reporting.v_device_analytics_settings g using (device_id)
cross join lateral (
    select count(*) as fixes_24h,
           percentile_cont(array[0.5, 0.95]::float8[]) within group (
               order by extract(epoch from p.received_at - p.gps_time)::float8) as p
    from fleet.positions p
    where p.device_id = d.device_id and p.gps_time > now() - interval '24 hours'
) delay
where d.active;

comment on column reporting.v_ingest_health_devices.status is 'never_seen (no fix ever), offline (fleet.device_status says so: newest fix older than the device''s offline_after_s, overrides applied, default 3600 s), stale (older than 600 s), else live; checked in that order.';

create or replace view reporting.v_vehicles_not_moved_today as
select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city, s.timezone,
       (now() at time zone s.timezone)::date as local_date,
       lt.end_time as last_trip_end,
       l.gps_time as last_fix_time,
       extract(epoch from now() - l.gps_time)::bigint as fix_age_s,
       coalesce(fleet.device_status(l.motion_state, l.gps_time, s.offline_after_s) = 'offline',
                true) as offline
from fleet.devices d
join reporting.v_device_analytics_settings s on s.device_id = d.device_id
left join lateral (
    select t.end_time from fleet.trips t
    where t.device_id = d.device_id
    order by t.start_time desc limit 1) lt on true
left join fleet.device_latest l on l.device_id = d.device_id
where d.active
  and (lt.end_time is null
       or lt.end_time < ((now() at time zone s.timezone)::date::timestamp at time zone s.timezone));

comment on column reporting.v_vehicles_not_moved_today.offline is 'No fix for longer than the vehicle''s offline_after_s (fleet.device_status), or never.';
