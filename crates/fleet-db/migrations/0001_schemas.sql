-- fleetd keeps its base tables in schema fleet and the read layer analysts and dashboards use
-- in schema reporting.
create schema if not exists fleet;
create schema if not exists reporting;

comment on schema fleet is 'fleetd base tables: devices, positions, alarms, trips, configuration and ingest bookkeeping.';
comment on schema reporting is 'fleetd read layer: views and rollups for analysts and dashboards. Safe to query; nothing here is written by hand.';

-- keep updated_at honest on every table that has one
create function fleet.touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end $$;
