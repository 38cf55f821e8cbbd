-- Ingest health: how each ingest job and each device is doing, for analysts and the FleetOps
-- health panels. Thresholds are explained in docs/SCHEMA.md ("Ingest health").
--
-- fleet.ingestion_log holds two kinds of rows: poll runs (one per run of a poller or a
-- backfill, detail {"source": "poller"}, status ok / partial / failed) and the batching
-- writer's per-channel windows (push.* and other channels whose producers do not log their own
-- runs: one row per channel and minute with traffic, detail "writer window", status ok or
-- partial). A run "succeeds" when its status is ok or partial: partial means it finished and
-- stored what it could, some records being rejected or some devices refused.

-- Per job. The job names come from a loose index scan of ingestion_log_job_idx and every
-- figure from index probes per job on (job, started_at), so the cost grows with the number of
-- jobs and of their recent runs, not with the whole log.
create view reporting.v_ingest_health_jobs as
with recursive jobs (job) as (
    (select job from fleet.ingestion_log order by job limit 1)
    union all
    select (select l.job from fleet.ingestion_log l where l.job > j.job order by l.job limit 1)
    from jobs j
    where j.job is not null
)
select j.job,
       case when j.job = 'backfill' then 'backfill'
            when newest.detail ->> 'source' = 'poller' then 'poll'
            when newest.detail = '"writer window"'::jsonb then 'writer_window'
            else 'other' end as run_kind,
       newest.started_at as last_run_at,
       newest.status as last_status,
       newest.error as last_error,
       ok.finished_at as last_success_at,
       fails.n as consecutive_failures,
       day.runs as runs_24h,
       day.rows_in as rows_in_24h,
       day.rows_new_1h as rows_per_hour,
       day.rows_new::float8 / 24 as rows_per_hour_24h,
       day.rows_duplicate::float8 / nullif(day.rows_in, 0) as duplicate_rate,
       day.rows_rejected::float8 / nullif(day.rows_in, 0) as reject_rate,
       extract(epoch from now() - ok.finished_at)::bigint as lag_s,
       limits.stale_after_s,
       case when ok.finished_at is null then 'never'
            when fails.n > 0 then 'failing'
            when now() - ok.finished_at > make_interval(secs => limits.stale_after_s) then 'stale'
            else 'ok' end as status
from jobs j
cross join lateral (
    select l.started_at, l.status, l.error, l.detail
    from fleet.ingestion_log l
    where l.job = j.job
    order by l.started_at desc, l.run_id desc
    limit 1
) newest
left join lateral (
    select l.started_at, coalesce(l.finished_at, l.started_at) as finished_at
    from fleet.ingestion_log l
    where l.job = j.job and l.status in ('ok', 'partial')
    order by l.started_at desc, l.run_id desc
    limit 1
) ok on true
cross join lateral (
    select count(*) as n
    from fleet.ingestion_log l
    where l.job = j.job and l.status = 'failed'
      and l.started_at > coalesce(ok.started_at, '-infinity')
      and l.started_at <= newest.started_at
) fails
cross join lateral (
    select count(*) as runs,
           coalesce(sum(l.rows_in), 0) as rows_in,
           coalesce(sum(l.rows_new), 0) as rows_new,
           coalesce(sum(l.rows_duplicate), 0) as rows_duplicate,
           coalesce(sum(l.rows_rejected), 0) as rows_rejected,
           coalesce(sum(l.rows_new) filter (where l.started_at > now() - interval '1 hour'), 0)
               as rows_new_1h
    from fleet.ingestion_log l
    where l.job = j.job and l.started_at > now() - interval '24 hours'
) day
cross join lateral (
    -- the job's cadence: the median gap between the starts of its last 21 successful runs
    select percentile_cont(0.5) within group (order by g.gap_s) as interval_s
    from (
        select extract(epoch from s.started_at - lag(s.started_at) over (order by s.started_at))
                   ::float8 as gap_s
        from (
            select l.started_at
            from fleet.ingestion_log l
            where l.job = j.job and l.status in ('ok', 'partial')
            order by l.started_at desc
            limit 21
        ) s
    ) g
    where g.gap_s is not null
) cadence
cross join lateral (
    select case when j.job = 'backfill' then null
                when cadence.interval_s is null then 86400
                else greatest(600, round(3 * cadence.interval_s))::integer end as stale_after_s
) limits
where j.job is not null;

