-- Thresholds for trips and KPIs. The global row holds every value; cost-centre, city and device
-- rows override only the columns they set (null = inherit). Precedence: device, cost centre,
-- city, global. The global defaults match fleet_core::AnalyticsSettings::default() and are
-- explained in docs/ANALYTICS_SETTINGS.md.
create table fleet.analytics_config (
    scope                      text not null check (scope in ('global', 'cost_centre', 'city', 'device')),
    scope_key                  text not null default '',
    speed_limit_kmh            double precision check (speed_limit_kmh between 1 and 300),
    moving_speed_kmh           double precision check (moving_speed_kmh between 0.5 and 30),
    work_stop_min_s            integer check (work_stop_min_s between 0 and 604800),
    long_gap_s                 integer check (long_gap_s between 0 and 604800),
    idle_min_s                 integer check (idle_min_s between 0 and 604800),
    min_trip_distance_m        double precision check (min_trip_distance_m >= 0),
    min_trip_duration_s        integer check (min_trip_duration_s between 0 and 604800),
    motion_confirm_distance_m  double precision check (motion_confirm_distance_m >= 0),
    offline_after_s            integer check (offline_after_s between 0 and 604800),
    shift_start                time,
    shift_end                  time,
    shift_weekdays             smallint[] check (shift_weekdays <@ array[1, 2, 3, 4, 5, 6, 7]::smallint[]),
    timezone                   text,
    idle_fuel_l_per_h          double precision check (idle_fuel_l_per_h >= 0),
    fuel_price_per_l           double precision check (fuel_price_per_l >= 0),
    currency                   text check (currency ~ '^[A-Z]{3}$'),
    updated_at                 timestamptz not null default now(),
    updated_by                 integer references fleet.users (user_id) on delete set null,
    primary key (scope, scope_key),
    check ((scope = 'global') = (scope_key = '')),
    check (scope <> 'global' or num_nulls(
        speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s, idle_min_s,
        min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m, offline_after_s,
        shift_start, shift_end, shift_weekdays, timezone, idle_fuel_l_per_h, fuel_price_per_l,
        currency) = 0)
);

create trigger analytics_config_touch before update on fleet.analytics_config
    for each row execute function fleet.touch_updated_at();

insert into fleet.analytics_config (
    scope, scope_key, speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s, idle_min_s,
    min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m, offline_after_s,
    shift_start, shift_end, shift_weekdays, timezone, idle_fuel_l_per_h, fuel_price_per_l, currency)
values (
    'global', '', 80, 5, 300, 1800, 300,
    200, 120, 500, 3600,
    '08:00', '17:00', '{1,2,3,4,5,6}', 'Africa/Nairobi', 1.0, 180, 'KES');

comment on table fleet.analytics_config is 'Thresholds for trips and KPIs: one global row with every value, and cost_centre / city / device rows overriding single columns (null = inherit). Precedence: device > cost_centre > city > global.';
comment on column fleet.analytics_config.scope_key is 'Cost centre or city name, or the device IMEI; empty for the global row.';
comment on column fleet.analytics_config.speed_limit_kmh is 'Speed limit for overspeed counting, km/h.';
comment on column fleet.analytics_config.moving_speed_kmh is 'Below this speed a fix is stationary, km/h; distance accrues only above it.';
comment on column fleet.analytics_config.work_stop_min_s is 'Ignition off and stationary this long ends a trip (work stop), seconds.';
comment on column fleet.analytics_config.long_gap_s is 'No fixes for this long ends a trip (long gap), seconds.';
comment on column fleet.analytics_config.idle_min_s is 'Ignition on and stationary this long inside a trip counts as idling, seconds.';
comment on column fleet.analytics_config.min_trip_distance_m is 'Shorter trips are discarded as noise, metres.';
comment on column fleet.analytics_config.min_trip_duration_s is 'Shorter trips are discarded as noise, seconds.';
comment on column fleet.analytics_config.motion_confirm_distance_m is 'Without ignition data, motion is confirmed after this displacement, metres.';
comment on column fleet.analytics_config.offline_after_s is 'A device whose newest fix is older than this is offline, seconds.';
comment on column fleet.analytics_config.shift_start is 'Start of the working shift, local time.';
comment on column fleet.analytics_config.shift_end is 'End of the working shift, local time.';
comment on column fleet.analytics_config.shift_weekdays is 'Working days as ISO weekday numbers, 1 = Monday ... 7 = Sunday.';
comment on column fleet.analytics_config.timezone is 'IANA time zone of day boundaries and shift hours.';
comment on column fleet.analytics_config.idle_fuel_l_per_h is 'Fuel burnt per hour of idling, litres per hour (idle cost KPI).';
comment on column fleet.analytics_config.fuel_price_per_l is 'Price of a litre of fuel in the fleet''s currency (idle cost KPI).';
comment on column fleet.analytics_config.currency is 'ISO 4217 code of the fleet''s currency.';
