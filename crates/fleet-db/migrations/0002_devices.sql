create table fleet.devices (
    device_id       integer generated always as identity primary key,
    imei            text not null unique check (imei ~ '^[0-9]{14,17}$'),
    name            text not null default '',
    plate           text,
    driver_name     text,
    driver_phone    text,
    cost_centre     text,
    city            text,
    vehicle_type    text,
    model           text,
    sim             text,
    active          boolean not null default true,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    deactivated_at  timestamptz
);

create index devices_cost_centre_idx on fleet.devices (cost_centre) where active;
create index devices_city_idx on fleet.devices (city) where active;

create trigger devices_touch before update on fleet.devices
    for each row execute function fleet.touch_updated_at();

comment on table fleet.devices is 'One row per tracker (vehicle). Devices removed from the vendor account are marked inactive, never deleted, so their history keeps its owner.';
comment on column fleet.devices.device_id is 'Surrogate key used by every other table.';
comment on column fleet.devices.imei is 'Tracker IMEI (14-17 digits) as the vendor reports it.';
comment on column fleet.devices.name is 'Display name from the vendor account or set by an operator.';
comment on column fleet.devices.plate is 'Vehicle registration plate.';
comment on column fleet.devices.cost_centre is 'Business unit the vehicle is charged to; KPIs roll up by it.';
comment on column fleet.devices.city is 'City or operating group; KPIs roll up by it.';
comment on column fleet.devices.vehicle_type is 'Kind of vehicle, e.g. motorcycle, van, 4wd.';
comment on column fleet.devices.model is 'Tracker model name, e.g. AT4, JC400P, GT06E.';
comment on column fleet.devices.sim is 'SIM card number (ICCID or MSISDN) of the tracker.';
comment on column fleet.devices.active is 'False once the device left the vendor account.';
comment on column fleet.devices.deactivated_at is 'When the device was marked inactive.';
