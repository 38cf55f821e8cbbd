create table fleet.ingestion_log (
    run_id          bigint generated always as identity primary key,
    job             text not null,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    status          text not null default 'running' check (status in ('running', 'ok', 'partial', 'failed')),
    rows_in         integer not null default 0 check (rows_in >= 0),
    rows_new        integer not null default 0 check (rows_new >= 0),
    rows_duplicate  integer not null default 0 check (rows_duplicate >= 0),
    rows_rejected   integer not null default 0 check (rows_rejected >= 0),
    error           text,
    detail          jsonb,
    check (finished_at is null or finished_at >= started_at)
);

create index ingestion_log_job_idx on fleet.ingestion_log (job, started_at desc);

create table fleet.poll_cursors (
    job          text not null,
    device_id    integer references fleet.devices (device_id) on delete cascade,
    cursor_time  timestamptz not null,
    updated_at   timestamptz not null default now(),
    unique nulls not distinct (job, device_id)
);

create trigger poll_cursors_touch before update on fleet.poll_cursors
    for each row execute function fleet.touch_updated_at();

create table fleet.ingest_rejects (
    reject_id    bigint generated always as identity primary key,
    received_at  timestamptz not null default now(),
    channel      text not null,
    reason       text not null,
    imei         text,
    raw          text not null,
    run_id       bigint references fleet.ingestion_log (run_id) on delete set null
);

create index ingest_rejects_received_idx on fleet.ingest_rejects (received_at desc);

comment on table fleet.ingestion_log is 'One row per ingest job run (a poll, a push window, a writer flush window): rows received, new, duplicate and rejected, and the error if it failed. The raw material of ingest health.';
comment on column fleet.ingestion_log.job is 'Job name, e.g. poll.live, poll.track, poll.alarms, push.gps.';
comment on column fleet.ingestion_log.rows_in is 'Records received in the run.';
comment on column fleet.ingestion_log.rows_new is 'Records stored for the first time.';
comment on column fleet.ingestion_log.rows_duplicate is 'Records already stored (re-ingest is a no-op).';
comment on column fleet.ingestion_log.rows_rejected is 'Records that failed validation; each is in ingest_rejects.';
comment on table fleet.poll_cursors is 'How far each polling job has fetched, per device (device_id) or for the whole account (device_id null).';
comment on column fleet.poll_cursors.cursor_time is 'GPS time up to which data has been fetched; the next poll starts a little before it.';
comment on table fleet.ingest_rejects is 'Records that failed validation: why, where from, and their raw form (truncated to 64 KiB). Kept for the configured retention.';
comment on column fleet.ingest_rejects.channel is 'Where the record came from, e.g. push.gps or poll.track.';
comment on column fleet.ingest_rejects.reason is 'Why it was rejected.';
