-- The KPI rollup gains cost-centre and city filters (FleetOps's pickers narrow every figure to
-- the chosen vehicles; ratios are still recomputed from the summed parts). PostgreSQL cannot add
-- parameters in place, so the function and the daily views built on it are dropped and created
-- again, unchanged apart from the filters.

drop view reporting.v_kpi_fleet_daily;
drop view reporting.v_kpi_cost_centre_daily;
drop view reporting.v_kpi_city_daily;
drop function reporting.kpi_rollup(date, date, text);

create function reporting.kpi_rollup(p_from date, p_to date, p_group_by text default 'fleet',
                                      p_cost_centre text default null, p_city text default null)
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
        -- the same case-insensitive match as the API's cost_centre and city filters
        where (p_cost_centre is null or lower(d.cost_centre) = lower(btrim(p_cost_centre)))
          and (p_city is null or lower(d.city) = lower(btrim(p_city)))
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

comment on function reporting.kpi_rollup(date, date, text, text, text) is 'KPIs of the local days p_from..p_to summed per cost centre, city or the whole fleet (p_group_by = ''cost_centre'' | ''city'' | ''fleet''; vehicles are grouped by their current registry fields), over the vehicles of cost centre p_cost_centre and city p_city when given (case-insensitive; null = all). Every ratio is recomputed from the summed parts (idle_ratio = sum idle / sum engine-on, utilisation = sum shift driving / sum shift, per-100-km rates and the driving score from summed events and distance, coverage from summed fixes), never averaged. vehicle_days counts every day a vehicle belonged to the fleet; offline vehicle-days have no fix. idle_cost is null when the group mixes currencies. docs/KPI_FRAMEWORK.md defines each column.';

grant execute on function reporting.kpi_rollup(date, date, text, text, text) to fleet_ro;

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

-- covered by the default privileges of 0012 when the same role migrates; explicit in case not
grant select on reporting.v_kpi_fleet_daily, reporting.v_kpi_cost_centre_daily,
    reporting.v_kpi_city_daily to fleet_ro;
