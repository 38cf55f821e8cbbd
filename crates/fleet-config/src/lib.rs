//! fleetd's configuration, loaded once at start: defaults, then an optional TOML file, then a
//! `.env` file in the working directory, then the environment, then command-line flags.
//!
//! Every setting is listed in [`settings::SETTINGS`]; a bad value fails the load with a message
//! naming the setting, its variable and where the value came from. Secrets are wrapped in
//! [`Secret`] so they never print.

mod load;
mod notify;
mod secret;
pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{ConfigError, Loader, Source};
pub use notify::{
    NotifyConfig, SmsConfig, SmsProvider, SmtpConfig, SmtpCredentials, SmtpSecurity,
    TelegramConfig, AFRICASTALKING_URL,
};
pub use secret::{redact_url, Secret};

/// The effective configuration of one fleetd process.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL URL; `None` means "start the embedded cluster".
    pub database_url: Option<Secret<String>>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub db: DbConfig,
    /// Password of the read-only analyst role `fleet_ro`; `None` keeps its login disabled.
    pub analyst_password: Option<Secret<String>>,
    /// Limits on the analyst role's sessions.
    pub analyst: AnalystLimits,
    /// The HTTP API's own pool and its limits on exports and live streams.
    pub api: ApiLimits,
    pub partition_months_ahead: u32,
    /// Where the embedded cluster's PostgreSQL binaries are; `None` means look them up.
    pub pg_bindir: Option<PathBuf>,
    pub log: LogConfig,
    /// The Tracksolid account; `None` when no credentials are configured (no pollers).
    pub tracksolid: Option<TracksolidConfig>,
    pub ingest: IngestConfig,
    pub http: HttpConfig,
    /// Vehicles of the simulator `fleetd demo` runs.
    pub demo_vehicles: usize,
    pub retention: RetentionConfig,
    pub backup: BackupConfig,
    pub alerts: AlertConfig,
    /// Notifications: the public address in links, the e-mail, SMS and Telegram channels.
    pub notify: NotifyConfig,
    /// Each setting's effective value as printable text (secrets redacted) and its source.
    pub effective: Vec<EffectiveSetting>,
}

/// The connection pool and session settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbConfig {
    pub max_connections: u32,
    /// `None` is no limit.
    pub statement_timeout: Option<Duration>,
    pub acquire_timeout: Duration,
    pub application_name: String,
}

/// Limits on the analyst role `fleet_ro` (FLEETD_ANALYST_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalystLimits {
    /// Longest a fleet_ro query may run.
    pub statement_timeout: Duration,
    /// The role's CONNECTION LIMIT.
    pub connection_limit: u32,
}

/// The HTTP API's database pool and its limits on long requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Connections of the API's own pool (FLEETD_DB_API_CONNECTIONS).
    pub db_connections: u32,
    pub exports_per_user: usize,
    pub exports_max: usize,
    /// Longest an export waits for its client to read on.
    pub export_stall_timeout: Duration,
    pub streams_per_user: usize,
    pub streams_max: usize,
    /// Interval of the re-check of open streams' credentials.
    pub stream_recheck: Duration,
}

/// How long data is kept, in days; `None` keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionConfig {
    /// Positions and the vendor's per-fix feeds (heartbeats, events, cell fixes, sensors).
    pub positions_days: Option<u32>,
    /// Trips, stops, geofence events, vendor trips.
    pub trips_days: Option<u32>,
    pub alarms_days: Option<u32>,
    pub kpi_days: Option<u32>,
}

/// Backups: where, when, and how many the schedule keeps.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// `None`: `backups/` in the data directory.
    pub dir: Option<PathBuf>,
    /// When `serve` takes a backup (UTC); `None`: never on its own.
    pub schedule: Option<croner::Cron>,
    /// Restore each scheduled backup into a scratch database and compare.
    pub verify: bool,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// Oldest the newest backup may be before `fleetd audit` fails.
    pub max_age: Duration,
}

