-- Migrations 0010, 0014, 0016 and 0022 were edited after they first shipped. fleetd accepts a
-- database that applied an earlier text (fleet_db::migrate records the current checksum), and
-- this migration makes such a database what the current texts create. Each step checks for the
-- earlier state first, so on every other database this migration changes nothing.

-- 0010's first text described the rejects' retention as configurable.
do $catch_up$
begin
    if obj_description('fleet.ingest_rejects'::regclass, 'pg_class') = 'Records that failed validation: why, where from, and their raw form (truncated to 64 KiB). Kept for the configured retention.' then
        comment on table fleet.ingest_rejects is 'Records that failed validation: why, where from, and their raw form (truncated to 64 KiB). Kept 30 days, at most 1,000,000 rows (fleetd prunes hourly).';
    end if;
end $catch_up$;

-- 0014's first text had no mark version, no rebuild on settings or grouping changes; its
-- second had no KPI backlog.
do $catch_up$
begin
    if not exists (
        select from pg_attribute
        where attrelid = 'fleet.analytics_backlog'::regclass and attname = 'version' and not attisdropped
    ) then
        alter table fleet.analytics_backlog add column version bigint not null default 0;
        comment on column fleet.analytics_backlog.version is 'Bumped by every new mark; the trip builder clears a mark only at the version it processed.';
    end if;

    if to_regclass('fleet.kpi_backlog') is null then
        create table fleet.kpi_backlog (
            device_id  integer primary key references fleet.devices (device_id) on delete cascade,
            from_time  timestamptz not null,
            to_time    timestamptz not null,
            marked_at  timestamptz not null default now(),
            version    bigint not null default 0
        );

        comment on table fleet.kpi_backlog is 'Devices whose daily KPIs (fleet.kpi_daily) are out of date for the local days overlapping [from_time, to_time]; filled by the trip builder, emptied by its KPI step.';
        comment on column fleet.kpi_backlog.from_time is 'Earliest changed time; -infinity for every day of the device.';
        comment on column fleet.kpi_backlog.to_time is 'Latest changed time.';
        comment on column fleet.kpi_backlog.marked_at is 'When the oldest unrefreshed change was recorded: now() - marked_at is the KPIs'' lag.';
        comment on column fleet.kpi_backlog.version is 'Bumped by every new mark; the KPI step clears a mark only at the version it refreshed.';
        grant select on fleet.kpi_backlog to fleet_ro;
    end if;

    if to_regprocedure('fleet.mark_analytics_rebuild(integer[], boolean)') is null then
        -- the bodies as 0014 has them, unindented: PostgreSQL keeps a function's text verbatim
create function fleet.mark_analytics_rebuild(p_device_ids integer[], p_trips boolean) returns void
language sql as $$
    insert into fleet.analytics_backlog (device_id, positions_from, kpi_from)
    select id, case when p_trips then '-infinity'::timestamptz end, '-infinity'::timestamptz
    from unnest(p_device_ids) as id
    order by id
    on conflict (device_id) do update set
        positions_from = case when p_trips then '-infinity'::timestamptz
                              else fleet.analytics_backlog.positions_from end,
        kpi_from = '-infinity',
        version = fleet.analytics_backlog.version + 1
$$;

create function fleet.analytics_config_changed() returns trigger
language plpgsql as $$
declare
    r record := coalesce(new, old);
    trips boolean := tg_op <> 'UPDATE' or (old.speed_limit_kmh, old.moving_speed_kmh,
        old.work_stop_min_s, old.long_gap_s, old.idle_min_s, old.min_trip_distance_m,
        old.min_trip_duration_s, old.motion_confirm_distance_m)
        is distinct from (new.speed_limit_kmh, new.moving_speed_kmh, new.work_stop_min_s,
        new.long_gap_s, new.idle_min_s, new.min_trip_distance_m, new.min_trip_duration_s,
        new.motion_confirm_distance_m);
