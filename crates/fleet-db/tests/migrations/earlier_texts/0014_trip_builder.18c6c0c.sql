-- What the trip builder needs besides fleet.trips: the stops between trips, geofence enter/exit
-- events, the backlog of devices with new data, and each device's resolved analytics settings.

create table fleet.stops (
    device_id    integer not null references fleet.devices (device_id),
    start_time   timestamptz not null,
    end_time     timestamptz not null,
    lat          double precision not null,
    lon          double precision not null,
    kind         text not null check (kind in ('parked', 'idling')),
    duration_s   integer not null check (duration_s >= 0),
    idle_s       integer not null default 0 check (idle_s >= 0),
    geofence     text,
    computed_at  timestamptz not null default now(),
    primary key (device_id, start_time),
    check (end_time >= start_time)
);

create index stops_start_idx on fleet.stops (start_time);

comment on table fleet.stops is 'The periods between trips (and before the first and after the last), one row per (device, start time): where the vehicle stood and whether the engine ran. Derived with the trips; recomputed when late data lands.';
comment on column fleet.stops.start_time is 'When the vehicle halted (the first stationary fix), not when the stop was confirmed.';
comment on column fleet.stops.end_time is 'When the next trip started (its departure), or the newest fix for the current stop.';
comment on column fleet.stops.lat is 'Where the vehicle halted: latitude of the stop''s first fix.';
comment on column fleet.stops.lon is 'Where the vehicle halted: longitude of the stop''s first fix.';
comment on column fleet.stops.kind is 'parked, or idling when the engine ran for at least idle_min_s and for most of the stop.';
comment on column fleet.stops.duration_s is 'end_time - start_time, seconds.';
comment on column fleet.stops.idle_s is 'Seconds with the ignition on during the stop.';
comment on column fleet.stops.geofence is 'Geofence the vehicle stood in, if any (the smallest containing one).';

-- Trips still open are revisited when their device falls silent, to close them.
create index trips_open_idx on fleet.trips (end_time) where end_reason = 'open';

create table fleet.geofence_events (
    device_id    integer not null references fleet.devices (device_id),
    event_time   timestamptz not null,
    geofence_id  integer not null references fleet.geofences (geofence_id) on delete cascade,
    event        text not null check (event in ('enter', 'exit')),
    lat          double precision not null,
    lon          double precision not null,
    computed_at  timestamptz not null default now(),
    primary key (device_id, event_time, geofence_id, event)
);

create index geofence_events_time_idx on fleet.geofence_events (event_time);

comment on table fleet.geofence_events is 'A vehicle entering or leaving a geofence, derived from consecutive fixes by the trip builder (recomputed with trips when late data lands).';
comment on column fleet.geofence_events.event_time is 'GPS time of the first fix inside (enter) or outside (exit).';
comment on column fleet.geofence_events.lat is 'Latitude of that fix.';
comment on column fleet.geofence_events.lon is 'Longitude of that fix.';

-- The writer marks a device here in the same transaction that stores its new fixes or alarms;
-- the trip builder deletes the mark in the transaction that stores what it derived from them,
-- so a crash between the two never loses work.
create table fleet.analytics_backlog (
    device_id       integer primary key references fleet.devices (device_id) on delete cascade,
    positions_from  timestamptz,
    kpi_from        timestamptz,
    marked_at       timestamptz not null default now(),
    check (positions_from is not null or kpi_from is not null)
);

comment on table fleet.analytics_backlog is 'Devices with data the trip builder has not processed yet: the earliest GPS time of new fixes (positions_from) and of other new data that changes daily KPIs such as alarms (kpi_from). Empty when trips are up to date.';
comment on column fleet.analytics_backlog.positions_from is 'Earliest GPS time among fixes stored since the device was last processed; -infinity asks for a rebuild from the first fix.';
comment on column fleet.analytics_backlog.kpi_from is 'Earliest time of other new data (alarms) whose local days need their KPIs recomputed.';
comment on column fleet.analytics_backlog.marked_at is 'When the oldest unprocessed mark was made: now() - marked_at is the trip builder''s lag.';

