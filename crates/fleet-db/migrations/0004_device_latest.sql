create table fleet.device_latest (
    device_id     integer primary key references fleet.devices (device_id) on delete cascade,
    gps_time      timestamptz not null,
    received_at   timestamptz not null,
    lat           double precision not null,
    lon           double precision not null,
    speed_kmh     real,
    course_deg    real,
    ignition      boolean,
    fix_kind      text not null default 'gps',
    battery_pct   real,
    external_v    real,
    odometer_m    double precision,
    source        text not null,
    motion_state  text not null check (motion_state in ('moving', 'idling', 'parked')),
    state_since   timestamptz not null,
    updated_at    timestamptz not null default now()
);

comment on table fleet.device_latest is 'The newest position of each device and its motion state, written in the same transaction as the position, only ever forwards in GPS time. The live map reads this, never positions.';
comment on column fleet.device_latest.motion_state is 'moving (speed above the moving threshold), idling (ignition on, stationary) or parked. Offline is derived at read time from the age of gps_time.';
comment on column fleet.device_latest.state_since is 'When the device entered its current motion_state.';
