-- Tables that hold one row per device and see that row rewritten over and over: the writer moves
-- each device's latest position and marks its backlog row in every flush, the trip builder marks
-- KPI days. With full pages (the default fillfactor of 100) every such update lands on another
-- page, so it also inserts into the primary key index and leaves dead rows for vacuum. Room on
-- each page lets PostgreSQL update the row in place (a HOT update: no index entry, the old
-- version pruned on the next visit). The tables are small (one row per vehicle), so the space
-- costs little. Pages written before this keep their fill until they are rewritten.
alter table fleet.device_latest set (fillfactor = 50);
alter table fleet.analytics_backlog set (fillfactor = 50);
alter table fleet.kpi_backlog set (fillfactor = 50);
