-- Everything else the vendor sends, each kind in its own table keyed by (device, time) so
-- nothing is thrown away and re-delivery is a no-op. Fields the vendor documents get columns;
-- the rest of each item is kept verbatim in `extra` / `item`.

create table fleet.heartbeats (
    device_id    integer not null references fleet.devices (device_id),
    gate_time    timestamptz not null,
    received_at  timestamptz not null default now(),
    power_level  smallint,
    gsm_signal   smallint,
    ignition     boolean,
    extra        jsonb,
    primary key (device_id, gate_time)
);

create table fleet.device_events (
    device_id    integer not null references fleet.devices (device_id),
    event_time   timestamptz not null,
    event_type   text not null check (event_type in ('login', 'logout', 'other')),
    received_at  timestamptz not null default now(),
    timezone     text,
    extra        jsonb,
    primary key (device_id, event_time, event_type)
);

create table fleet.cell_fixes (
    device_id    integer not null references fleet.devices (device_id),
    gate_time    timestamptz not null,
    received_at  timestamptz not null default now(),
    fix_kind     text,
    cells        jsonb,
    extra        jsonb,
    primary key (device_id, gate_time)
);

create table fleet.sensor_readings (
    device_id     integer not null references fleet.devices (device_id),
    reading_time  timestamptz not null,
    kind          text not null check (kind in ('fuel', 'temperature', 'obd', 'fault')),
    received_at   timestamptz not null default now(),
    item          jsonb not null,
    primary key (device_id, kind, reading_time)
);

create table fleet.vendor_trips (
    device_id      integer not null references fleet.devices (device_id),
    start_time     timestamptz not null,
    end_time       timestamptz not null,
    received_at    timestamptz not null default now(),
    start_lat      double precision,
    start_lon      double precision,
    end_lat        double precision,
    end_lon        double precision,
    distance_m     double precision check (distance_m >= 0),
    duration_s     integer check (duration_s >= 0),
    avg_speed_kmh  real,
    max_speed_kmh  real,
    source         text not null check (source in ('poll', 'push')),
    extra          jsonb,
    primary key (device_id, start_time),
    check (end_time >= start_time)
);

comment on table fleet.heartbeats is 'Device heartbeats pushed by the vendor (/pushhb): the tracker is alive even when it sends no fix.';
comment on column fleet.heartbeats.gate_time is 'When the vendor''s gateway received the heartbeat (UTC).';
comment on column fleet.heartbeats.power_level is 'Battery level as the vendor reports it (0-6 scale on most models).';
comment on column fleet.heartbeats.gsm_signal is 'GSM signal as the vendor reports it (0-100).';
comment on table fleet.device_events is 'Device login and logout on the vendor''s gateway (/pushevent).';
comment on table fleet.cell_fixes is 'Cell-tower (LBS) and Wi-Fi fixes (/pushlbs): which towers the device saw; coarse, not a GPS position.';
comment on column fleet.cell_fixes.cells is 'The vendor''s lbsJson: mcc, mnc and the cell list.';
comment on table fleet.sensor_readings is 'Fuel, temperature and OBD readings and OBD fault reports (/pushoil, /pushtem, /pushobd, /pushfaultinfo). The vendor does not document their fields, so each item is kept whole in item.';
comment on column fleet.sensor_readings.item is 'The pushed item, verbatim.';
comment on table fleet.vendor_trips is 'The vendor''s own trip report (track.mileage polls and /pushtripreport), kept beside fleetd''s trips to reconcile distances per vehicle-day.';
comment on column fleet.vendor_trips.distance_m is 'Trip distance in metres (the vendor sends kilometres).';

grant select on fleet.heartbeats, fleet.device_events, fleet.cell_fixes, fleet.sensor_readings, fleet.vendor_trips to fleet_ro;
