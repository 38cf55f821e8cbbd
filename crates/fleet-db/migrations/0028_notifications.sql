-- Notifications: events → rules → outbox → dispatcher, with every attempt recorded.
--
-- An event is written in the transaction that stores or derives what happened (the writer's
-- flush, the trip pass, the offline sweep); matching rules write outbox rows and in-app inbox
-- rows in that same transaction, so nothing acknowledged is told twice or never. event_key is
-- stable (re-deriving the same happening yields the same key), so a replay inserts nothing.

create table fleet.notify_events (
    event_id bigint generated always as identity primary key,
    event_key text not null unique check (length(event_key) between 1 and 300),
    device_id integer not null references fleet.devices,
    event_time timestamptz not null,
    kind text not null check (kind in (
        'alarm.safety', 'alarm.security', 'alarm.power', 'alarm.driving', 'alarm.geofence',
        'alarm.device', 'alarm.other', 'geofence.enter', 'geofence.exit', 'overspeed',
        'after_hours', 'idling', 'offline', 'online', 'not_moved', 'power_lost')),
    facts jsonb not null default '{}' check (jsonb_typeof(facts) = 'object'),
    created_at timestamptz not null default now()
);
create index notify_events_device_time on fleet.notify_events (device_id, event_time desc);
create index notify_events_created on fleet.notify_events (created_at);
comment on table fleet.notify_events is 'Notifiable events: stored alarms and what fleetd derives (geofence crossings, sustained overspeed, after-hours movement, idling, offline/online, not moved, external power lost). One row per happening (event_key); rules are matched once, when the row is first inserted.';
comment on column fleet.notify_events.event_key is 'Stable identity of the happening, e.g. alarm:<device>:<time>:<type> or offline:<device>:<last fix>:<threshold>; deriving it again inserts nothing.';
comment on column fleet.notify_events.facts is 'What is known: position, speed, alarm type and name, geofence, duration, limit, threshold (fleet_core::notification::Facts).';

