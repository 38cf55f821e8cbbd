-- Pages of daily KPIs (GET /kpis/daily, keyset on (local_date, device_id)) read their rows in
-- that order from an index instead of sorting every row of the date range: at 20,000 vehicles a
-- week is 140,000 rows, each turned into JSON before the sort, and one page took over a second.
-- The new index also serves every lookup of the one on local_date alone, which it replaces.
create index kpi_daily_date_device_idx on fleet.kpi_daily (local_date, device_id);
drop index fleet.kpi_daily_date_idx;
