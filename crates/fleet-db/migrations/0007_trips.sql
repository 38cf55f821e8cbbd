create table fleet.trips (
    device_id        integer not null references fleet.devices (device_id),
    start_time       timestamptz not null,
    end_time         timestamptz not null,
    start_lat        double precision not null,
    start_lon        double precision not null,
    end_lat          double precision not null,
    end_lon          double precision not null,
    distance_m       double precision not null check (distance_m >= 0),
    duration_s       integer not null check (duration_s >= 0),
    moving_s         integer not null default 0 check (moving_s >= 0),
    idle_s           integer not null default 0 check (idle_s >= 0),
    max_speed_kmh    real,
    avg_speed_kmh    real,
    overspeed_count  integer not null default 0,
    overspeed_s      integer not null default 0,
    point_count      integer not null check (point_count >= 0),
    gap_s            integer not null default 0,
    end_reason       text not null check (end_reason in ('work_stop', 'long_gap', 'day_end', 'open')),
    start_geofence   text,
    end_geofence     text,
    computed_at      timestamptz not null default now(),
    primary key (device_id, start_time),
    check (end_time >= start_time)
);

create index trips_start_idx on fleet.trips (start_time);

comment on table fleet.trips is 'Trips derived by fleetd''s trip builder from positions, one row per (device, start time). Recomputed when late data lands.';
comment on column fleet.trips.distance_m is 'Haversine distance over consecutive fixes while moving, metres.';
comment on column fleet.trips.duration_s is 'end_time - start_time, seconds.';
comment on column fleet.trips.moving_s is 'Seconds spent above the moving speed threshold.';
comment on column fleet.trips.idle_s is 'Seconds with ignition on and stationary inside the trip.';
comment on column fleet.trips.max_speed_kmh is 'Highest reported speed, km/h.';
comment on column fleet.trips.avg_speed_kmh is 'distance_m / moving_s, expressed in km/h.';
comment on column fleet.trips.overspeed_count is 'Times the speed went above the configured limit.';
comment on column fleet.trips.overspeed_s is 'Seconds above the configured speed limit.';
comment on column fleet.trips.point_count is 'Fixes the trip was built from.';
comment on column fleet.trips.gap_s is 'Seconds inside the trip not covered by fixes (gaps above the expected report interval).';
comment on column fleet.trips.end_reason is 'Why the trip ended: work_stop (ignition off and stationary long enough), long_gap (no fixes for too long), day_end (end of the day''s data) or open (still going).';
comment on column fleet.trips.start_geofence is 'Geofence the trip started in, if any.';
comment on column fleet.trips.end_geofence is 'Geofence the trip ended in, if any.';
