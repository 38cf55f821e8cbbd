-- Failed-login counts shared by every fleetd process on the database. A row per (account,
-- client address) and one per client address across accounts (username ''). Each failure raises
-- the count; past a few free failures a login must wait a delay that doubles per failure up to
-- a cap; the count falls by one for each quiet period without failures. Rows whose count has
-- fallen to zero (forget_at passed) are deleted. Not granted to fleet_ro: it names accounts
-- and the addresses trying them.
create table fleet.login_throttle (
    username         text not null check (length(username) <= 64),
    address          text not null check (length(address) <= 64),
    failures         integer not null check (failures >= 0),
    last_failure_at  timestamptz not null,
    forget_at        timestamptz not null,
    primary key (username, address)
);

create index login_throttle_forget_idx on fleet.login_throttle (forget_at);

comment on table fleet.login_throttle is 'Failed logins per (account, client address) and per client address, for the growing login delays. Kept only while they still count.';
comment on column fleet.login_throttle.username is 'Lowercase username tried; '''' for the count of the address across all accounts.';
comment on column fleet.login_throttle.address is 'Client address (IPv6 by its /64), or ''unknown''.';
comment on column fleet.login_throttle.failures is 'Failures still counting, including logins in progress (an attempt counts from its start and is forgiven when it succeeds).';
comment on column fleet.login_throttle.last_failure_at is 'Start of the latest counted attempt; delays and decay are measured from it.';
comment on column fleet.login_throttle.forget_at is 'When the count will have decayed to zero; the row is deleted after it.';
