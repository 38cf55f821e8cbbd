-- Notifications live streams can trust.
--
-- 1. fleet_changes payloads are signed (HMAC-SHA256) with a key only fleetd's own role can
--    read: any role may call pg_notify on any channel, so without a signature the analyst role
--    could inject events into every open stream. fleetd creates the key on first use (from the
--    operating system's random source) and every fleetd process on the database shares it.
-- 2. Changes that end a credential (a token revoked or deleted, a user deactivated, deleted,
--    given a new password or role, a session ended) notify `fleet_auth`, so every fleetd
--    process re-checks its open streams at once instead of at the next periodic check.

create table fleet.notify_key (
    singleton   boolean primary key default true check (singleton),
    key         bytea not null check (length(key) = 32),
    created_at  timestamptz not null default now()
);

comment on table fleet.notify_key is 'The HMAC-SHA256 key fleetd signs its fleet_changes notifications with, so a notification sent by any other session is ignored. One row; never granted to fleet_ro.';

revoke all on fleet.notify_key from public;

-- one notification per transaction whatever the number of rows: identical payloads sent in one
-- transaction are delivered once
create function fleet.notify_auth_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('fleet_auth', 'changed');
    return null;
end $$;

comment on function fleet.notify_auth_change() is 'Tells fleetd processes (channel fleet_auth) that a credential may have ended, so they re-check open live streams.';

create trigger api_tokens_auth_change
    after update on fleet.api_tokens for each row
    when (old.revoked_at is distinct from new.revoked_at
          or old.expires_at is distinct from new.expires_at
          or old.user_id is distinct from new.user_id)
    execute function fleet.notify_auth_change();

create trigger api_tokens_auth_delete
    after delete on fleet.api_tokens for each row
    execute function fleet.notify_auth_change();

create trigger users_auth_change
    after update on fleet.users for each row
    when (old.active is distinct from new.active
          or old.password_hash is distinct from new.password_hash
          or old.role is distinct from new.role)
    execute function fleet.notify_auth_change();

create trigger users_auth_delete
    after delete on fleet.users for each row
    execute function fleet.notify_auth_change();

create trigger sessions_auth_delete
    after delete on fleet.sessions for each row
    execute function fleet.notify_auth_change();
