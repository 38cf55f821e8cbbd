-- Login sessions of the web apps. The browser holds a random session id in the fleetd_session
-- cookie; only its SHA-256 hash is stored, so reading this table does not let anyone log in.
-- Not granted to fleet_ro (like users and api_tokens).
create table fleet.sessions (
    session_hash  text primary key check (session_hash ~ '^[0-9a-f]{64}$'),
    user_id       integer not null references fleet.users (user_id) on delete cascade,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz not null,
    last_seen_at  timestamptz not null default now(),
    user_agent    text,
    ip            inet
);

create index sessions_user_idx on fleet.sessions (user_id);
create index sessions_expires_idx on fleet.sessions (expires_at);

comment on table fleet.sessions is 'Login sessions of the web apps (cookie fleetd_session). A session ends at logout, after 7 days unused, 30 days after login at the latest, and when its user is deactivated, deleted or given a new password.';
comment on column fleet.sessions.session_hash is 'Lowercase hex SHA-256 of the session id in the cookie; the id itself is never stored.';
comment on column fleet.sessions.expires_at is 'When the session ends unless used again; each use moves it to 7 days ahead, never past 30 days after created_at.';
comment on column fleet.sessions.last_seen_at is 'Last request made with the session (written at most once a minute).';
comment on column fleet.sessions.user_agent is 'User-Agent of the login request, to tell sessions apart.';
comment on column fleet.sessions.ip is 'Client address of the login request (the proxy''s X-Forwarded-For when fleetd runs behind one on the same machine).';
