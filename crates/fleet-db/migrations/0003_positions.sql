-- Every GPS fix, range-partitioned by month of gps_time (UTC). The default partition catches
-- fixes for months that have no partition yet, so a write never fails for want of one;
-- fleet.create_positions_partition() later moves such rows into their month's own partition.
create table fleet.positions (
    device_id     integer not null references fleet.devices (device_id),
    gps_time      timestamptz not null,
    received_at   timestamptz not null default now(),
    lat           double precision not null check (lat between -90 and 90),
    lon           double precision not null check (lon between -180 and 180),
    speed_kmh     real check (speed_kmh >= 0),
    course_deg    real check (course_deg >= 0 and course_deg <= 360),
    altitude_m    real,
    ignition      boolean,
    satellites    smallint check (satellites >= 0),
    fix_kind      text not null default 'gps' check (fix_kind in ('gps', 'lbs', 'wifi', 'beacon')),
    battery_pct   real check (battery_pct between 0 and 100),
    external_v    real,
    odometer_m    double precision check (odometer_m >= 0),
    source        text not null check (source in ('poll', 'track', 'push', 'gt06')),
    extra         jsonb,
    primary key (device_id, gps_time),
    check (not (lat = 0 and lon = 0))
) partition by range (gps_time);

create table fleet.positions_default partition of fleet.positions default;

comment on table fleet.positions is 'Every position fix of every device, one row per (device, GPS time): ingesting the same fix twice is a no-op. Partitioned by month of gps_time (UTC).';
comment on table fleet.positions_default is 'Catches fixes for months without a partition; fleetd moves them into monthly partitions. Normally empty.';
comment on column fleet.positions.gps_time is 'When the device took the fix (UTC).';
comment on column fleet.positions.received_at is 'When fleetd stored the fix; received_at - gps_time is the delivery delay.';
comment on column fleet.positions.lat is 'Latitude, decimal degrees (WGS-84).';
comment on column fleet.positions.lon is 'Longitude, decimal degrees (WGS-84).';
comment on column fleet.positions.speed_kmh is 'Ground speed in km/h as reported by the device.';
comment on column fleet.positions.course_deg is 'Heading in degrees clockwise from north; null when unknown.';
comment on column fleet.positions.altitude_m is 'Altitude above sea level in metres.';
comment on column fleet.positions.ignition is 'ACC (ignition) state; null for devices without ignition wiring.';
comment on column fleet.positions.satellites is 'Satellites used for the fix.';
comment on column fleet.positions.fix_kind is 'How the device located itself: gps, lbs (cell towers), wifi or beacon.';
comment on column fleet.positions.battery_pct is 'Tracker battery charge in percent.';
comment on column fleet.positions.external_v is 'External (vehicle) supply voltage in volts.';
comment on column fleet.positions.odometer_m is 'Device odometer in metres, when the device reports one.';
comment on column fleet.positions.source is 'How the fix reached fleetd: poll (live location), track (track history), push (vendor push) or gt06 (device TCP).';
comment on column fleet.positions.extra is 'Vendor fields fleetd does not model, kept verbatim.';

-- Creates the monthly partition holding p_month (any date in the month, UTC) if it is missing,
-- moving rows the default partition caught for that month into it. Serialised by an advisory
-- transaction lock so concurrent fleetd processes do not race. Returns the partition's name.
create function fleet.create_positions_partition(p_month date) returns text
language plpgsql as $$
declare
    month_start date := date_trunc('month', p_month)::date;
    lo timestamptz := month_start::timestamp at time zone 'UTC';
    hi timestamptz := (month_start + interval '1 month')::timestamp at time zone 'UTC';
    part text := format('positions_y%sm%s', to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
begin
    perform pg_advisory_xact_lock(hashtext('fleet.positions partitions'));
    if to_regclass(format('fleet.%I', part)) is not null then
        return part;
    end if;
    execute format(
        'create table fleet.%I (like fleet.positions including defaults including constraints including storage)',
        part);
    -- the range check lets attach skip its validation scan
    execute format('alter table fleet.%I add constraint %I check (gps_time >= %L and gps_time < %L)',
        part, part || '_range', lo, hi);
    execute format(
        'with moved as (delete from fleet.positions_default where gps_time >= %L and gps_time < %L returning *)
         insert into fleet.%I select * from moved',
        lo, hi, part);
    execute format('alter table fleet.positions attach partition fleet.%I for values from (%L) to (%L)',
        part, lo, hi);
    execute format('alter table fleet.%I drop constraint %I', part, part || '_range');
    execute format('comment on table fleet.%I is %L', part,
        format('Positions with gps_time in %s (UTC). A partition of fleet.positions.', to_char(month_start, 'YYYY-MM')));
    return part;
end $$;

revoke execute on function fleet.create_positions_partition(date) from public;

-- the current month and the next always exist after migrating; fleetd keeps more ahead
select fleet.create_positions_partition(current_date);
select fleet.create_positions_partition((current_date + interval '1 month')::date);
