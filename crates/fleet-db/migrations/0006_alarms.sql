create table fleet.alarms (
    device_id        integer not null references fleet.devices (device_id),
    alarm_time       timestamptz not null,
    alarm_type       text not null,
    alarm_name       text not null default '',
    alarm_class      text not null default 'other'
                     check (alarm_class in ('safety', 'security', 'power', 'driving', 'geofence', 'device', 'other')),
    lat              double precision check (lat between -90 and 90),
    lon              double precision check (lon between -180 and 180),
    speed_kmh        real check (speed_kmh >= 0),
    source           text not null check (source in ('poll', 'push', 'gt06', 'derived')),
    received_at      timestamptz not null default now(),
    acknowledged_at  timestamptz,
    acknowledged_by  integer references fleet.users (user_id) on delete set null,
    ack_note         text,
    extra            jsonb,
    primary key (device_id, alarm_time, alarm_type),
    check ((acknowledged_at is null) or (acknowledged_by is not null or ack_note is not null))
);

create index alarms_time_idx on fleet.alarms (alarm_time desc);
create index alarms_open_idx on fleet.alarms (device_id, alarm_time desc) where acknowledged_at is null;

comment on table fleet.alarms is 'Alarms raised by devices or derived by fleetd, one row per (device, time, type): the same alarm ingested twice is a no-op.';
comment on column fleet.alarms.alarm_type is 'Vendor alarm type code as text (e.g. 1 for SOS), or fleetd''s own code for derived alarms.';
comment on column fleet.alarms.alarm_name is 'Readable alarm name.';
comment on column fleet.alarms.alarm_class is 'Stable class for KPIs: safety, security, power, driving, geofence, device or other.';
comment on column fleet.alarms.source is 'How the alarm reached fleetd: poll, push, gt06, or derived by fleetd.';
comment on column fleet.alarms.acknowledged_at is 'When an operator acknowledged the alarm; null while open.';
comment on column fleet.alarms.acknowledged_by is 'User who acknowledged the alarm.';