begin
    perform fleet.mark_analytics_rebuild(array(
        select d.device_id from fleet.devices d
        where r.scope = 'global'
           or (r.scope = 'cost_centre' and d.cost_centre = r.scope_key)
           or (r.scope = 'city' and d.city = r.scope_key)
           or (r.scope = 'device' and d.imei = r.scope_key)), trips);
    return null;
end $$;
    end if;
    if not exists (
        select from pg_trigger
        where tgrelid = 'fleet.analytics_config'::regclass and tgname = 'analytics_config_changed'
    ) then
        create trigger analytics_config_changed after insert or update or delete on fleet.analytics_config
            for each row execute function fleet.analytics_config_changed();
    end if;

    if to_regprocedure('fleet.device_grouping_changed()') is null then
create function fleet.device_grouping_changed() returns trigger
language plpgsql as $$
begin
    perform fleet.mark_analytics_rebuild(array[new.device_id], true);
    return null;
end $$;
    end if;
    if not exists (
        select from pg_trigger
        where tgrelid = 'fleet.devices'::regclass and tgname = 'device_grouping_changed'
    ) then
        create trigger device_grouping_changed after update of cost_centre, city on fleet.devices
            for each row when (old.cost_centre is distinct from new.cost_centre or old.city is distinct from new.city)
            execute function fleet.device_grouping_changed();
    end if;
end $catch_up$;

-- 0016's first text judged every device offline by the global offline_after_s. Only that body
-- (it reads v_analytics_global) with that comment is replaced, never a later definition.
do $catch_up$
begin
    if pg_get_viewdef('reporting.v_ingest_health_devices'::regclass) like '%v_analytics_global%'
       and col_description('reporting.v_ingest_health_devices'::regclass,
            (select attnum from pg_attribute
             where attrelid = 'reporting.v_ingest_health_devices'::regclass and attname = 'status'))
       = 'never_seen (no fix ever), offline (newest fix older than the global offline_after_s, default 3600 s), stale (older than 600 s), else live; checked in that order.' then
        create or replace view reporting.v_ingest_health_devices as
        select d.device_id, d.imei, d.name, d.plate, d.cost_centre, d.city,
               l.gps_time as last_gps_time,
               l.received_at as last_received_at,
               extract(epoch from now() - l.gps_time)::bigint as gps_age_s,
               delay.fixes_24h,
               delay.p[1] as delay_p50_s,
               delay.p[2] as delay_p95_s,
               case when l.device_id is null then 'never_seen'
                    when now() - l.gps_time > make_interval(secs => g.offline_after_s) then 'offline'
                    when now() - l.gps_time > interval '10 minutes' then 'stale'
                    else 'live' end as status
        from fleet.devices d
        left join fleet.device_latest l using (device_id)
        join reporting.v_device_analytics_settings g using (device_id)
        cross join lateral (
            select count(*) as fixes_24h,
                   percentile_cont(array[0.5, 0.95]::float8[]) within group (
                       order by extract(epoch from p.received_at - p.gps_time)::float8) as p
            from fleet.positions p
            where p.device_id = d.device_id and p.gps_time > now() - interval '24 hours'
        ) delay
        where d.active;
        comment on column reporting.v_ingest_health_devices.status is 'never_seen (no fix ever), offline (newest fix older than the device''s offline_after_s, overrides applied, default 3600 s), stale (older than 600 s), else live; checked in that order.';
    end if;
end $catch_up$;

-- 0022's first text left the comment 0017 gave fleet.sessions.ip.
do $catch_up$
begin
    if col_description('fleet.sessions'::regclass,
            (select attnum from pg_attribute
             where attrelid = 'fleet.sessions'::regclass and attname = 'ip')) = 'Client address of the login request (the proxy''s X-Forwarded-For when fleetd runs behind one on the same machine).' then
        comment on column fleet.sessions.ip is 'Client address of the login request: the TCP peer, or behind a proxy listed in FLEETD_TRUSTED_PROXIES the right-most X-Forwarded-For address that is not a trusted proxy.';
    end if;
end $catch_up$;
