-- Daily KPIs per vehicle and local day, the function the trip builder calls to keep them current,
-- and the reporting layer over them: per-vehicle view, rollups per cost centre, city and fleet for
-- any date range, vehicles not moved today and the distance reconciliation.
-- docs/KPI_FRAMEWORK.md defines every figure; the comments below repeat the short form.

-- Alarm codes that KPIs single out (fleet-tracksolid's alarm_class maps both groups to 'driving').
create function fleet.alarm_is_harsh(p_alarm_type text) returns boolean
language sql immutable parallel safe as $$
    select lower(btrim(p_alarm_type)) in (
        '41', '42', '43', '48', '76', '144', '145', '146', 'ubiacce', 'ubidece', 'ubiturn')
$$;

comment on function fleet.alarm_is_harsh(text) is 'Whether a vendor alarm code is a harsh acceleration, braking or cornering event: device codes 41 (sudden acceleration), 48 (sudden deceleration), 42/43/76 (sharp turn), 144/145/146 (the same from DVRs) and platform codes ubiAcce, ubiDece, ubiTurn. Lane changes, skidding and overspeed are not harsh events.';

create function fleet.alarm_is_overspeed(p_alarm_type text) returns boolean
language sql immutable parallel safe as $$
    select lower(btrim(p_alarm_type)) in ('6', '135', '202', 'overspeed', 'fenceoverspeed')
$$;

comment on function fleet.alarm_is_overspeed(text) is 'Whether a vendor alarm code is an overspeed alert: device codes 6, 135 (DVR), 202 and platform codes overSpeed, fenceOverspeed.';

create function fleet.kpi_per_100km(p_events double precision, p_distance_m double precision)
returns double precision
language sql immutable parallel safe as $$
    select case when p_distance_m > 0 then p_events / (p_distance_m / 100000.0) end
$$;

comment on function fleet.kpi_per_100km(double precision, double precision) is 'Events per 100 km of distance; null without distance.';

create function fleet.kpi_driving_score(
    p_overspeed_count double precision, p_harsh_events double precision,
    p_distance_m double precision, p_overspeed_s double precision, p_driving_s double precision)
returns double precision
language sql immutable parallel safe as $$
    select case when p_distance_m >= 1000 then
        greatest(0.0, least(100.0,
            100.0
            - 2.0 * p_overspeed_count / (p_distance_m / 100000.0)
            - 4.0 * p_harsh_events / (p_distance_m / 100000.0)
            - 100.0 * coalesce(p_overspeed_s / nullif(p_driving_s, 0), 0)))
    end
$$;

comment on function fleet.kpi_driving_score(double precision, double precision, double precision, double precision, double precision) is 'Driving score 0-100: 100 - 2 x overspeed events per 100 km - 4 x harsh events per 100 km - 100 x share of driving time above the speed limit, clamped to 0..100; null under 1 km of distance (too little driving to judge). Arguments: overspeed count, harsh events, distance m, overspeed s, driving s.';

create table fleet.kpi_daily (
    device_id               integer not null references fleet.devices (device_id),
    local_date              date not null,
    timezone                text not null,
    fixes                   integer not null,
    first_fix_time          timestamptz,
    last_fix_time           timestamptz,
    avg_delivery_delay_s    double precision,
    has_acc                 boolean not null,
    trips                   integer not null,
    first_start             timestamptz,
    last_stop               timestamptz,
    distance_m              double precision not null,
    driving_s               integer not null,
    idle_s                  integer,
    engine_on_s             integer,
    idle_ratio              double precision
                            generated always as (idle_s::double precision / nullif(engine_on_s, 0)) stored,
    parked_s                integer not null,
    reporting_time          timestamptz,
    shift_start_time        timestamptz,
    tardiness_s             integer,
    shift_s                 integer not null,
    shift_driving_s         integer not null,
    utilisation             double precision
                            generated always as (shift_driving_s::double precision / nullif(shift_s, 0)) stored,
    after_hours_driving_s   integer not null,
    after_hours_distance_m  double precision not null,
    overspeed_count         integer not null,
    overspeed_s             integer not null,
    overspeed_per_100km     double precision
                            generated always as (fleet.kpi_per_100km(overspeed_count, distance_m)) stored,
    overspeed_alarms        integer not null,
    harsh_events            integer not null,
    harsh_per_100km         double precision
                            generated always as (fleet.kpi_per_100km(harsh_events, distance_m)) stored,
    driving_score           double precision
                            generated always as (fleet.kpi_driving_score(
                                overspeed_count, harsh_events, distance_m, overspeed_s, driving_s)) stored,
    alarms                  integer not null,
    alarms_by_class         jsonb not null,
    trip_fixes              double precision not null,
    expected_fixes          double precision not null,
    coverage                double precision
                            generated always as (least(1.0, trip_fixes / nullif(expected_fixes, 0))) stored,
    odometer_start_m        double precision,
    odometer_end_m          double precision,
    odometer_delta_m        double precision
                            generated always as (odometer_end_m - odometer_start_m) stored,
    vendor_trips            integer not null,
    vendor_distance_m       double precision,
    idle_fuel_l             double precision,
    idle_cost               double precision,
    currency                text not null,
    computed_at             timestamptz not null default now(),
    primary key (device_id, local_date),
    check (driving_s >= 0 and shift_driving_s >= 0 and after_hours_driving_s >= 0 and parked_s >= 0)
);

create index kpi_daily_date_idx on fleet.kpi_daily (local_date);

comment on table fleet.kpi_daily is 'Daily KPIs of each vehicle, one row per (device, local day in the device''s time zone) that has any fix, trip, stop, alarm or vendor trip. Written only by fleet.refresh_kpi_daily (the trip builder calls it in the transaction that stores trips); docs/KPI_FRAMEWORK.md defines every column. Trips and stops crossing local midnight are split between the days.';
comment on column fleet.kpi_daily.local_date is 'The day in the device''s time zone (reporting.v_device_analytics_settings.timezone).';
comment on column fleet.kpi_daily.timezone is 'Time zone the day boundaries and shift hours were taken in.';
comment on column fleet.kpi_daily.fixes is 'Position fixes with gps_time that day; 0 when the device was offline all day.';
comment on column fleet.kpi_daily.first_fix_time is 'GPS time of the first fix of the day.';
comment on column fleet.kpi_daily.last_fix_time is 'GPS time of the last fix of the day (freshness).';
comment on column fleet.kpi_daily.avg_delivery_delay_s is 'Mean of received_at - gps_time over the day''s fixes, seconds: how late data reached fleetd.';
comment on column fleet.kpi_daily.has_acc is 'Any fix that day reported the ignition (ACC) state. Without it idle, engine-on and reporting time are unknown (null).';
comment on column fleet.kpi_daily.trips is 'Trips that started that day (a trip counts on its start day only).';
comment on column fleet.kpi_daily.first_start is 'Start of the first trip that started that day.';
comment on column fleet.kpi_daily.last_stop is 'End of the last finished (not open) trip that ended that day.';
comment on column fleet.kpi_daily.distance_m is 'Trip distance within the day, metres; a trip crossing midnight contributes its part (apportioned by its own fixes, else by time).';
comment on column fleet.kpi_daily.driving_s is 'Trip moving time within the day, seconds.';
comment on column fleet.kpi_daily.idle_s is 'Engine on and stationary within the day: trip idle_s plus stop idle_s, seconds; null without ACC.';
comment on column fleet.kpi_daily.engine_on_s is 'driving_s + idle_s, seconds; null without ACC.';
comment on column fleet.kpi_daily.idle_ratio is 'idle_s / engine_on_s; null without ACC or without engine-on time.';
comment on column fleet.kpi_daily.parked_s is 'Stop time within the day with the engine off (stop seconds minus stop idle), seconds.';
comment on column fleet.kpi_daily.reporting_time is 'GPS time of the first fix of the day with the ignition on; null without ACC or when the ignition never came on.';
comment on column fleet.kpi_daily.shift_start_time is 'When that day''s shift started (shift_start in the device''s time zone); null on days that are not shift weekdays.';
comment on column fleet.kpi_daily.tardiness_s is 'max(0, reporting_time - shift_start_time), seconds; null on non-shift days or without a reporting time.';
comment on column fleet.kpi_daily.shift_s is 'Scheduled shift seconds within the day (0 on non-shift days).';
comment on column fleet.kpi_daily.shift_driving_s is 'Driving seconds within shift hours; a trip crossing a shift boundary is apportioned by time on each side.';
comment on column fleet.kpi_daily.utilisation is 'shift_driving_s / shift_s: share of the scheduled shift spent driving; null on non-shift days.';
comment on column fleet.kpi_daily.after_hours_driving_s is 'Driving seconds outside shift hours (all driving on non-shift days): driving_s - shift_driving_s.';
comment on column fleet.kpi_daily.after_hours_distance_m is 'Distance driven outside shift hours (all of it on non-shift days), metres; a trip crossing a shift boundary is apportioned by time on each side.';
comment on column fleet.kpi_daily.overspeed_count is 'Overspeed runs (fleetd''s, against speed_limit_kmh) of the trips that started that day.';
comment on column fleet.kpi_daily.overspeed_s is 'Time above the speed limit within the day, seconds.';
comment on column fleet.kpi_daily.overspeed_per_100km is 'overspeed_count per 100 km of distance_m; null without distance.';
comment on column fleet.kpi_daily.overspeed_alarms is 'Overspeed alerts the device or vendor raised that day (fleet.alarm_is_overspeed), for comparison with overspeed_count.';
comment on column fleet.kpi_daily.harsh_events is 'Harsh acceleration, braking and cornering alarms that day (fleet.alarm_is_harsh).';
comment on column fleet.kpi_daily.harsh_per_100km is 'harsh_events per 100 km of distance_m; null without distance.';
comment on column fleet.kpi_daily.driving_score is 'fleet.kpi_driving_score: 100 - 2 x overspeed/100 km - 4 x harsh/100 km - 100 x overspeed_s/driving_s, clamped to 0..100; null under 1 km.';
comment on column fleet.kpi_daily.alarms is 'Alarms of the day, all classes.';
comment on column fleet.kpi_daily.alarms_by_class is 'Alarms of the day per class, e.g. {"driving": 3, "power": 1}; classes without alarms are absent.';
comment on column fleet.kpi_daily.trip_fixes is 'Fixes the day''s trips were built from (point_count; split trips by time share).';
comment on column fleet.kpi_daily.expected_fixes is 'Fixes the day''s trips should have had at their regular reporting interval: per trip (point_count - 1) x duration_s / (duration_s - gap_s) + 1.';
comment on column fleet.kpi_daily.coverage is 'min(1, trip_fixes / expected_fixes): share of expected in-trip reports received; null without trips.';
comment on column fleet.kpi_daily.odometer_start_m is 'First non-null device odometer of the day, metres.';
comment on column fleet.kpi_daily.odometer_end_m is 'Last non-null device odometer of the day, metres.';
comment on column fleet.kpi_daily.odometer_delta_m is 'odometer_end_m - odometer_start_m, metres.';
comment on column fleet.kpi_daily.vendor_trips is 'Vendor trips (fleet.vendor_trips) that started that day.';
comment on column fleet.kpi_daily.vendor_distance_m is 'Sum of the vendor trips'' distance_m that started that day; null without vendor trips.';
comment on column fleet.kpi_daily.idle_fuel_l is 'idle_s / 3600 x idle_fuel_l_per_h, litres; null without ACC.';
comment on column fleet.kpi_daily.idle_cost is 'idle_fuel_l x fuel_price_per_l, in currency; null without ACC.';
comment on column fleet.kpi_daily.currency is 'Currency of idle_cost (the device''s analytics settings).';
comment on column fleet.kpi_daily.computed_at is 'When the row was computed.';

-- The local days a refresh covers per device: [p_from[i], p_to[i]] in the device's time zone.
-- An infinite or null bound stands for the device's first (last) data or KPI row.
create function fleet.kpi_refresh_ranges(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
returns table (device_id integer, timezone text, from_date date, to_date date)
language sql stable as $$
    select q.device_id, s.timezone, r.from_date, r.to_date
    from unnest(p_device_ids, p_from, p_to) as q (device_id, t_from, t_to)
    join reporting.v_device_analytics_settings s on s.device_id = q.device_id
    cross join lateral (
        select
            case
                when q.t_from is null or q.t_from = '-infinity' then least(
                    (least(
                        (select min(p.gps_time) from fleet.positions p where p.device_id = q.device_id),
                        (select min(t.start_time) from fleet.trips t where t.device_id = q.device_id),
                        (select min(t.start_time) from fleet.stops t where t.device_id = q.device_id),
                        (select min(a.alarm_time) from fleet.alarms a where a.device_id = q.device_id),
                        (select min(v.start_time) from fleet.vendor_trips v where v.device_id = q.device_id)
                    ) at time zone s.timezone)::date,
                    (select min(k.local_date) from fleet.kpi_daily k where k.device_id = q.device_id))
                when isfinite(q.t_from) then (q.t_from at time zone s.timezone)::date
            end as from_date,
            case
                when q.t_to is null or q.t_to = 'infinity' then greatest(
                    (greatest(
                        (select max(p.gps_time) from fleet.positions p where p.device_id = q.device_id),
                        (select t.end_time from fleet.trips t where t.device_id = q.device_id
                          order by t.start_time desc limit 1),
                        (select t.end_time from fleet.stops t where t.device_id = q.device_id
                          order by t.start_time desc limit 1),
                        (select max(a.alarm_time) from fleet.alarms a where a.device_id = q.device_id),
                        (select max(v.start_time) from fleet.vendor_trips v where v.device_id = q.device_id)
                    ) at time zone s.timezone)::date,
                    (select max(k.local_date) from fleet.kpi_daily k where k.device_id = q.device_id))
                when isfinite(q.t_to) then (q.t_to at time zone s.timezone)::date
            end as to_date
    ) r
    where r.from_date <= r.to_date
$$;

comment on function fleet.kpi_refresh_ranges(integer[], timestamptz[], timestamptz[]) is 'The local days fleet.refresh_kpi_daily covers for each (device, from, to): from the local date of p_from to that of p_to in the device''s time zone; -infinity (or null) from means the device''s first data or KPI row, infinity (or null) to its last.';

-- The KPI rows of the covered days, computed from positions, trips, stops, alarms and vendor
-- trips. Set-based over all devices at once; the base tables are looked up by their
-- (device_id, time) primary keys.
create function fleet.kpi_daily_compute(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
returns table (
    device_id integer, local_date date, timezone text, fixes integer,
    first_fix_time timestamptz, last_fix_time timestamptz, avg_delivery_delay_s double precision,
    has_acc boolean, trips integer, first_start timestamptz, last_stop timestamptz,
    distance_m double precision, driving_s integer, idle_s integer, engine_on_s integer,
    parked_s integer, reporting_time timestamptz, shift_start_time timestamptz, tardiness_s integer,
    shift_s integer, shift_driving_s integer, after_hours_driving_s integer,
    after_hours_distance_m double precision, overspeed_count integer, overspeed_s integer,
    overspeed_alarms integer, harsh_events integer, alarms integer, alarms_by_class jsonb,
    trip_fixes double precision, expected_fixes double precision,
    odometer_start_m double precision, odometer_end_m double precision, vendor_trips integer,
    vendor_distance_m double precision, idle_fuel_l double precision, idle_cost double precision,
    currency text)
language sql stable
-- the planner's row estimates for this query are off by orders of magnitude and would have JIT
-- compile it for seconds; the work is primary-key lookups over at most the covered days' rows
set jit = off
as $$
with days as (
    select distinct r.device_id, r.from_date + i as local_date
    from fleet.kpi_refresh_ranges(p_device_ids, p_from, p_to) r
    cross join lateral generate_series(0, r.to_date - r.from_date) as i
),
-- each covered day with its settings, its bounds and its shift
kday as (
    select d.device_id, d.local_date, s.timezone, s.shift_start, s.shift_end, s.shift_weekdays,
           s.speed_limit_kmh, s.moving_speed_kmh, s.idle_fuel_l_per_h, s.fuel_price_per_l, s.currency,
           d.local_date::timestamp at time zone s.timezone as day_start,
           (d.local_date + 1)::timestamp at time zone s.timezone as day_end,
           extract(isodow from d.local_date)::smallint = any (s.shift_weekdays) as shift_day,
           extract(isodow from d.local_date - 1)::smallint = any (s.shift_weekdays) as prev_shift_day,
           s.shift_end <= s.shift_start as overnight_shift
    from days d
    join reporting.v_device_analytics_settings s on s.device_id = d.device_id
),
-- in-shift windows within the day: today's shift (to its end or midnight) and, for shifts
-- crossing midnight, the part of yesterday's shift after midnight
win as (
    select kday.*,
           case when shift_day then (local_date + shift_start) at time zone timezone end as shift_start_time,
           case when shift_day then least(day_end,
               (local_date + overnight_shift::integer + shift_end) at time zone timezone) end as shift_end_time,
           case when overnight_shift and prev_shift_day then
               (local_date + shift_end) at time zone timezone end as spill_end
    from kday
),
-- the day cut at midnight and the shift boundaries: in-shift and off-shift slots
slot as (
    select w.device_id, w.local_date, b.lo, b.hi,
           coalesce((b.lo >= w.shift_start_time and b.lo < w.shift_end_time) or b.lo < w.spill_end, false) as in_shift
    from win w
    cross join lateral (
        select pt as lo, lead(pt) over (order by pt) as hi
        from (select distinct x as pt
              from unnest(array[w.day_start, w.day_end, w.shift_start_time, w.shift_end_time, w.spill_end]) as x
              where x >= w.day_start and x <= w.day_end) pts
    ) b
    where b.hi > b.lo
),
dev as (
    select device_id, min(timezone) as timezone, min(speed_limit_kmh) as speed_limit_kmh,
           min(moving_speed_kmh) as moving_speed_kmh, min(day_start) as r_lo, max(day_end) as r_hi
    from kday
    group by device_id
),
-- trips and stops overlapping the covered days: those starting inside, and the one segment
-- running at the first day's start (segments of a device never overlap)
trip as (
    select t.device_id, t.start_time, t.end_time, t.distance_m, t.moving_s, t.idle_s, t.overspeed_s,
           t.overspeed_count, t.duration_s, t.point_count, t.gap_s, t.end_reason
    from dev join fleet.trips t on t.device_id = dev.device_id
        and t.start_time >= dev.r_lo and t.start_time < dev.r_hi
    union all
    select t.*
    from dev cross join lateral (
        select t.device_id, t.start_time, t.end_time, t.distance_m, t.moving_s, t.idle_s, t.overspeed_s,
               t.overspeed_count, t.duration_s, t.point_count, t.gap_s, t.end_reason
        from fleet.trips t
        where t.device_id = dev.device_id and t.start_time < dev.r_lo
        order by t.start_time desc limit 1) t
    where t.end_time > dev.r_lo
),
stop as (
    select s.device_id, s.start_time, s.end_time, s.idle_s
    from dev join fleet.stops s on s.device_id = dev.device_id
        and s.start_time >= dev.r_lo and s.start_time < dev.r_hi
    union all
    select s.*
    from dev cross join lateral (
        select s.device_id, s.start_time, s.end_time, s.idle_s
        from fleet.stops s
        where s.device_id = dev.device_id and s.start_time < dev.r_lo
        order by s.start_time desc limit 1) s
    where s.end_time > dev.r_lo
),
seg as (
    select 'trip'::text as kind, device_id, start_time, end_time, distance_m,
           moving_s::double precision as moving_s, idle_s::double precision as idle_s,
           overspeed_s::double precision as overspeed_s, point_count::double precision as point_count,
           case when point_count > 1 and duration_s > gap_s
                then (point_count - 1)::double precision * duration_s / (duration_s - gap_s) + 1
                else point_count::double precision end as expected_fixes
    from trip
    union all
    select 'stop', device_id, start_time, end_time, 0, 0, idle_s, 0, 0, 0
    from stop
),
-- each segment cut into the slots it overlaps: trips into the day's in-shift and off-shift
-- slots, stops (which only add up per day) into days. A zero-length segment goes to the slot
-- it is in.
cut as (
    select 'trip'::text as kind, device_id, local_date, lo, hi, in_shift from slot
    union all
    select 'stop', device_id, local_date, day_start, day_end, false from win
),
piece as (
    select g.*, sl.local_date, sl.in_shift, x.p_lo, x.p_hi,
           x.p_lo = g.start_time and x.p_hi = g.end_time as whole,
           case when g.end_time > g.start_time
                then extract(epoch from x.p_hi - x.p_lo)::double precision
                     / extract(epoch from g.end_time - g.start_time)::double precision
                else 1.0 end as time_share,
           row_number() over (partition by g.kind, g.device_id, g.start_time order by x.p_lo) as idx
    from seg g
    join dev on dev.device_id = g.device_id
    cross join lateral generate_series(0,
        (g.end_time at time zone dev.timezone)::date - (g.start_time at time zone dev.timezone)::date) as i
    join cut sl on sl.kind = g.kind and sl.device_id = g.device_id
        and sl.local_date = (g.start_time at time zone dev.timezone)::date + i
        and case when g.end_time > g.start_time then sl.lo < g.end_time and sl.hi > g.start_time
                 else sl.lo <= g.start_time and g.start_time < sl.hi end
    cross join lateral (select greatest(g.start_time, sl.lo) as p_lo, least(g.end_time, sl.hi) as p_hi) x
),
-- segments crossing a local midnight (or reaching outside the covered days) are apportioned by
-- their own fixes: the legs (consecutive fixes) inside the segment, a leg that straddles a cut
-- split by time. Only trips, and stops with idling, need it; a trip cut only by shift
-- boundaries within one day is apportioned by time (cheap, and the day's totals are exact).
split as materialized (
    select pc.kind, pc.device_id, pc.start_time, pc.end_time,
           min(dev.speed_limit_kmh) as speed_limit_kmh, min(dev.moving_speed_kmh) as moving_speed_kmh,
           array_agg(pc.p_lo order by pc.idx) as los, array_agg(pc.p_hi order by pc.idx) as his
    from piece pc
    join dev on dev.device_id = pc.device_id
    group by pc.kind, pc.device_id, pc.start_time, pc.end_time
    having (count(distinct pc.local_date) > 1 or min(pc.p_lo) > pc.start_time or max(pc.p_hi) < pc.end_time)
       and (pc.kind = 'trip' or max(pc.idle_s) > 0)
),
leg as (
    select f.kind, f.device_id, f.seg_start, sp.los, sp.his, f.t0, f.t1, f.dt,
           case when f.kind = 'trip' and m.travelled then f.d else 0 end as dist,
           case when f.kind = 'trip' and m.travelled then f.dt else 0 end as mov,
           case when coalesce(f.ign0, false) and (f.kind = 'stop' or not m.travelled) then f.dt else 0 end as idle,
           case when f.kind = 'trip' and f.s0 > f.speed_limit_kmh then f.dt else 0 end as over_s
    from (
        select sp.kind, sp.device_id, sp.start_time as seg_start,
               sp.speed_limit_kmh, sp.moving_speed_kmh,
               lag(p.gps_time) over w as t0, p.gps_time as t1,
               extract(epoch from p.gps_time - lag(p.gps_time) over w)::double precision as dt,
               lag(p.speed_kmh::double precision) over w as s0, p.speed_kmh::double precision as s1,
               lag(p.ignition) over w as ign0,
               2 * 6378137.0 * asin(least(1.0, sqrt(
                   power(sin(radians(p.lat - lag(p.lat) over w) / 2), 2)
                   + cos(radians(lag(p.lat) over w)) * cos(radians(p.lat))
                     * power(sin(radians(p.lon - lag(p.lon) over w) / 2), 2)))) as d
        from split sp
        cross join lateral (
            select p.gps_time, p.lat, p.lon, p.speed_kmh, p.ignition
            from fleet.positions p
            where p.device_id = sp.device_id and p.gps_time >= sp.start_time and p.gps_time <= sp.end_time
            offset 0 -- keeps this an index lookup per segment, never a scan of all positions
        ) p
        window w as (partition by sp.kind, sp.device_id, sp.start_time order by p.gps_time)
    ) f
    join split sp on sp.kind = f.kind and sp.device_id = f.device_id and sp.start_time = f.seg_start
    cross join lateral (
        select coalesce(f.s0, f.d / f.dt * 3.6) >= f.moving_speed_kmh
            or coalesce(f.s1, f.d / f.dt * 3.6) >= f.moving_speed_kmh as travelled) m
    where f.dt > 0
),
-- per split segment: its legs' sums in each piece (idx) and over the whole segment (idx null)
leg_sum as (
    select l.kind, l.device_id, l.seg_start, x.idx,
           sum(l.dist * x.share) as dist, sum(l.mov * x.share) as mov,
           sum(l.idle * x.share) as idle, sum(l.over_s * x.share) as over_s
    from leg l
    cross join lateral (
        select null::bigint as idx, 1.0::double precision as share
        union all
        select k, extract(epoch from least(l.t1, l.his[k]) - greatest(l.t0, l.los[k]))::double precision / l.dt
        from generate_subscripts(l.los, 1) as k
        where l.los[k] < l.t1 and l.his[k] > l.t0
    ) x
    group by l.kind, l.device_id, l.seg_start, x.idx
),
-- each piece's share of its segment per measure: 1 for a whole segment; else its legs' share,
-- or its share of the segment's time when the segment has no such legs (fixes gone, none moving)
weighted as (
    select pc.*,
           case when pc.whole then 1.0 when lt.dist > 0 then coalesce(pl.dist, 0) / lt.dist else pc.time_share end as w_dist,
           case when pc.whole then 1.0 when lt.mov > 0 then coalesce(pl.mov, 0) / lt.mov else pc.time_share end as w_mov,
           case when pc.whole then 1.0 when lt.idle > 0 then coalesce(pl.idle, 0) / lt.idle else pc.time_share end as w_idle,
           case when pc.whole then 1.0 when lt.over_s > 0 then coalesce(pl.over_s, 0) / lt.over_s else pc.time_share end as w_over
    from piece pc
    left join leg_sum lt on lt.kind = pc.kind and lt.device_id = pc.device_id
        and lt.seg_start = pc.start_time and lt.idx is null
    left join leg_sum pl on pl.kind = pc.kind and pl.device_id = pc.device_id
        and pl.seg_start = pc.start_time and pl.idx = pc.idx
),
seg_day as (
    select device_id, local_date,
           coalesce(sum(distance_m * w_dist) filter (where kind = 'trip'), 0) as distance_m,
           coalesce(sum(distance_m * w_dist) filter (where kind = 'trip' and in_shift), 0) as shift_distance_m,
           coalesce(sum(moving_s * w_mov) filter (where kind = 'trip'), 0) as driving_s,
           coalesce(sum(moving_s * w_mov) filter (where kind = 'trip' and in_shift), 0) as shift_driving_s,
           coalesce(sum(idle_s * w_idle), 0) as idle_s,
           coalesce(sum(idle_s * w_idle) filter (where kind = 'stop'), 0) as stop_idle_s,
           coalesce(sum(extract(epoch from p_hi - p_lo)::double precision) filter (where kind = 'stop'), 0) as stop_s,
           coalesce(sum(overspeed_s * w_over) filter (where kind = 'trip'), 0) as overspeed_s,
           coalesce(sum(point_count * time_share) filter (where kind = 'trip'), 0) as trip_fixes,
           coalesce(sum(expected_fixes * time_share) filter (where kind = 'trip'), 0) as expected_fixes
    from weighted
    group by device_id, local_date
),
trip_start as (
    select kday.device_id, kday.local_date, count(*)::integer as trips, min(t.start_time) as first_start,
           sum(t.overspeed_count)::integer as overspeed_count
    from kday join trip t on t.device_id = kday.device_id
        and t.start_time >= kday.day_start and t.start_time < kday.day_end
    group by kday.device_id, kday.local_date
),
trip_end as (
    select kday.device_id, kday.local_date, max(t.end_time) as last_stop
    from kday join trip t on t.device_id = kday.device_id
        and t.end_time > kday.day_start and t.end_time <= kday.day_end and t.end_reason <> 'open'
    group by kday.device_id, kday.local_date
),
pos as (
    select kday.device_id, kday.local_date, count(*)::integer as fixes,
           min(p.gps_time) as first_fix_time, max(p.gps_time) as last_fix_time,
           avg(extract(epoch from p.received_at - p.gps_time))::double precision as avg_delivery_delay_s,
           min(p.gps_time) filter (where p.ignition) as reporting_time,
           bool_or(p.ignition is not null) as has_acc
    from kday join fleet.positions p on p.device_id = kday.device_id
        and p.gps_time >= kday.day_start and p.gps_time < kday.day_end
    group by kday.device_id, kday.local_date
),
odo as (
    select pos.device_id, pos.local_date,
           (select p.odometer_m from fleet.positions p
             where p.device_id = pos.device_id and p.gps_time >= pos.first_fix_time
               and p.gps_time <= pos.last_fix_time and p.odometer_m is not null
             order by p.gps_time limit 1) as odometer_start_m,
           (select p.odometer_m from fleet.positions p
             where p.device_id = pos.device_id and p.gps_time >= pos.first_fix_time
               and p.gps_time <= pos.last_fix_time and p.odometer_m is not null
             order by p.gps_time desc limit 1) as odometer_end_m
    from pos
),
alarm_cls as (
    select kday.device_id, kday.local_date, a.alarm_class, count(*) as n,
           count(*) filter (where a.alarm_class = 'driving' and fleet.alarm_is_harsh(a.alarm_type)) as harsh,
           count(*) filter (where a.alarm_class = 'driving' and fleet.alarm_is_overspeed(a.alarm_type)) as overspeed
    from kday join fleet.alarms a on a.device_id = kday.device_id
        and a.alarm_time >= kday.day_start and a.alarm_time < kday.day_end
    group by kday.device_id, kday.local_date, a.alarm_class
),
alarm_day as (
    select device_id, local_date, sum(n)::integer as alarms,
           jsonb_object_agg(alarm_class, n) as alarms_by_class,
           sum(harsh)::integer as harsh_events, sum(overspeed)::integer as overspeed_alarms
    from alarm_cls
    group by device_id, local_date
),
vendor_day as (
    select kday.device_id, kday.local_date, count(*)::integer as vendor_trips,
           sum(v.distance_m) as vendor_distance_m
    from kday join fleet.vendor_trips v on v.device_id = kday.device_id
        and v.start_time >= kday.day_start and v.start_time < kday.day_end
    group by kday.device_id, kday.local_date
),
-- whole units, so that the parts stored add up (engine-on = driving + idle, and so on)
r as (
    select w.*, pos.fixes, pos.first_fix_time, pos.last_fix_time, pos.avg_delivery_delay_s,
           coalesce(pos.has_acc, false) as has_acc, pos.reporting_time,
           ts.trips, ts.first_start, ts.overspeed_count, te.last_stop,
           round(coalesce(sd.distance_m, 0)) as distance_m_r,
           round(coalesce(sd.shift_distance_m, 0)) as shift_distance_m_r,
           round(coalesce(sd.driving_s, 0))::integer as driving_s_r,
           least(round(coalesce(sd.driving_s, 0)), round(coalesce(sd.shift_driving_s, 0)))::integer as shift_driving_s_r,
           round(coalesce(sd.idle_s, 0))::integer as idle_s_r,
           greatest(0, round(coalesce(sd.stop_s, 0) - coalesce(sd.stop_idle_s, 0)))::integer as parked_s_r,
           round(coalesce(sd.overspeed_s, 0))::integer as overspeed_s_r,
           round(coalesce(sd.trip_fixes, 0)::numeric, 2)::double precision as trip_fixes_r,
           round(coalesce(sd.expected_fixes, 0)::numeric, 2)::double precision as expected_fixes_r,
           odo.odometer_start_m, odo.odometer_end_m,
           ad.alarms, ad.alarms_by_class, ad.harsh_events, ad.overspeed_alarms,
           vd.vendor_trips, vd.vendor_distance_m,
           (pos.device_id is not null or sd.device_id is not null or ts.device_id is not null
            or ad.device_id is not null or vd.device_id is not null) as has_data
    from win w
    left join pos on pos.device_id = w.device_id and pos.local_date = w.local_date
    left join odo on odo.device_id = w.device_id and odo.local_date = w.local_date
    left join seg_day sd on sd.device_id = w.device_id and sd.local_date = w.local_date
    left join trip_start ts on ts.device_id = w.device_id and ts.local_date = w.local_date
    left join trip_end te on te.device_id = w.device_id and te.local_date = w.local_date
    left join alarm_day ad on ad.device_id = w.device_id and ad.local_date = w.local_date
    left join vendor_day vd on vd.device_id = w.device_id and vd.local_date = w.local_date
)
select r.device_id, r.local_date, r.timezone, coalesce(r.fixes, 0), r.first_fix_time, r.last_fix_time,
       r.avg_delivery_delay_s, r.has_acc, coalesce(r.trips, 0), r.first_start, r.last_stop,
       r.distance_m_r, r.driving_s_r,
       case when r.has_acc then r.idle_s_r end,
       case when r.has_acc then r.driving_s_r + r.idle_s_r end,
       r.parked_s_r,
       case when r.has_acc then r.reporting_time end,
       r.shift_start_time,
       case when r.has_acc and r.reporting_time is not null and r.shift_start_time is not null
            then greatest(0, round(extract(epoch from r.reporting_time - r.shift_start_time)))::integer end,
       (coalesce(round(extract(epoch from r.shift_end_time - r.shift_start_time)), 0)
        + coalesce(round(extract(epoch from r.spill_end - r.day_start)), 0))::integer,
       r.shift_driving_s_r,
       r.driving_s_r - r.shift_driving_s_r,
       greatest(0, r.distance_m_r - r.shift_distance_m_r),
       coalesce(r.overspeed_count, 0), r.overspeed_s_r,
       coalesce(r.overspeed_alarms, 0), coalesce(r.harsh_events, 0), coalesce(r.alarms, 0),
       coalesce(r.alarms_by_class, '{}'::jsonb),
       r.trip_fixes_r, r.expected_fixes_r,
       r.odometer_start_m, r.odometer_end_m,
       coalesce(r.vendor_trips, 0), r.vendor_distance_m,
       case when r.has_acc then r.idle_s_r / 3600.0 * r.idle_fuel_l_per_h end,
       case when r.has_acc then r.idle_s_r / 3600.0 * r.idle_fuel_l_per_h * r.fuel_price_per_l end,
       r.currency
from r
where r.has_data
$$;

comment on function fleet.kpi_daily_compute(integer[], timestamptz[], timestamptz[]) is 'The fleet.kpi_daily rows (without generated columns) of the days fleet.kpi_refresh_ranges covers, computed from positions, trips, stops, alarms and vendor trips. Read-only; fleet.refresh_kpi_daily stores its result.';

create function fleet.refresh_kpi_daily(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
returns integer
language plpgsql
set jit = off
as $$
declare
    written integer;
begin
    if cardinality(p_device_ids) <> cardinality(p_from) or cardinality(p_device_ids) <> cardinality(p_to) then
        raise exception 'fleet.refresh_kpi_daily: % device ids but % from and % to times',
            cardinality(p_device_ids), cardinality(p_from), cardinality(p_to)
            using errcode = '22023';
    end if;

    delete from fleet.kpi_daily k
    using fleet.kpi_refresh_ranges(p_device_ids, p_from, p_to) r
    where k.device_id = r.device_id and k.local_date between r.from_date and r.to_date;

    insert into fleet.kpi_daily (
        device_id, local_date, timezone, fixes, first_fix_time, last_fix_time, avg_delivery_delay_s,
        has_acc, trips, first_start, last_stop, distance_m, driving_s, idle_s, engine_on_s,
        parked_s, reporting_time, shift_start_time, tardiness_s, shift_s, shift_driving_s,
        after_hours_driving_s, after_hours_distance_m, overspeed_count, overspeed_s,
        overspeed_alarms, harsh_events, alarms, alarms_by_class, trip_fixes, expected_fixes,
        odometer_start_m, odometer_end_m, vendor_trips, vendor_distance_m, idle_fuel_l, idle_cost,
        currency)
    select c.device_id, c.local_date, c.timezone, c.fixes, c.first_fix_time, c.last_fix_time,
           c.avg_delivery_delay_s, c.has_acc, c.trips, c.first_start, c.last_stop, c.distance_m,
           c.driving_s, c.idle_s, c.engine_on_s, c.parked_s, c.reporting_time, c.shift_start_time,
           c.tardiness_s, c.shift_s, c.shift_driving_s, c.after_hours_driving_s,
           c.after_hours_distance_m, c.overspeed_count, c.overspeed_s, c.overspeed_alarms,
           c.harsh_events, c.alarms, c.alarms_by_class, c.trip_fixes, c.expected_fixes,
           c.odometer_start_m, c.odometer_end_m, c.vendor_trips, c.vendor_distance_m,
           c.idle_fuel_l, c.idle_cost, c.currency
    from fleet.kpi_daily_compute(p_device_ids, p_from, p_to) c;
    get diagnostics written = row_count;
    return written;
end $$;

comment on function fleet.refresh_kpi_daily(integer[], timestamptz[], timestamptz[]) is 'Recomputes fleet.kpi_daily for each i: device p_device_ids[i], every local day (device time zone) overlapping [p_from[i], p_to[i]]; -infinity from means from the device''s first data. Deletes the covered rows and inserts the recomputed ones (days without any data keep no row); idempotent. Returns the rows written. The trip builder calls it in the transaction that stores trips and stops; callers must not refresh the same device concurrently.';

revoke execute on function fleet.refresh_kpi_daily(integer[], timestamptz[], timestamptz[]) from public;
revoke execute on function fleet.kpi_daily_compute(integer[], timestamptz[], timestamptz[]) from public;
revoke execute on function fleet.kpi_refresh_ranges(integer[], timestamptz[], timestamptz[]) from public;

grant select on fleet.kpi_daily to fleet_ro;

-- ---------------------------------------------------------------------------------------------
-- Reporting layer

create view reporting.v_kpi_daily as
select k.local_date, k.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
       d.vehicle_type, k.timezone, k.fixes, k.first_fix_time, k.last_fix_time,
       k.avg_delivery_delay_s, k.has_acc, k.trips, k.first_start, k.last_stop, k.distance_m,
       round((k.distance_m / 1000.0)::numeric, 3) as distance_km, k.driving_s, k.idle_s,
       k.engine_on_s, k.idle_ratio, k.parked_s, k.reporting_time, k.shift_start_time,
       k.tardiness_s, k.shift_s, k.shift_driving_s, k.utilisation, k.after_hours_driving_s,
       k.after_hours_distance_m, k.overspeed_count, k.overspeed_s, k.overspeed_per_100km,
       k.overspeed_alarms, k.harsh_events, k.harsh_per_100km, k.driving_score, k.alarms,
       k.alarms_by_class, k.trip_fixes, k.expected_fixes, k.coverage, k.odometer_start_m,
       k.odometer_end_m, k.odometer_delta_m, k.vendor_trips, k.vendor_distance_m, k.idle_fuel_l,
       k.idle_cost, k.currency, k.computed_at
from fleet.kpi_daily k
join fleet.devices d on d.device_id = k.device_id;

comment on view reporting.v_kpi_daily is 'Daily KPIs per vehicle and local day (fleet.kpi_daily) with the vehicle''s registry fields. Columns are defined in docs/KPI_FRAMEWORK.md and in the comments on fleet.kpi_daily.';
comment on column reporting.v_kpi_daily.distance_km is 'distance_m in kilometres, rounded to metres.';

-- Vehicle-day rollups for any date range, ratios recomputed from summed parts.
create function reporting.kpi_rollup(p_from date, p_to date, p_group_by text default 'fleet')
returns table (
    group_key               text,
    days                    integer,
    vehicles                integer,
    vehicles_moved          integer,
    vehicle_days            integer,
    vehicle_days_moved      integer,
    vehicle_days_not_moved  integer,
    vehicle_days_offline    integer,
    trips                   bigint,
    distance_m              double precision,
    driving_s               bigint,
    idle_s                  bigint,
    engine_on_s             bigint,
    idle_ratio              double precision,
    parked_s                bigint,
    shift_s                 bigint,
    shift_driving_s         bigint,
    utilisation             double precision,
    after_hours_driving_s   bigint,
    after_hours_distance_m  double precision,
    overspeed_count         bigint,
    overspeed_s             bigint,
    overspeed_per_100km     double precision,
    overspeed_alarms        bigint,
    harsh_events            bigint,
    harsh_per_100km         double precision,
    driving_score           double precision,
    alarms                  bigint,
    alarms_by_class         jsonb,
    reporting_days          integer,
    late_days               integer,
    avg_tardiness_s         double precision,
    fixes                   bigint,
    trip_fixes              double precision,
    expected_fixes          double precision,
    coverage                double precision,
    last_fix_time           timestamptz,
    odometer_delta_m        double precision,
    vendor_distance_m       double precision,
    idle_fuel_l             double precision,
    idle_cost               double precision,
    currency                text)
language plpgsql stable security invoker
set jit = off
as $$
#variable_conflict use_column
begin
    if p_group_by is null or p_group_by not in ('fleet', 'cost_centre', 'city') then
        raise exception 'reporting.kpi_rollup: p_group_by must be ''fleet'', ''cost_centre'' or ''city'', not %',
            coalesce(quote_literal(p_group_by), 'null') using errcode = '22023';
    end if;
    if p_from is null or p_to is null then
        raise exception 'reporting.kpi_rollup: p_from and p_to are required' using errcode = '22004';
    end if;
    return query
    with dev as (
        select d.device_id, d.created_at, d.active, d.deactivated_at, s.timezone,
               case p_group_by when 'cost_centre' then d.cost_centre when 'city' then d.city
                               else 'fleet' end as gk
        from fleet.devices d
        join reporting.v_device_analytics_settings s on s.device_id = d.device_id
    ),
    -- every vehicle-day of the range: a KPI row, or a device that belonged to the fleet that day
    -- (registered before its end, not deactivated before its start) and has no row: offline
    vd as (
        select dev.device_id as vehicle_id, dev.gk, k.*
        from dev
        cross join generate_series(0, p_to - p_from) as g (i)
        left join fleet.kpi_daily k on k.device_id = dev.device_id and k.local_date = p_from + g.i
            and k.local_date between p_from and p_to
        where k.device_id is not null
           or (dev.created_at < ((p_from + g.i + 1)::timestamp at time zone dev.timezone)
               and (dev.active or dev.deactivated_at >= ((p_from + g.i)::timestamp at time zone dev.timezone)))
    ),
    m as (
        select vd.*, (coalesce(vd.trips, 0) > 0 or coalesce(vd.distance_m, 0) > 0
                      or coalesce(vd.driving_s, 0) > 0) as moved
        from vd
    ),
    cls as (
        select s.gk, jsonb_object_agg(s.key, s.n) as by_class
        from (select m.gk, e.key, sum(e.value::bigint) as n
              from m cross join lateral jsonb_each_text(m.alarms_by_class) as e
              group by m.gk, e.key) s
        group by s.gk
    ),
    agg as (
        select m.gk,
               count(distinct m.vehicle_id)::integer as vehicles,
               count(distinct m.vehicle_id) filter (where m.moved)::integer as vehicles_moved,
               count(*)::integer as vehicle_days,
               count(*) filter (where m.moved)::integer as vehicle_days_moved,
               count(*) filter (where not m.moved)::integer as vehicle_days_not_moved,
               count(*) filter (where coalesce(m.fixes, 0) = 0)::integer as vehicle_days_offline,
               coalesce(sum(m.trips), 0)::bigint as trips,
               coalesce(sum(m.distance_m), 0) as distance_m,
               coalesce(sum(m.driving_s), 0)::bigint as driving_s,
               sum(m.idle_s)::bigint as idle_s,
               sum(m.engine_on_s)::bigint as engine_on_s,
               coalesce(sum(m.parked_s), 0)::bigint as parked_s,
               coalesce(sum(m.shift_s), 0)::bigint as shift_s,
               coalesce(sum(m.shift_driving_s), 0)::bigint as shift_driving_s,
               coalesce(sum(m.after_hours_driving_s), 0)::bigint as after_hours_driving_s,
               coalesce(sum(m.after_hours_distance_m), 0) as after_hours_distance_m,
               coalesce(sum(m.overspeed_count), 0)::bigint as overspeed_count,
               coalesce(sum(m.overspeed_s), 0)::bigint as overspeed_s,
               coalesce(sum(m.overspeed_alarms), 0)::bigint as overspeed_alarms,
               coalesce(sum(m.harsh_events), 0)::bigint as harsh_events,
               coalesce(sum(m.alarms), 0)::bigint as alarms,
               count(m.tardiness_s)::integer as reporting_days,
               count(*) filter (where m.tardiness_s > 0)::integer as late_days,
               avg(m.tardiness_s)::double precision as avg_tardiness_s,
               coalesce(sum(m.fixes), 0)::bigint as fixes,
               coalesce(sum(m.trip_fixes), 0) as trip_fixes,
               coalesce(sum(m.expected_fixes), 0) as expected_fixes,
               max(m.last_fix_time) as last_fix_time,
               sum(m.odometer_delta_m) as odometer_delta_m,
               sum(m.vendor_distance_m) as vendor_distance_m,
               sum(m.idle_fuel_l) as idle_fuel_l,
               sum(m.idle_cost) as idle_cost,
               count(distinct m.currency) as currencies,
               min(m.currency) as currency
        from m
        group by m.gk
    )
    select a.gk, (p_to - p_from + 1)::integer, a.vehicles, a.vehicles_moved, a.vehicle_days,
           a.vehicle_days_moved, a.vehicle_days_not_moved, a.vehicle_days_offline, a.trips,
           a.distance_m, a.driving_s, a.idle_s, a.engine_on_s,
           a.idle_s::double precision / nullif(a.engine_on_s, 0),
           a.parked_s, a.shift_s, a.shift_driving_s,
           a.shift_driving_s::double precision / nullif(a.shift_s, 0),
           a.after_hours_driving_s, a.after_hours_distance_m, a.overspeed_count, a.overspeed_s,
           fleet.kpi_per_100km(a.overspeed_count, a.distance_m), a.overspeed_alarms,
           a.harsh_events, fleet.kpi_per_100km(a.harsh_events, a.distance_m),
           fleet.kpi_driving_score(a.overspeed_count, a.harsh_events, a.distance_m, a.overspeed_s, a.driving_s),
           a.alarms, coalesce(c.by_class, '{}'::jsonb), a.reporting_days, a.late_days,
           a.avg_tardiness_s, a.fixes, a.trip_fixes, a.expected_fixes,
           least(1.0, a.trip_fixes / nullif(a.expected_fixes, 0)),
           a.last_fix_time, a.odometer_delta_m, a.vendor_distance_m, a.idle_fuel_l,
           case when a.currencies = 1 then a.idle_cost end,
           case when a.currencies = 1 then a.currency end
    from agg a
    left join cls c on c.gk is not distinct from a.gk
    order by a.gk;
end $$;

comment on function reporting.kpi_rollup(date, date, text) is 'KPIs of the local days p_from..p_to summed per cost centre, city or the whole fleet (p_group_by = ''cost_centre'' | ''city'' | ''fleet''; vehicles are grouped by their current registry fields). Every ratio is recomputed from the summed parts (idle_ratio = sum idle / sum engine-on, utilisation = sum shift driving / sum shift, per-100-km rates and the driving score from summed events and distance, coverage from summed fixes), never averaged. vehicle_days counts every day a vehicle belonged to the fleet; offline vehicle-days have no fix. idle_cost is null when the group mixes currencies. docs/KPI_FRAMEWORK.md defines each column.';

grant execute on function reporting.kpi_rollup(date, date, text) to fleet_ro;

create view reporting.v_kpi_fleet_daily as
select dt.local_date, r.*
from (select b.lo + g.i as local_date
      from (select min(local_date) as lo, max(local_date) as hi from fleet.kpi_daily) b
      cross join generate_series(0, b.hi - b.lo) as g (i)) dt
cross join lateral reporting.kpi_rollup(dt.local_date, dt.local_date, 'fleet') r;

comment on view reporting.v_kpi_fleet_daily is 'Fleet KPIs per local day (reporting.kpi_rollup of one day, group_key = ''fleet'') from the first to the last day with KPIs; filter on local_date. For a date range call reporting.kpi_rollup(from, to, ''fleet'') instead of summing ratios.';

create view reporting.v_kpi_cost_centre_daily as
select dt.local_date, r.*
from (select b.lo + g.i as local_date
      from (select min(local_date) as lo, max(local_date) as hi from fleet.kpi_daily) b
      cross join generate_series(0, b.hi - b.lo) as g (i)) dt
cross join lateral reporting.kpi_rollup(dt.local_date, dt.local_date, 'cost_centre') as r (cost_centre);

comment on view reporting.v_kpi_cost_centre_daily is 'KPIs per cost centre and local day (reporting.kpi_rollup of one day); filter on local_date. For a date range call reporting.kpi_rollup(from, to, ''cost_centre'').';

create view reporting.v_kpi_city_daily as
select dt.local_date, r.*
from (select b.lo + g.i as local_date
      from (select min(local_date) as lo, max(local_date) as hi from fleet.kpi_daily) b
      cross join generate_series(0, b.hi - b.lo) as g (i)) dt
cross join lateral reporting.kpi_rollup(dt.local_date, dt.local_date, 'city') as r (city);

comment on view reporting.v_kpi_city_daily is 'KPIs per city and local day (reporting.kpi_rollup of one day); filter on local_date. For a date range call reporting.kpi_rollup(from, to, ''city'').';

create view reporting.v_vehicles_not_moved_today as
select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city, s.timezone,
       (now() at time zone s.timezone)::date as local_date,
       lt.end_time as last_trip_end,
       l.gps_time as last_fix_time,
       extract(epoch from now() - l.gps_time)::bigint as fix_age_s,
       (l.gps_time is null or now() - l.gps_time > make_interval(secs => s.offline_after_s)) as offline
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

comment on view reporting.v_vehicles_not_moved_today is 'Active vehicles with no trip starting or running today (local day in each vehicle''s time zone): the latest trip ended before today''s midnight, or there is none. offline tells a silent tracker from a parked vehicle.';
comment on column reporting.v_vehicles_not_moved_today.last_trip_end is 'End of the vehicle''s latest trip; null when it never made one.';
comment on column reporting.v_vehicles_not_moved_today.fix_age_s is 'Age of the newest fix, seconds.';
comment on column reporting.v_vehicles_not_moved_today.offline is 'No fix for longer than offline_after_s (or never).';

create view reporting.v_distance_reconciliation as
select x.*,
       coalesce(abs(x.vendor_diff_m) > x.max_diff_m and x.vendor_diff_ratio > x.max_diff_ratio, false)
           as vendor_mismatch,
       coalesce(abs(x.odometer_diff_m) > x.max_diff_m and x.odometer_diff_ratio > x.max_diff_ratio, false)
           as odometer_mismatch,
       coalesce(abs(x.vendor_diff_m) > x.max_diff_m and x.vendor_diff_ratio > x.max_diff_ratio, false)
       or coalesce(abs(x.odometer_diff_m) > x.max_diff_m and x.odometer_diff_ratio > x.max_diff_ratio, false)
           as flagged
from (
    select k.local_date, k.device_id, d.imei, d.name, d.plate, d.cost_centre, d.city,
           k.distance_m, k.trips, k.vendor_distance_m, k.vendor_trips, k.odometer_delta_m,
           k.vendor_distance_m - k.distance_m as vendor_diff_m,
           abs(k.vendor_distance_m - k.distance_m)
               / nullif(greatest(abs(k.vendor_distance_m), abs(k.distance_m)), 0) as vendor_diff_ratio,
           k.odometer_delta_m - k.distance_m as odometer_diff_m,
           abs(k.odometer_delta_m - k.distance_m)
               / nullif(greatest(abs(k.odometer_delta_m), abs(k.distance_m)), 0) as odometer_diff_ratio,
           t.max_diff_ratio, t.max_diff_m
    from fleet.kpi_daily k
    join fleet.devices d on d.device_id = k.device_id
    cross join (values (0.10::double precision, 1000.0::double precision)) as t (max_diff_ratio, max_diff_m)
    where k.distance_m > 0 or k.vendor_distance_m > 0 or k.odometer_delta_m <> 0
) x;

comment on view reporting.v_distance_reconciliation is 'Per vehicle-day, fleetd''s trip distance beside the vendor''s trip report and the device odometer, with their differences; a source disagrees when it differs from fleetd''s distance by more than max_diff_ratio (10 %) of the larger of the two AND by more than max_diff_m (1 km). The check to run when distances are questioned.';
comment on column reporting.v_distance_reconciliation.distance_m is 'fleetd''s trip distance that day (fleet.kpi_daily.distance_m), metres.';
comment on column reporting.v_distance_reconciliation.vendor_distance_m is 'Sum of the vendor''s trips that started that day, metres; null without vendor trips.';
comment on column reporting.v_distance_reconciliation.odometer_delta_m is 'Last minus first device odometer of the day, metres; null without odometer.';
comment on column reporting.v_distance_reconciliation.vendor_diff_m is 'vendor_distance_m - distance_m, metres.';
comment on column reporting.v_distance_reconciliation.vendor_diff_ratio is '|vendor - fleetd| / max(|vendor|, |fleetd|).';
comment on column reporting.v_distance_reconciliation.odometer_diff_m is 'odometer_delta_m - distance_m, metres.';
comment on column reporting.v_distance_reconciliation.odometer_diff_ratio is '|odometer delta - fleetd| / max(|odometer delta|, |fleetd|).';
comment on column reporting.v_distance_reconciliation.max_diff_ratio is 'Threshold: relative difference above which a source disagrees (together with max_diff_m).';
comment on column reporting.v_distance_reconciliation.max_diff_m is 'Threshold: absolute difference in metres above which a source disagrees (together with max_diff_ratio).';
comment on column reporting.v_distance_reconciliation.vendor_mismatch is 'The vendor distance disagrees beyond both thresholds.';
comment on column reporting.v_distance_reconciliation.odometer_mismatch is 'The odometer delta disagrees beyond both thresholds.';
comment on column reporting.v_distance_reconciliation.flagged is 'vendor_mismatch or odometer_mismatch.';