-- Every device with stored fixes is due a build (databases that had fixes before trips existed).
insert into fleet.analytics_backlog (device_id, positions_from)
select d.device_id, '-infinity'
from fleet.devices d
where exists (select from fleet.positions p where p.device_id = d.device_id);

-- Each device's analytics settings with the overrides applied: device, then cost centre, then
-- city, then the global row.
create view reporting.v_device_analytics_settings as
select d.device_id, d.imei, d.cost_centre, d.city,
       coalesce(dv.speed_limit_kmh, cc.speed_limit_kmh, ci.speed_limit_kmh, g.speed_limit_kmh) as speed_limit_kmh,
       coalesce(dv.moving_speed_kmh, cc.moving_speed_kmh, ci.moving_speed_kmh, g.moving_speed_kmh) as moving_speed_kmh,
       coalesce(dv.work_stop_min_s, cc.work_stop_min_s, ci.work_stop_min_s, g.work_stop_min_s) as work_stop_min_s,
       coalesce(dv.long_gap_s, cc.long_gap_s, ci.long_gap_s, g.long_gap_s) as long_gap_s,
       coalesce(dv.idle_min_s, cc.idle_min_s, ci.idle_min_s, g.idle_min_s) as idle_min_s,
       coalesce(dv.min_trip_distance_m, cc.min_trip_distance_m, ci.min_trip_distance_m, g.min_trip_distance_m) as min_trip_distance_m,
       coalesce(dv.min_trip_duration_s, cc.min_trip_duration_s, ci.min_trip_duration_s, g.min_trip_duration_s) as min_trip_duration_s,
       coalesce(dv.motion_confirm_distance_m, cc.motion_confirm_distance_m, ci.motion_confirm_distance_m, g.motion_confirm_distance_m) as motion_confirm_distance_m,
       coalesce(dv.offline_after_s, cc.offline_after_s, ci.offline_after_s, g.offline_after_s) as offline_after_s,
       coalesce(dv.shift_start, cc.shift_start, ci.shift_start, g.shift_start) as shift_start,
       coalesce(dv.shift_end, cc.shift_end, ci.shift_end, g.shift_end) as shift_end,
       coalesce(dv.shift_weekdays, cc.shift_weekdays, ci.shift_weekdays, g.shift_weekdays) as shift_weekdays,
       coalesce(dv.timezone, cc.timezone, ci.timezone, g.timezone) as timezone,
       coalesce(dv.idle_fuel_l_per_h, cc.idle_fuel_l_per_h, ci.idle_fuel_l_per_h, g.idle_fuel_l_per_h) as idle_fuel_l_per_h,
       coalesce(dv.fuel_price_per_l, cc.fuel_price_per_l, ci.fuel_price_per_l, g.fuel_price_per_l) as fuel_price_per_l,
       coalesce(dv.currency, cc.currency, ci.currency, g.currency) as currency,
       greatest(g.updated_at, ci.updated_at, cc.updated_at, dv.updated_at) as updated_at
from fleet.devices d
cross join (select * from fleet.analytics_config where scope = 'global') g
left join fleet.analytics_config ci on ci.scope = 'city' and ci.scope_key = d.city
left join fleet.analytics_config cc on cc.scope = 'cost_centre' and cc.scope_key = d.cost_centre
left join fleet.analytics_config dv on dv.scope = 'device' and dv.scope_key = d.imei;

comment on view reporting.v_device_analytics_settings is 'Each device''s analytics thresholds with overrides applied (device, then cost centre, then city, then global). The trip builder and the daily KPIs use these values.';
comment on column reporting.v_device_analytics_settings.updated_at is 'Latest change to any row the device''s values come from; the trip builder rebuilds a device''s trips when it moves.';

grant select on fleet.stops, fleet.geofence_events, fleet.analytics_backlog to fleet_ro;