impl BackupConfig {
    /// The backup directory for a process whose data directory is `data_dir`.
    pub fn dir_in(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }
}

/// Ops alerts: when ingest keeps failing or fleet data goes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// Where alerts are POSTed; empty: only logged, /readyz and metrics. Each URL is a
    /// credential (a Slack incoming-webhook URL is), so it is kept as a secret.
    pub webhooks: Vec<Secret<String>>,
    /// Consecutive failed runs of a poll job that raise an alert.
    pub failures: u32,
    /// No new fix from any device for this long raises the stale-data alert.
    pub stale_after: Duration,
    pub check_every: Duration,
}

/// The Tracksolid account fleetd polls.
#[derive(Debug, Clone)]
pub struct TracksolidConfig {
    pub url: String,
    pub app_key: String,
    pub app_secret: Secret<String>,
    pub user: String,
    pub password: Secret<String>,
}

/// Push receivers, the writer and the pollers.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub push_token: Option<Secret<String>>,
    pub push_max_body_bytes: usize,
    pub register_unknown_devices: bool,
    pub writer_max_rows: usize,
    pub writer_max_age: Duration,
    pub poll_live: Duration,
    pub poll_track: Duration,
    pub poll_alarms: Duration,
    pub poll_trips: Duration,
    pub poll_devices: Duration,
    /// Pause between trip builder passes.
    pub trips_interval: Duration,
    /// Least time between daily KPI refreshes.
    pub kpi_interval: Duration,
}

/// The HTTP server and API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// Most connections open at once (before fitting the open-files limit).
    pub max_connections: usize,
    /// Longest wait for a request head, and longest idle time between requests.
    pub header_timeout: Duration,
    /// Longest time to receive a request body after its head.
    pub body_timeout: Duration,
    /// Bytes of request bodies being received buffered at once beyond each one's free 64 KiB.
    pub body_memory: usize,
    /// Longest a response write may make no progress (the client stopped reading).
    pub send_timeout: Duration,
    /// Most requests in flight at once.
    pub max_in_flight: usize,
    /// The part of `max_in_flight` only pushes and `/healthz` may use.
    pub priority_reserve: usize,
    /// Most requests from one client address still receiving their body at once.
    pub uploads_per_address: usize,
    /// Bearer token `/metrics` requires; `None`: open.
    pub metrics_token: Option<Secret<String>>,
    /// Origins (`https://ops.example.com`, lowercase, no path) whose pages may call the API
    /// with credentials; empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Networks of the reverse proxies whose `X-Forwarded-For` is believed; empty: none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Map tile URL template for FleetNow; empty: a plain background.
    pub map_tile_url: String,
    /// Attribution shown with the tiles.
    pub map_tile_attribution: String,
}

/// How fleetd logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// The log's line format (`FLEETD_LOG_FORMAT`; docs/LOGGING.md shows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (`text`, also accepted as `human`).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// One line of `fleetd config`.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveSetting {
    pub key: &'static str,
    pub env: &'static str,
    /// `None` when unset; secrets are shown as `[redacted]`.
    pub shown: Option<String>,
    pub source: Source,
}

impl Config {
    /// The effective configuration as TOML, secrets redacted, each line saying where it came from.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.effective {
            let origin = match s.source {
                Source::Default => "default".to_owned(),
                Source::File => "config file".to_owned(),
                Source::DotEnv => format!("{} in .env", s.env),
                Source::Env => format!("{} in the environment", s.env),
                Source::Flag => "command-line flag".to_owned(),
            };
            match &s.shown {
                Some(v)
                    if settings::setting(s.key).map(|d| d.kind)
                        == Some(settings::Kind::Integer) =>
                {
                    out.push_str(&format!("{} = {v}  # {origin}\n", s.key))
                }
                Some(v) => out.push_str(&format!("{} = {:?}  # {origin}\n", s.key, v)),
                None => out.push_str(&format!("# {} is unset ({})\n", s.key, s.env)),
            }
        }
        out
    }
}
