-- A BRIN index on the GPS time of fixes: the full trip rebuild reads fleet.positions in windows
-- of GPS time (one pass over the table for every device at once instead of one pass per chunk
-- of devices), and fixes are stored in about the order they were taken, so each window's pages
-- form a few block ranges. The index is a few hundred kilobytes for a year of fixes and costs
-- the writer almost nothing. autosummarize lets autovacuum summarize ranges as they fill;
-- ranges not yet summarized are always read, so a window never misses a fix.
create index positions_gps_time_brin on fleet.positions using brin (gps_time)
    with (autosummarize = on);

comment on index fleet.positions_gps_time_brin is 'Block ranges by gps_time: lets the full trip rebuild read fixes one window of GPS time at a time.';
