create table fleet.users (
    user_id        integer generated always as identity primary key,
    username       text not null check (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    display_name   text not null default '',
    password_hash  text not null,
    role           text not null check (role in ('admin', 'operator', 'viewer')),
    active         boolean not null default true,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    last_login_at  timestamptz
);

create unique index users_username_key on fleet.users (lower(username));

create trigger users_touch before update on fleet.users
    for each row execute function fleet.touch_updated_at();

create table fleet.api_tokens (
    token_id      integer generated always as identity primary key,
    user_id       integer not null references fleet.users (user_id) on delete cascade,
    name          text not null default '',
    token_prefix  text not null,
    token_hash    text not null unique,
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz
);

create index api_tokens_user_idx on fleet.api_tokens (user_id);

comment on table fleet.users is 'People who sign in to fleetd. Roles: admin (everything), operator (also acknowledges alarms, edits vehicles), viewer (reads).';
comment on column fleet.users.password_hash is 'Argon2id PHC string; the password itself is never stored.';
comment on table fleet.api_tokens is 'Bearer tokens for integrations. Only a SHA-256 hash is stored; the token is shown once when created.';
comment on column fleet.api_tokens.token_prefix is 'First characters of the token, so people can tell tokens apart.';
