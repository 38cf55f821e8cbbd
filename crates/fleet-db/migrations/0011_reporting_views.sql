-- The global analytics settings as a one-row view, so reporting views can join them.
create view reporting.v_analytics_global as
select speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s, idle_min_s,
       min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m, offline_after_s,
       shift_start, shift_end, shift_weekdays, timezone, idle_fuel_l_per_h, fuel_price_per_l,
       currency, updated_at
from fleet.analytics_config
where scope = 'global';

comment on view reporting.v_analytics_global is 'The global analytics thresholds (one row). Overrides per cost centre, city and device are in fleet.analytics_config.';

create view reporting.v_devices as
select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
       d.vehicle_type, d.model, d.active, d.created_at, d.deactivated_at
from fleet.devices d;

comment on view reporting.v_devices is 'Every device (vehicle) with its registry fields; filter on active for the current fleet.';

create view reporting.v_live_positions as
select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
       l.gps_time, l.received_at, l.lat, l.lon, l.speed_kmh, l.course_deg, l.ignition,
       l.fix_kind, l.battery_pct, l.external_v,
       case when now() - l.gps_time > make_interval(secs => g.offline_after_s) then 'offline'
            else l.motion_state end as status,
       l.state_since,
       extract(epoch from now() - l.gps_time)::bigint as fix_age_s,
       (select count(*) from fleet.alarms a
         where a.device_id = l.device_id and a.acknowledged_at is null
           and a.alarm_time > now() - interval '24 hours') as open_alarms_24h
from fleet.device_latest l
join fleet.devices d using (device_id)
cross join reporting.v_analytics_global g
where d.active;

comment on view reporting.v_live_positions is 'Each active vehicle''s newest fix and status: moving, idling, parked, or offline when the fix is older than offline_after_s. Reads device_latest, never positions.';
comment on column reporting.v_live_positions.fix_age_s is 'Age of the newest fix, seconds.';
comment on column reporting.v_live_positions.open_alarms_24h is 'Unacknowledged alarms of the last 24 hours.';

create view reporting.v_trips as
select t.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
       t.start_time, t.end_time,
       (t.start_time at time zone g.timezone)::date as local_date,
       t.start_lat, t.start_lon, t.end_lat, t.end_lon,
       t.distance_m, round((t.distance_m / 1000.0)::numeric, 3) as distance_km,
       t.duration_s, t.moving_s, t.idle_s, t.max_speed_kmh, t.avg_speed_kmh,
       t.overspeed_count, t.overspeed_s, t.point_count, t.gap_s, t.end_reason,
       t.start_geofence, t.end_geofence
from fleet.trips t
join fleet.devices d using (device_id)
cross join reporting.v_analytics_global g;

comment on view reporting.v_trips is 'Trips with their vehicle''s registry fields and the local date (fleet time zone) they started on.';