comment on view reporting.v_ingest_health_jobs is 'One row per ingest job in fleet.ingestion_log (poll runs and the writer''s per-channel windows): last run, last success, consecutive failures, throughput, duplicate and reject rates over 24 h, lag and status (ok, failing, stale, never). See docs/SCHEMA.md, "Ingest health".';
comment on column reporting.v_ingest_health_jobs.job is 'Job name as logged, e.g. poll.live, poll.track, backfill, push.gps.';
comment on column reporting.v_ingest_health_jobs.run_kind is 'What the job''s newest row is: poll (a poller run), backfill (a manual backfill run), writer_window (the batching writer''s per-channel counts, one row per minute with traffic) or other.';
comment on column reporting.v_ingest_health_jobs.last_run_at is 'When the newest run (or window) started, whatever its status.';
comment on column reporting.v_ingest_health_jobs.last_status is 'Status of the newest run: ok, partial (finished; some records rejected or devices refused), failed or running.';
comment on column reporting.v_ingest_health_jobs.last_error is 'Error or problems of the newest run; null when it ended cleanly.';
comment on column reporting.v_ingest_health_jobs.last_success_at is 'When the newest successful run (status ok or partial) finished; null if none ever did.';
comment on column reporting.v_ingest_health_jobs.consecutive_failures is 'Failed runs since the newest successful one (all failed runs when none succeeded); 0 once a run succeeds again.';
comment on column reporting.v_ingest_health_jobs.runs_24h is 'Runs (or windows) started in the last 24 hours.';
comment on column reporting.v_ingest_health_jobs.rows_in_24h is 'Records received by runs started in the last 24 hours.';
comment on column reporting.v_ingest_health_jobs.rows_per_hour is 'New records stored by runs started in the last hour (a one-hour count, not an average).';
comment on column reporting.v_ingest_health_jobs.rows_per_hour_24h is 'New records stored by runs started in the last 24 hours, divided by 24.';
comment on column reporting.v_ingest_health_jobs.duplicate_rate is 'Duplicate records / records received over the last 24 hours (0-1); null when nothing was received.';
comment on column reporting.v_ingest_health_jobs.reject_rate is 'Rejected records / records received over the last 24 hours (0-1); null when nothing was received.';
comment on column reporting.v_ingest_health_jobs.lag_s is 'Seconds since last_success_at; null when the job never succeeded.';
comment on column reporting.v_ingest_health_jobs.stale_after_s is 'Lag beyond which the job is stale: 3 x its median interval between its last 21 successful runs, at least 600; 86400 with fewer than two successes; null (never stale) for the manual backfill.';
comment on column reporting.v_ingest_health_jobs.status is 'never (no run ever succeeded), failing (the runs since the last success failed), stale (lag_s above stale_after_s), else ok; checked in that order.';

-- Per active device. Last fix and reception from device_latest; delivery delay from the
-- device's positions of the last 24 hours only (the gps_time bound prunes older partitions).
create view reporting.v_ingest_health_devices as
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
cross join reporting.v_analytics_global g
cross join lateral (
    select count(*) as fixes_24h,
           percentile_cont(array[0.5, 0.95]::float8[]) within group (
               order by extract(epoch from p.received_at - p.gps_time)::float8) as p
    from fleet.positions p
    where p.device_id = d.device_id and p.gps_time > now() - interval '24 hours'
) delay
where d.active;