create table fleet.notify_webhooks (
    webhook_id integer generated always as identity primary key,
    name text not null check (length(name) between 1 and 200),
    url text not null check (url ~ '^https?://'),
    secret text not null check (length(secret) >= 16),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table fleet.notify_webhooks is 'Webhook receivers: JSON POSTs signed with HMAC-SHA256 over the body with the webhook''s own secret (X-Fleetd-Signature).';

create table fleet.notify_rules (
    rule_id integer generated always as identity primary key,
    name text not null check (length(name) between 1 and 200),
    enabled boolean not null default true,
    kinds text[] not null check (cardinality(kinds) >= 1),
    scope jsonb not null default '{}' check (jsonb_typeof(scope) = 'object'),
    schedule jsonb check (schedule is null or jsonb_typeof(schedule) = 'object'),
    throttle_s integer not null default 0 check (throttle_s between 0 and 604800),
    params jsonb not null default '{}' check (jsonb_typeof(params) = 'object'),
    user_ids integer[] not null default '{}',
    addresses jsonb not null default '[]' check (jsonb_typeof(addresses) = 'array'),
    webhook_ids integer[] not null default '{}',
    channels text[] not null check (cardinality(channels) >= 1
        and channels <@ array['email', 'sms', 'telegram', 'webhook', 'in_app']),
    severity text not null default 'warning' check (severity in ('info', 'warning', 'critical')),
    created_by integer references fleet.users on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table fleet.notify_rules is 'Who hears of which events, when and how: event kinds, scope (vehicles, cost centres, cities, geofences), schedule in the fleet''s timezone, per-vehicle throttle, per-kind params, recipients (users, bare addresses, webhooks), channels and severity. Changing a rule never re-sends past events.';

create table fleet.notify_contacts (
    contact_id integer generated always as identity primary key,
    user_id integer not null references fleet.users on delete cascade,
    channel text not null check (channel in ('email', 'sms', 'telegram')),
    address text not null check (length(address) between 1 and 254),
    label text not null default '' check (length(label) <= 100),
    created_at timestamptz not null default now(),
    unique (user_id, channel, address)
);
comment on table fleet.notify_contacts is 'A user''s own contact points: e-mail addresses, phone numbers (E.164) and Telegram chat ids.';

create table fleet.notify_prefs (
    user_id integer primary key references fleet.users on delete cascade,
    quiet_days smallint[] not null default '{1,2,3,4,5,6,7}',
    quiet_from time,
    quiet_to time,
    quiet_except_critical boolean not null default true,
    updated_at timestamptz not null default now(),
    check ((quiet_from is null) = (quiet_to is null))
);
comment on table fleet.notify_prefs is 'A user''s quiet hours in the fleet''s timezone: e-mail, SMS and Telegram messages falling in them are dropped, not sent later (they stay in the delivery log as suppressed; the in-app bell still rings); critical rules get through unless quiet_except_critical is off.';

create table fleet.notify_mutes (
    user_id integer not null references fleet.users on delete cascade,
    rule_id integer not null references fleet.notify_rules on delete cascade,
    until timestamptz,
    created_at timestamptz not null default now(),
    primary key (user_id, rule_id)
);
comment on table fleet.notify_mutes is 'A user who silenced a rule for themselves, until a time or (until null) for good.';

create table fleet.notify_throttle (
    rule_id integer not null references fleet.notify_rules on delete cascade,
    device_id integer not null references fleet.devices,
    first_at timestamptz not null,
    last_at timestamptz not null,
    primary key (rule_id, device_id),
    check (first_at <= last_at)
);
comment on table fleet.notify_throttle is 'The earliest and latest event times a rule told of each vehicle, for its minimum interval (throttle_s): an event is told only when it is at least throttle_s after the latest or before the earliest, so a backlog arriving after a live event is throttled like live data.';

create table fleet.notify_outbox (
    delivery_id bigint generated always as identity primary key,
    event_id bigint references fleet.notify_events on delete cascade,
    rule_id integer references fleet.notify_rules on delete set null,
    channel text not null check (channel in ('email', 'sms', 'telegram', 'webhook')),
    user_id integer references fleet.users on delete set null,
    address text not null,
    webhook_id integer references fleet.notify_webhooks on delete set null,
    state text not null default 'pending'
        check (state in ('pending', 'sending', 'sent', 'dead', 'suppressed', 'unknown')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    idempotency_key text not null unique,
    is_test boolean not null default false,
    test_subject jsonb,
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    finished_at timestamptz
);
create unique index notify_outbox_once on fleet.notify_outbox (event_id, rule_id, channel, address)
    where not is_test;
create index notify_outbox_due on fleet.notify_outbox (next_attempt_at) where state = 'pending';
create index notify_outbox_created on fleet.notify_outbox (created_at desc);
comment on table fleet.notify_outbox is 'One message to one address, written with its event; the dispatcher sends it. pending → sending → sent, or back to pending with next_attempt_at on a retryable failure, or dead (permanent failure or give-up horizon passed). suppressed: dropped by the recipient''s quiet hours, never sent. unknown: the process stopped mid-send on a channel without idempotency, so it is not sent again.';
comment on column fleet.notify_outbox.idempotency_key is 'Sent to providers that deduplicate (X-Fleetd-Delivery on webhooks), the same on every attempt.';

create table fleet.notify_attempts (
    delivery_id bigint not null references fleet.notify_outbox on delete cascade,
    attempt integer not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    latency_ms integer,
    outcome text not null default 'started'
        check (outcome in ('started', 'sent', 'retry', 'failed', 'unknown')),
    status_code integer,
    response text check (length(response) <= 2000),
    primary key (delivery_id, attempt)
);
comment on table fleet.notify_attempts is 'Every attempt to send an outbox row: written (started) before the send, completed with the provider''s status and response after it.';

create table fleet.notify_inbox (
    notification_id bigint generated always as identity primary key,
    user_id integer not null references fleet.users on delete cascade,
    event_id bigint references fleet.notify_events on delete cascade,
    rule_id integer references fleet.notify_rules on delete set null,
    device_id integer references fleet.devices,
    event_time timestamptz not null,
    kind text not null,
    severity text not null check (severity in ('info', 'warning', 'critical')),
    title text not null,
    body text not null,
    created_at timestamptz not null default now(),
    read_at timestamptz,
    unique (user_id, event_id)
);
create index notify_inbox_user on fleet.notify_inbox (user_id, notification_id desc);
create index notify_inbox_unread on fleet.notify_inbox (user_id) where read_at is null;
comment on table fleet.notify_inbox is 'In-app notifications (the bell in FleetNow and FleetOps): one per user per event, delivered by the commit that wrote it and announced on the live stream.';

create table fleet.notify_device_state (
    device_id integer primary key references fleet.devices,
    offline_since timestamptz,
    offline_thresholds integer[] not null default '{}',
    power_lost_at timestamptz,
    updated_at timestamptz not null default now()
);
comment on table fleet.notify_device_state is 'Edges the notifiers keep per vehicle: since which fix it is offline and which offline thresholds were already told (so back-online is told once), when external power was lost.';

-- analysts see events and the delivery log, not addresses, contacts or secrets
-- (not an attempt's response: SMTP and gateway errors echo addresses)
grant select on fleet.notify_events to fleet_ro;
grant select (delivery_id, attempt, started_at, finished_at, latency_ms, outcome, status_code)
    on fleet.notify_attempts to fleet_ro;
grant select (delivery_id, event_id, rule_id, channel, state, attempts, created_at, sent_at,
              finished_at, is_test) on fleet.notify_outbox to fleet_ro;
grant select (rule_id, name, enabled, kinds, scope, schedule, throttle_s, params, channels,
              severity, created_at, updated_at) on fleet.notify_rules to fleet_ro;
