-- Operations: the record of backups (taken and verified) and the state of ops alerts.

create table fleet.backups (
    backup_id      bigint generated always as identity primary key,
    file_name      text not null,
    path           text not null,
    started_at     timestamptz not null,
    finished_at    timestamptz not null,
    size_bytes     bigint not null check (size_bytes >= 0),
    sha256         text not null,
    scheduled      boolean not null default false,
    verified_at    timestamptz,
    verify_ok      boolean,
    verify_detail  text,
    check (finished_at >= started_at)
);

create index backups_finished_idx on fleet.backups (finished_at desc);

comment on table fleet.backups is 'One row per backup fleetd took (fleetd backup, or the FLEETD_BACKUP_SCHEDULE): the pg_dump file, its SHA-256, and the outcome of its last verification (restored into a scratch database, row counts and newest GPS time compared). fleetd audit reads it.';
comment on column fleet.backups.file_name is 'Name of the dump file (fleetd-<database>-<UTC time>.dump); its checksum and manifest sit beside it.';
comment on column fleet.backups.path is 'Where the file was written, as the taking process saw it.';
comment on column fleet.backups.scheduled is 'Taken by the schedule (true) or by hand (false); retention of scheduled backups only removes scheduled ones.';
comment on column fleet.backups.verified_at is 'When the backup was last verified; null if never.';
comment on column fleet.backups.verify_ok is 'Whether that verification matched the source snapshot.';
comment on column fleet.backups.verify_detail is 'What the verification compared, or what differed.';

create table fleet.ops_alerts (
    alert       text primary key,
    active      boolean not null,
    message     text not null,
    raised_at   timestamptz not null,
    cleared_at  timestamptz,
    detail      jsonb
);

comment on table fleet.ops_alerts is 'Ops alerts (an ingest job that keeps failing, fleet data gone stale): one row per alert, active while the condition holds. fleetd raises and clears each once per state change (logged, POSTed to FLEETD_ALERT_WEBHOOKS, shown by /readyz and /metrics).';
comment on column fleet.ops_alerts.alert is 'Which alert: ingest_failing:<job>, ingest_stale:<job> or fleet_data_stale.';
comment on column fleet.ops_alerts.message is 'The text of the most recent raise.';
comment on column fleet.ops_alerts.raised_at is 'When the alert was last raised.';
comment on column fleet.ops_alerts.cleared_at is 'When it last cleared; null while active.';

grant select on fleet.backups, fleet.ops_alerts to fleet_ro;
