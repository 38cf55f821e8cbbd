-- Incremental daily KPIs: the per-fix parts of a KPI day (fix count, first and last fix,
-- delivery delay, reporting time, ACC, odometer) are kept as partial aggregates per device and
-- local day that combine exactly, so a refresh reads only the fixes newer than what a day has
-- counted (its watermark) instead of every fix of the day. docs/KPI_FRAMEWORK.md explains how
-- KPIs stay current.

create table fleet.kpi_fix_days (
    device_id              integer not null references fleet.devices (device_id) on delete cascade,
    local_date             date not null,
    timezone               text not null,
    fixes                  integer not null check (fixes > 0),
    first_fix_time         timestamptz not null,
    last_fix_time          timestamptz not null,
    delivery_delay_sum_s   numeric not null,
    has_acc                boolean not null,
    reporting_time         timestamptz,
    odometer_start_m       double precision,
    odometer_end_m         double precision,
    primary key (device_id, local_date),
    check (first_fix_time <= last_fix_time)
);

create index kpi_fix_days_date_idx on fleet.kpi_fix_days (local_date);

comment on table fleet.kpi_fix_days is 'Partial aggregates of the fixes of each (device, local day) that has fixes, maintained by fleet.refresh_kpi_daily: fleet.kpi_daily takes its per-fix columns from here. A row counts exactly the fixes of the day with gps_time <= last_fix_time (the watermark); a refresh adds the fixes after it, and recounts the day from fleet.positions when a fix at or before the watermark is new (a late fix), the time zone changed, or a full recomputation is asked for. Rows go with the positions they summarise (retention).';
comment on column fleet.kpi_fix_days.local_date is 'The day in the device''s time zone.';
comment on column fleet.kpi_fix_days.timezone is 'Time zone the day was cut in; a row of another zone than the device''s current one is recounted.';
comment on column fleet.kpi_fix_days.fixes is 'Fixes counted (all fixes of the day up to last_fix_time).';
comment on column fleet.kpi_fix_days.first_fix_time is 'GPS time of the first fix of the day.';
comment on column fleet.kpi_fix_days.last_fix_time is 'GPS time of the last fix counted: the watermark. Fixes after it are added by the next refresh.';
comment on column fleet.kpi_fix_days.delivery_delay_sum_s is 'Sum of received_at - gps_time over the fixes counted, seconds, exact (numeric): avg_delivery_delay_s = this / fixes.';
comment on column fleet.kpi_fix_days.has_acc is 'Any fix counted reported the ignition state.';
comment on column fleet.kpi_fix_days.reporting_time is 'GPS time of the first fix counted with the ignition on.';
comment on column fleet.kpi_fix_days.odometer_start_m is 'First non-null odometer among the fixes counted, metres.';
comment on column fleet.kpi_fix_days.odometer_end_m is 'Last non-null odometer among the fixes counted, metres.';

grant select on fleet.kpi_fix_days to fleet_ro;

alter table fleet.kpi_backlog add column fixes_from timestamptz;

comment on column fleet.kpi_backlog.fixes_from is 'Earliest GPS time of the fixes the trip builder processed since the last KPI refresh; null when none; -infinity to recount every queued day from fleet.positions. A queued day whose watermark (fleet.kpi_fix_days.last_fix_time) is before it only adds the fixes after the watermark.';

