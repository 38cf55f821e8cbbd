//! The table of every setting: its key in the TOML file, its environment variable, its default
//! and what it means. `fleetd config`, the loader and the README's table all come from here.

/// How a setting's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
}

/// One configuration setting.
#[derive(Debug)]
pub struct Setting {
    /// Key in the TOML file.
    pub key: &'static str,
    /// Environment variable that sets it.
    pub env: &'static str,
    /// `--flag` on `serve` and `demo`, where there is one.
    pub flag: Option<&'static str>,
    pub kind: Kind,
    /// The default as text; "" where there is none.
    pub default: &'static str,
    /// Printed as `[redacted]` everywhere.
    pub secret: bool,
    pub doc: &'static str,
}

const fn text(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Setting {
    Setting { key, env, flag: None, kind: Kind::Text, default, secret: false, doc }
}

const fn int(
    key: &'static str,
    env: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Setting {
    Setting { key, env, flag: None, kind: Kind::Integer, default, secret: false, doc }
}

/// Every setting fleetd reads. Nothing else in fleetd reads the environment.
pub const SETTINGS: &[Setting] = &[
    Setting {
        flag: Some("--database-url"),
        secret: true,
        ..text(
            "database_url",
            "DATABASE_URL",
            "",
            "PostgreSQL URL. Unset: fleetd starts a private cluster in the data directory.",
        )
    },
    Setting {
        flag: Some("--listen"),
        ..text("listen", "FLEETD_LISTEN", "127.0.0.1:8080", "Address the HTTP server listens on.")
    },
    Setting {
        flag: Some("--data-dir"),
        ..text(
            "data_dir",
            "FLEETD_DATA_DIR",
            "./fleetd-data",
            "Directory for fleetd's own files (the embedded cluster, backups).",
        )
    },
    int(
        "db_max_connections",
        "FLEETD_DB_MAX_CONNECTIONS",
        "6",
        "Connections of the pool the writer, leases and background workers use (1-100); the HTTP API has its own pool (FLEETD_DB_API_CONNECTIONS), so reads can never starve ingest.",
    ),
    int(
        "db_api_connections",
        "FLEETD_DB_API_CONNECTIONS",
        "6",
        "Connections of the HTTP API's own pool (2-100): requests, their session and token checks, exports and health. The process opens at most this plus FLEETD_DB_MAX_CONNECTIONS, plus two for the live stream's listener.",
    ),
    int(
        "db_statement_timeout_ms",
        "FLEETD_DB_STATEMENT_TIMEOUT_MS",
        "30000",
        "Longest a single SQL statement may run, in milliseconds (0 = no limit).",
    ),
    int(
        "db_acquire_timeout_ms",
        "FLEETD_DB_ACQUIRE_TIMEOUT_MS",
        "5000",
        "Longest wait for a free pooled connection, in milliseconds.",
    ),
    text(
        "db_application_name",
        "FLEETD_DB_APPLICATION_NAME",
        "fleetd",
        "application_name fleetd's sessions show in pg_stat_activity.",
    ),
    int(
        "analyst_statement_timeout_ms",
        "FLEETD_ANALYST_STATEMENT_TIMEOUT_MS",
        "300000",
        "Longest a query of the analyst role fleet_ro may run, in milliseconds (1000-86400000): its default statement_timeout, and fleetd cancels fleet_ro queries running longer even when the session changed the setting.",
    ),
    int(
        "analyst_connection_limit",
        "FLEETD_ANALYST_CONNECTION_LIMIT",
        "5",
        "Connections fleet_ro may hold at once (1-1000; the role's CONNECTION LIMIT).",
    ),
    Setting {
        secret: true,
        ..text(
            "analyst_password",
            "FLEETD_ANALYST_PASSWORD",
            "",
            "Password of the read-only role fleet_ro. Unset: the role exists but cannot log in.",
        )
    },
    int(
        "partition_months_ahead",
        "FLEETD_PARTITION_MONTHS_AHEAD",
        "3",
        "Months of positions partitions created ahead of the current one (0-24).",
    ),
    text(
        "pg_bindir",
        "FLEETD_PG_BINDIR",
        "",
        "PostgreSQL server binaries for the embedded cluster. Unset: pg_config --bindir, then /usr/lib/postgresql/<newest>/bin.",
    ),
    text(
        "tracksolid_url",
        "FLEETD_TRACKSOLID_URL",
        "",
        "Tracksolid OpenAPI endpoint of your region, e.g. https://eu-open.tracksolidpro.com/route/rest.",
    ),
    text("tracksolid_app_key", "FLEETD_TRACKSOLID_APP_KEY", "", "Tracksolid OpenAPI app key."),
    Setting {
        secret: true,
        ..text("tracksolid_app_secret", "FLEETD_TRACKSOLID_APP_SECRET", "", "Tracksolid OpenAPI app secret.")
    },
    text("tracksolid_user", "FLEETD_TRACKSOLID_USER", "", "Tracksolid account name."),
    Setting {
        secret: true,
        ..text("tracksolid_password", "FLEETD_TRACKSOLID_PASSWORD", "", "Tracksolid account password.")
    },
    Setting {
        secret: true,
        ..text(
            "push_token",
            "FLEETD_PUSH_TOKEN",
            "",
            "Shared secret of the push receivers (form field token, or ?token= in the registered URL). Unset: pushes are refused (demo generates one).",
        )
    },
    int(
        "push_max_body_bytes",
        "FLEETD_PUSH_MAX_BODY_BYTES",
        "1048576",
        "Largest push request body accepted; larger ones get 413.",
    ),
    text(
        "register_unknown_devices",
        "FLEETD_REGISTER_UNKNOWN_DEVICES",
        "true",
        "Records of IMEIs fleetd does not know register the device (true) or are rejected (false).",
    ),
    int("writer_max_rows", "FLEETD_WRITER_MAX_ROWS", "5000", "The writer flushes once this many records wait."),
    int(
        "writer_max_age_ms",
        "FLEETD_WRITER_MAX_AGE_MS",
        "2",
        "Longest the writer waits for more records before flushing, in milliseconds (what queues during a flush goes into the next one).",
    ),
    int("poll_live_s", "FLEETD_POLL_LIVE_S", "30", "Seconds between live-location polls."),
    int("poll_track_s", "FLEETD_POLL_TRACK_S", "1800", "Seconds between track-history polls."),
    int("poll_alarms_s", "FLEETD_POLL_ALARMS_S", "300", "Seconds between alarm polls."),
    int("poll_trips_s", "FLEETD_POLL_TRIPS_S", "900", "Seconds between polls of the vendor's trip report."),
    int("poll_devices_s", "FLEETD_POLL_DEVICES_S", "21600", "Seconds between device-list syncs."),
    int(
        "trips_interval_s",
        "FLEETD_TRIPS_INTERVAL_S",
        "10",
        "Seconds between trip builder passes over devices with new data (trips, stops, daily KPIs).",
    ),
    int(
        "kpi_interval_s",
        "FLEETD_KPI_INTERVAL_S",
        "60",
        "Least seconds between refreshes of the daily KPIs of the vehicle-days whose trips or alarms changed.",
    ),
    int(
        "retention_positions_days",
        "FLEETD_RETENTION_POSITIONS_DAYS",
        "400",
        "Positions (and the vendor's heartbeats, events, cell fixes and sensor readings) are kept this many days; whole monthly partitions are dropped once entirely older (0 = keep forever).",
    ),
    int(
        "retention_trips_days",
        "FLEETD_RETENTION_TRIPS_DAYS",
        "1100",
        "Trips, stops, geofence events and vendor trips are kept this many days (0 = keep forever).",
    ),
    int("retention_alarms_days", "FLEETD_RETENTION_ALARMS_DAYS", "1100", "Alarms, and notification events with their messages and in-app rows, are kept this many days (0 = keep forever)."),
    int(
        "retention_kpi_days",
        "FLEETD_RETENTION_KPI_DAYS",
        "1830",
        "Daily KPI rows are kept this many days (0 = keep forever).",
    ),
    text(
        "backup_dir",
        "FLEETD_BACKUP_DIR",
        "",
        "Where `fleetd backup` and the schedule write backups. Unset: backups/ in the data directory.",
    ),
    text(
        "backup_schedule",
        "FLEETD_BACKUP_SCHEDULE",
        "",
        "When `serve` takes a backup: a cron expression in UTC (minute hour day month weekday), e.g. 30 2 * * *. Unset: no scheduled backups.",
    ),
    text(
        "backup_verify",
        "FLEETD_BACKUP_VERIFY",
        "true",
        "Each scheduled backup is restored into a scratch database and checked (true) or not (false).",
    ),
    int("backup_keep_daily", "FLEETD_BACKUP_KEEP_DAILY", "7", "Scheduled backups kept: the newest of each of this many days."),
    int("backup_keep_weekly", "FLEETD_BACKUP_KEEP_WEEKLY", "4", "... and of each of this many ISO weeks."),
    int("backup_keep_monthly", "FLEETD_BACKUP_KEEP_MONTHLY", "6", "... and of each of this many months."),
    int(
        "backup_max_age_h",
        "FLEETD_BACKUP_MAX_AGE_H",
        "48",
        "`fleetd audit` fails when the newest backup is older than this many hours.",
    ),
    Setting {
        // a Slack incoming-webhook URL is itself the credential
        secret: true,
        ..text(
            "alert_webhooks",
            "FLEETD_ALERT_WEBHOOKS",
            "",
            "URLs ops alerts are POSTed to as JSON (Slack-compatible `text` field), comma-separated. Unset: alerts are only logged, shown by /readyz and the metrics.",
        )
    },
    int(
        "alert_failures",
        "FLEETD_ALERT_FAILURES",
        "3",
        "Consecutive failed runs of a poll job that raise an ops alert.",
    ),
    int(
        "alert_stale_after_s",
        "FLEETD_ALERT_STALE_AFTER_S",
        "1800",
        "Seconds without any new fix from the fleet that raise the stale-data ops alert.",
    ),
    int("alert_check_s", "FLEETD_ALERT_CHECK_S", "60", "Seconds between ops alert checks."),
    text(
        "public_url",
        "FLEETD_PUBLIC_URL",
        "",
        "The address people open fleetd at, e.g. https://fleet.example.com; links in notifications start with it. Unset: http://<FLEETD_LISTEN>.",
    ),
    text(
        "smtp_host",
        "FLEETD_SMTP_HOST",
        "",
        "Mail server notifications are sent through. Unset: no e-mail notifications.",
    ),
    int(
        "smtp_port",
        "FLEETD_SMTP_PORT",
        "587",
        "Port of the mail server (587 for starttls, 465 for tls, 25 for a local relay).",
    ),
    text(
        "smtp_security",
        "FLEETD_SMTP_SECURITY",
        "starttls",
        "starttls (upgrade to TLS, required), tls (TLS from the first byte) or plain (no TLS: only for a relay on the same machine or network).",
    ),
    text("smtp_user", "FLEETD_SMTP_USER", "", "User name for SMTP AUTH. Unset: no login."),
    Setting {
        secret: true,
        ..text("smtp_password", "FLEETD_SMTP_PASSWORD", "", "Password for SMTP AUTH (with FLEETD_SMTP_USER).")
    },
    text(
        "smtp_from",
        "FLEETD_SMTP_FROM",
        "",
        "Sender of notification e-mails, e.g. fleetd <fleet@example.com> (required with FLEETD_SMTP_HOST).",
    ),
    text(
        "smtp_ca_file",
        "FLEETD_SMTP_CA_FILE",
        "",
        "A PEM certificate to trust for the mail server besides the public roots (a private CA or a self-signed relay).",
    ),
    text(
        "sms_provider",
        "FLEETD_SMS_PROVIDER",
        "africastalking",
        "SMS gateway: africastalking (Africa's Talking SMS API) or generic (JSON POST to FLEETD_SMS_URL).",
    ),
    text(
        "sms_url",
        "FLEETD_SMS_URL",
        "",
        "SMS API base URL (africastalking: default https://api.africastalking.com; sandbox https://api.sandbox.africastalking.com) or the generic gateway's URL.",
    ),
    text(
        "sms_username",
        "FLEETD_SMS_USERNAME",
        "",
        "Africa's Talking app username (sandbox for the sandbox). Unset with no FLEETD_SMS_URL: no SMS notifications.",
    ),
    Setting {
        secret: true,
        ..text(
            "sms_api_key",
            "FLEETD_SMS_API_KEY",
            "",
            "Africa's Talking API key, or the generic gateway's bearer token.",
        )
    },
    text(
        "sms_sender",
        "FLEETD_SMS_SENDER",
        "",
        "Sender id or short code messages come from. Unset: the provider's default.",
    ),
    text(
        "telegram_url",
        "FLEETD_TELEGRAM_URL",
        "https://api.telegram.org",
        "Telegram Bot API base URL.",
    ),
    Setting {
        secret: true,
        ..text(
            "telegram_bot_token",
            "FLEETD_TELEGRAM_BOT_TOKEN",
            "",
            "Token of the Telegram bot that sends notifications (from @BotFather). Unset: no Telegram notifications.",
        )
    },
    int(
        "notify_give_up_h",
        "FLEETD_NOTIFY_GIVE_UP_H",
        "24",
        "Hours after which a notification that still could not be delivered is given up (a dead letter) (1-720).",
    ),
    text(
        "cors_origins",
        "FLEETD_CORS_ORIGINS",
        "",
        "Origins allowed to call the API from a browser (CORS), comma-separated, e.g. https://ops.example.com. Unset: no CORS headers.",
    ),
    text(
        "trusted_proxies",
        "FLEETD_TRUSTED_PROXIES",
        "",
        "Reverse proxies whose X-Forwarded-For is believed, comma-separated CIDRs or addresses, e.g. 127.0.0.1/32,172.18.0.0/16. Unset: none; the TCP peer is the client (login limits and sessions use its address).",
    ),
    text(
        "map_tile_url",
        "FLEETD_MAP_TILE_URL",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "Map tiles for FleetNow, an http(s) URL template with {z}, {x} and {y} (and optionally {s}); none: a plain background, no tile requests.",
    ),
    text(
        "map_tile_attribution",
        "FLEETD_MAP_TILE_ATTRIBUTION",
        "© OpenStreetMap contributors",
        "Attribution shown on the map for its tiles.",
    ),
    int(
        "http_max_connections",
        "FLEETD_HTTP_MAX_CONNECTIONS",
        "8192",
        "Most HTTP connections open at once; at the limit the longest-idle one is closed for a new one. Lowered at start to fit the open-files limit.",
    ),
    int(
        "http_header_timeout_s",
        "FLEETD_HTTP_HEADER_TIMEOUT_S",
        "10",
        "Seconds a connection may take to send a request head, or sit idle between requests.",
    ),
    int(
        "http_body_timeout_s",
        "FLEETD_HTTP_BODY_TIMEOUT_S",
        "30",
        "Seconds allowed to receive a whole request body after its head; later: 408 and the connection closed.",
    ),
    int(
        "http_body_memory_mb",
        "FLEETD_HTTP_BODY_MEMORY_MB",
        "64",
        "MiB of request bodies being received that may be buffered at once beyond the first 64 KiB of each; over it, bodies wait.",
    ),
    int(
        "http_send_timeout_s",
        "FLEETD_HTTP_SEND_TIMEOUT_S",
        "60",
        "Seconds a response may wait for a client that has stopped reading; then the connection is closed.",
    ),
    int(
        "http_max_in_flight",
        "FLEETD_HTTP_MAX_IN_FLIGHT",
        "1024",
        "Most requests handled at once, live streams and exports included; over it: 503 with Retry-After.",
    ),
    int(
        "http_priority_reserve",
        "FLEETD_HTTP_PRIORITY_RESERVE",
        "64",
        "Part of FLEETD_HTTP_MAX_IN_FLIGHT only pushes (/push/*) and /healthz may use.",
    ),
    int(
        "http_uploads_per_address",
        "FLEETD_HTTP_UPLOADS_PER_ADDRESS",
        "32",
        "Most requests one client address may have still sending their body at once; over it: 429 at once. Behind a proxy, set FLEETD_TRUSTED_PROXIES so clients are told apart.",
    ),
    Setting {
        secret: true,
        ..text(
            "metrics_token",
            "FLEETD_METRICS_TOKEN",
            "",
            "Bearer token /metrics requires (at least 16 characters). Unset: /metrics is open.",
        )
    },
    int(
        "exports_per_user",
        "FLEETD_EXPORTS_PER_USER",
        "2",
        "Streamed exports (tracks, trips and stops CSV) one user may run at once (1-100); more get 429.",
    ),
    int(
        "exports_max",
        "FLEETD_EXPORTS_MAX",
        "3",
        "Streamed exports the process runs at once (1-99; fewer than FLEETD_DB_API_CONNECTIONS, so the rest of the API keeps a connection); more get 429.",
    ),
    int(
        "export_stall_timeout_ms",
        "FLEETD_EXPORT_STALL_TIMEOUT_MS",
        "30000",
        "Longest an export waits for its client to read on, in milliseconds (100-3600000); then its query is dropped, its connection returned and the transfer cut short.",
    ),
    int(
        "streams_per_user",
        "FLEETD_STREAMS_PER_USER",
        "20",
        "Live streams (/api/v1/stream) one user may hold open at once (1-1000); more get 429.",
    ),
    int(
        "streams_max",
        "FLEETD_STREAMS_MAX",
        "500",
        "Live streams the process holds open at once (1-100000); more get 429.",
    ),
    int(
        "stream_recheck_s",
        "FLEETD_STREAM_RECHECK_S",
        "60",
        "Seconds between re-checks of every open live stream's credential (1-60); revoking a token, ending a session or deactivating a user ends its streams at once regardless.",
    ),
    int("demo_vehicles", "FLEETD_DEMO_VEHICLES", "25", "Vehicles of the simulator fleetd demo runs."),
    text("log_level", "FLEETD_LOG", "info", "Log filter, e.g. info or fleet_db=debug,info."),
    text("log_format", "FLEETD_LOG_FORMAT", "text", "Log output: text or json."),
];

/// The setting with this TOML key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}