comment on view reporting.v_ingest_health_devices is 'One row per active device: its newest fix and when it arrived (from device_latest), delivery delay percentiles over the last 24 hours, and status (live, stale, offline, never_seen). See docs/SCHEMA.md, "Ingest health".';
comment on column reporting.v_ingest_health_devices.last_gps_time is 'GPS time of the device''s newest fix; null if it never sent one.';
comment on column reporting.v_ingest_health_devices.last_received_at is 'When fleetd stored that newest fix (late fixes older than it do not move it).';
comment on column reporting.v_ingest_health_devices.gps_age_s is 'Seconds since last_gps_time; negative when the device clock runs ahead.';
comment on column reporting.v_ingest_health_devices.fixes_24h is 'Fixes with gps_time in the last 24 hours.';
comment on column reporting.v_ingest_health_devices.delay_p50_s is 'Median delivery delay (received_at - gps_time) of the fixes of the last 24 hours, seconds; percentile_cont, so interpolated between fixes. Null without fixes.';
comment on column reporting.v_ingest_health_devices.delay_p95_s is '95th percentile delivery delay of the fixes of the last 24 hours, seconds; percentile_cont (interpolated). Null without fixes.';
comment on column reporting.v_ingest_health_devices.status is 'never_seen (no fix ever), offline (newest fix older than the global offline_after_s, default 3600 s), stale (older than 600 s), else live; checked in that order.';

-- The one view the health panels and analysts query: jobs and devices side by side.
create view reporting.v_ingest_health as
select 'job'::text as scope,
       j.job as subject,
       j.status,
       j.last_success_at as last_at,
       j.lag_s,
       jsonb_build_object(
           'run_kind', j.run_kind,
           'last_run_at', j.last_run_at,
           'last_status', j.last_status,
           'last_error', j.last_error,
           'consecutive_failures', j.consecutive_failures,
           'runs_24h', j.runs_24h,
           'rows_in_24h', j.rows_in_24h,
           'rows_per_hour', j.rows_per_hour,
           'rows_per_hour_24h', j.rows_per_hour_24h,
           'duplicate_rate', j.duplicate_rate,
           'reject_rate', j.reject_rate,
           'stale_after_s', j.stale_after_s) as detail
from reporting.v_ingest_health_jobs j
union all
select 'device'::text,
       d.imei,
       d.status,
       d.last_gps_time,
       d.gps_age_s,
       jsonb_build_object(
           'device_id', d.device_id,
           'name', d.name,
           'plate', d.plate,
           'cost_centre', d.cost_centre,
           'city', d.city,
           'last_received_at', d.last_received_at,
           'fixes_24h', d.fixes_24h,
           'delay_p50_s', d.delay_p50_s,
           'delay_p95_s', d.delay_p95_s)
from reporting.v_ingest_health_devices d;

comment on view reporting.v_ingest_health is 'Ingest health in one place: a row per ingest job (scope job) and per active device (scope device) with a status, the time it was last fresh and its lag; the rest is in detail. Filter on scope to read one side; v_ingest_health_jobs and v_ingest_health_devices have the same figures as columns.';
comment on column reporting.v_ingest_health.scope is 'job (a row of v_ingest_health_jobs) or device (a row of v_ingest_health_devices).';
comment on column reporting.v_ingest_health.subject is 'The job name, or the device IMEI.';
comment on column reporting.v_ingest_health.status is 'Jobs: ok, failing, stale or never. Devices: live, stale, offline or never_seen.';
comment on column reporting.v_ingest_health.last_at is 'Jobs: when the last successful run finished. Devices: GPS time of the newest fix.';
comment on column reporting.v_ingest_health.lag_s is 'Seconds since last_at.';
comment on column reporting.v_ingest_health.detail is 'The other columns of the job or device view as a JSON object (run_kind, consecutive_failures, rates ... or delay_p50_s, delay_p95_s, fixes_24h ...).';

-- covered by the default privileges of 0012 when the same role migrates; explicit in case not
grant select on reporting.v_ingest_health_jobs, reporting.v_ingest_health_devices,
    reporting.v_ingest_health to fleet_ro;