-- The local days a refresh covers: as in migration 0015, except that a finite p_to is cut at the
-- device's last data or KPI row. The KPI step's ranges end at the time of the pass, and the days
-- between a device's last data and then can have no row; walking them cost more than the days
-- with data (a device silent for months and then back queued every day in between).
create or replace function fleet.kpi_refresh_ranges(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
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
            least(case when isfinite(q.t_to) then (q.t_to at time zone s.timezone)::date end,
                greatest(
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
            ) as to_date
    ) r
    where r.from_date <= r.to_date
$$;

comment on function fleet.kpi_refresh_ranges(integer[], timestamptz[], timestamptz[]) is 'The local days fleet.refresh_kpi_daily covers for each (device, from, to): from the local date of p_from to that of p_to in the device''s time zone, but not past the device''s last data or KPI row (later days can have no row); -infinity (or null) from means the device''s first data or KPI row, infinity (or null) to its last.';

-- Brings fleet.kpi_fix_days up to date for the days fleet.kpi_refresh_ranges covers. Per
-- device, p_fixes_from is the earliest GPS time of the fixes new since the last refresh (null:
-- none; -infinity: recount). A day is recounted from its first fix when it has no row, its row
-- is of another time zone, or p_fixes_from is at or before its watermark (a fix the row may
-- have missed); otherwise only the fixes after the watermark are read and combined. Fixes the
-- trip builder has not processed yet (at or after the device's fleet.analytics_backlog
-- positions_from, when that is a time and not a rebuild's -infinity) are left for a later
-- refresh: the mark the trip builder then queues is at or before them, so they are counted
-- exactly once and trips and fixes stay in step.
create function fleet.refresh_kpi_fix_days(
    p_device_ids integer[], p_from timestamptz[], p_to timestamptz[], p_fixes_from timestamptz[])
returns void
language sql
set jit = off
as $$
with day as (
    select distinct r.device_id, r.timezone, r.from_date + i as local_date
    from fleet.kpi_refresh_ranges(p_device_ids, p_from, p_to) r
    cross join lateral generate_series(0, r.to_date - r.from_date) as i
),
-- a device listed twice: the earliest new fix of its entries (min ignores "none")
new_from as (
    select u.device_id, min(u.fixes_from) as fixes_from
    from unnest(p_device_ids, p_fixes_from) as u (device_id, fixes_from)
    group by u.device_id
),
win as (
    select d.device_id, d.local_date, d.timezone,
           k.device_id is not null and k.timezone = d.timezone
               and (n.fixes_from is null or n.fixes_from > k.last_fix_time) as keep,
           k.fixes as k_fixes, k.first_fix_time as k_first, k.last_fix_time as k_last,
           k.delivery_delay_sum_s as k_delay, k.has_acc as k_acc, k.reporting_time as k_reporting,
           k.odometer_start_m as k_odo_start, k.odometer_end_m as k_odo_end,
           d.local_date::timestamp at time zone d.timezone as day_start,
           -- a rebuild mark (-infinity) holds no unprocessed fixes of its own: its pass
           -- recounts every day anyway
           least((d.local_date + 1)::timestamp at time zone d.timezone,
                 case when isfinite(b.positions_from) then b.positions_from
                      else 'infinity' end) as hi
    from day d
    left join new_from n on n.device_id = d.device_id
    left join fleet.kpi_fix_days k on k.device_id = d.device_id and k.local_date = d.local_date
    left join fleet.analytics_backlog b on b.device_id = d.device_id
),
fresh as (
    select w.*, x.*,
           case when x.fixes > 0 and not (w.keep and w.k_odo_start is not null) then
               (select p.odometer_m from fleet.positions p
                 where p.device_id = w.device_id and p.gps_time >= x.lo and p.gps_time <= x.last
                   and p.odometer_m is not null
                 order by p.gps_time limit 1) end as odo_start,
           case when x.fixes > 0 then
               (select p.odometer_m from fleet.positions p
                 where p.device_id = w.device_id and p.gps_time >= x.lo and p.gps_time <= x.last
                   and p.odometer_m is not null
                 order by p.gps_time desc limit 1) end as odo_end
    from win w
    cross join lateral (
        select count(*)::integer as fixes, min(p.gps_time) as lo, max(p.gps_time) as last,
               sum(extract(epoch from p.received_at - p.gps_time)) as delay,
               min(p.gps_time) filter (where p.ignition) as reporting,
               bool_or(p.ignition is not null) as acc
        from fleet.positions p
        where p.device_id = w.device_id
          and p.gps_time >= w.day_start and p.gps_time < w.hi
          and (not w.keep or p.gps_time > w.k_last)
    ) x
),
gone as (
    delete from fleet.kpi_fix_days k
    using fresh f
    where k.device_id = f.device_id and k.local_date = f.local_date and not f.keep and f.fixes = 0
)
insert into fleet.kpi_fix_days as k (
    device_id, local_date, timezone, fixes, first_fix_time, last_fix_time, delivery_delay_sum_s,
    has_acc, reporting_time, odometer_start_m, odometer_end_m)
select f.device_id, f.local_date, f.timezone,
       case when f.keep then f.k_fixes + f.fixes else f.fixes end,
       case when f.keep then f.k_first else f.lo end,
       f.last,
       case when f.keep then f.k_delay + f.delay else f.delay end,
       case when f.keep then f.k_acc or f.acc else f.acc end,
       case when f.keep then coalesce(f.k_reporting, f.reporting) else f.reporting end,
       case when f.keep then coalesce(f.k_odo_start, f.odo_start) else f.odo_start end,
       case when f.keep then coalesce(f.odo_end, f.k_odo_end) else f.odo_end end
from fresh f
where f.fixes > 0
on conflict (device_id, local_date) do update set
    timezone = excluded.timezone, fixes = excluded.fixes, first_fix_time = excluded.first_fix_time,
    last_fix_time = excluded.last_fix_time, delivery_delay_sum_s = excluded.delivery_delay_sum_s,
    has_acc = excluded.has_acc, reporting_time = excluded.reporting_time,
    odometer_start_m = excluded.odometer_start_m, odometer_end_m = excluded.odometer_end_m
$$;

comment on function fleet.refresh_kpi_fix_days(integer[], timestamptz[], timestamptz[], timestamptz[]) is 'Brings fleet.kpi_fix_days up to date for the local days fleet.kpi_refresh_ranges covers: adds the fixes after each day''s watermark, or recounts the day from fleet.positions when p_fixes_from[i] (earliest new fix of device i; null none, -infinity recount) is at or before the watermark, the day has no row or its time zone changed. Fixes not yet processed by the trip builder are left for a later refresh. fleet.refresh_kpi_daily calls it.';

revoke execute on function fleet.refresh_kpi_fix_days(integer[], timestamptz[], timestamptz[], timestamptz[]) from public;

-- The KPI rows of the covered days: as migration 0015 computed them, except that the per-fix
-- columns come from fleet.kpi_fix_days (brought up to date first by fleet.refresh_kpi_daily)
-- instead of every fix of the day.
create or replace function fleet.kpi_daily_compute(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
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
    select kday.device_id, kday.local_date, f.fixes, f.first_fix_time, f.last_fix_time,
           (f.delivery_delay_sum_s / f.fixes)::double precision as avg_delivery_delay_s,
           f.reporting_time, f.has_acc, f.odometer_start_m, f.odometer_end_m
    from kday join fleet.kpi_fix_days f on f.device_id = kday.device_id
        and f.local_date = kday.local_date and f.timezone = kday.timezone
),
odo as (
    select pos.device_id, pos.local_date, pos.odometer_start_m, pos.odometer_end_m
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

comment on function fleet.kpi_daily_compute(integer[], timestamptz[], timestamptz[]) is 'The fleet.kpi_daily rows (without generated columns) of the days fleet.kpi_refresh_ranges covers, computed from fleet.kpi_fix_days (the per-fix columns; current only after fleet.refresh_kpi_fix_days of the same days), trips, stops, alarms, vendor trips and the fixes of segments crossing midnight. Read-only; fleet.refresh_kpi_daily brings the fix aggregates up to date and stores its result.';

create function fleet.refresh_kpi_daily(
    p_device_ids integer[], p_from timestamptz[], p_to timestamptz[], p_fixes_from timestamptz[])
returns integer
language plpgsql
set jit = off
as $$
declare
    written integer;
begin
    if cardinality(p_device_ids) <> cardinality(p_from) or cardinality(p_device_ids) <> cardinality(p_to)
       or cardinality(p_device_ids) <> cardinality(p_fixes_from) then
        raise exception 'fleet.refresh_kpi_daily: % device ids but % from, % to and % fixes_from times',
            cardinality(p_device_ids), cardinality(p_from), cardinality(p_to), cardinality(p_fixes_from)
            using errcode = '22023';
    end if;

    perform fleet.refresh_kpi_fix_days(p_device_ids, p_from, p_to, p_fixes_from);

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

comment on function fleet.refresh_kpi_daily(integer[], timestamptz[], timestamptz[], timestamptz[]) is 'Recomputes fleet.kpi_daily for each i: device p_device_ids[i], every local day (device time zone) overlapping [p_from[i], p_to[i]] (-infinity from: from the device''s first data), reading of the fixes only those after each day''s watermark in fleet.kpi_fix_days when p_fixes_from[i] (earliest GPS time of the fixes new since the last refresh; null none; -infinity recount) is after it. Deletes the covered rows and inserts the recomputed ones (days without any data keep no row); idempotent. Returns the rows written. The KPI step calls it with fleet.kpi_backlog''s marks; callers must not refresh the same device concurrently.';

-- The three-argument form recounts the covered days from fleet.positions (p_fixes_from
-- -infinity): the explicit "recompute these days from scratch".
create or replace function fleet.refresh_kpi_daily(p_device_ids integer[], p_from timestamptz[], p_to timestamptz[])
returns integer
language sql
set jit = off
as $$
    select fleet.refresh_kpi_daily(p_device_ids, p_from, p_to,
        array_fill('-infinity'::timestamptz, array[coalesce(cardinality(p_device_ids), 0)]))
$$;

comment on function fleet.refresh_kpi_daily(integer[], timestamptz[], timestamptz[]) is 'Recomputes fleet.kpi_daily for each i: device p_device_ids[i], every local day (device time zone) overlapping [p_from[i], p_to[i]]; -infinity from means from the device''s first data. Recounts the days'' fix aggregates (fleet.kpi_fix_days) from fleet.positions: a recomputation from scratch. Deletes the covered rows and inserts the recomputed ones (days without any data keep no row); idempotent. Returns the rows written; callers must not refresh the same device concurrently.';

revoke execute on function fleet.refresh_kpi_daily(integer[], timestamptz[], timestamptz[], timestamptz[]) from public;
