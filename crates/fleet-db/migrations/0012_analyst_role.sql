-- fleet_ro: the read-only login for analysts. Created without login; fleetd sets its password
-- (and enables login) from FLEETD_ANALYST_PASSWORD at start, and disables login when unset.
-- Roles are cluster-wide: when the role already exists (another fleetd database on the same
-- server, or created by a DBA) it is reused.
do $$
begin
    if not exists (select from pg_roles where rolname = 'fleet_ro') then
        begin
            create role fleet_ro nologin;
        exception when duplicate_object or unique_violation then
            null; -- created concurrently by another database's migration
        end;
    end if;
end $$;

grant usage on schema fleet, reporting to fleet_ro;

-- everything analysts need; never users or api_tokens (password and token hashes)
grant select on
    fleet.devices, fleet.positions, fleet.device_latest, fleet.alarms, fleet.trips,
    fleet.analytics_config, fleet.geofences, fleet.ingestion_log, fleet.poll_cursors,
    fleet.ingest_rejects
to fleet_ro;

grant select on all tables in schema reporting to fleet_ro;
alter default privileges in schema reporting grant select on tables to fleet_ro;

-- nobody but fleetd creates objects in public (PostgreSQL 15 already defaults to this; older
-- databases upgraded in place may not). Database-level privileges (temporary tables) are not
-- part of a database's catalog copy, so fleetd tightens those at every start instead.
revoke create on schema public from public;
