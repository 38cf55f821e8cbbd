//! Layering of the configuration sources and conversion into the typed [`Config`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::settings::{setting, Kind, Setting, SETTINGS};
use crate::{
    redact_url, AlertConfig, AnalystLimits, ApiLimits, BackupConfig, Config, DbConfig,
    EffectiveSetting, HttpConfig, IngestConfig, LogConfig, LogFormat, RetentionConfig, Secret,
    TracksolidConfig,
};

/// Where a setting's effective value came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    File,
    DotEnv,
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "the default",
            Source::File => "the config file",
            Source::DotEnv => ".env",
            Source::Env => "the environment",
            Source::Flag => "a command-line flag",
        })
    }
}

/// A configuration that cannot be used; the message names the setting and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    ReadFile { path: PathBuf, cause: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("config file {path}: unknown setting `{key}` (run `fleetd config` to list them)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("cannot read {path}: {message}")]
    DotEnv { path: PathBuf, message: String },
    #[error("invalid setting {key} ({env}, from {origin}): {problem}")]
    Invalid { key: &'static str, env: &'static str, origin: Source, problem: String },
}

type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Builds a [`Config`] from its sources. `Loader::new()` reads the real environment and
/// `./.env`; tests swap both.
pub struct Loader {
    file: Option<PathBuf>,
    dotenv: Option<PathBuf>,
    env: EnvLookup,
    flags: Vec<(&'static str, String)>,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader").field("file", &self.file).field("dotenv", &self.dotenv).finish()
    }
}

impl Default for Loader {
    fn default() -> Self {
        Self::new()
    }
}

impl Loader {
    /// Reads the process environment and `.env` in the working directory.
    pub fn new() -> Self {
        Self {
            file: None,
            dotenv: Some(PathBuf::from(".env")),
            env: Box::new(|k| std::env::var(k).ok()),
            flags: Vec::new(),
        }
    }

    /// A TOML file layered over the defaults (a missing file is an error: it was asked for).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// The `.env` file to read (a missing one is fine); `None` reads none.
    pub fn dotenv(mut self, path: Option<PathBuf>) -> Self {
        self.dotenv = path;
        self
    }

    /// Replaces the environment lookup (tests).
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.env = Box::new(lookup);
        self
    }

    /// A command-line flag's value for the setting with TOML key `key`; highest precedence.
    pub fn flag(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.flags.push((key, value.into()));
        self
    }

    pub fn load(self) -> Result<Config, ConfigError> {
        let mut layered: BTreeMap<&'static str, (String, Source)> = BTreeMap::new();
        for s in SETTINGS.iter().filter(|s| !s.default.is_empty()) {
            layered.insert(s.key, (s.default.to_owned(), Source::Default));
        }
        if let Some(path) = &self.file {
            for (key, value) in read_file(path)? {
                layered.insert(key, (value, Source::File));
            }
        }
        let dotenv = match &self.dotenv {
            Some(path) => read_dotenv(path)?,
            None => BTreeMap::new(),
        };
        for s in SETTINGS {
            if let Some(v) = dotenv.get(s.env).filter(|v| !v.is_empty()) {
                layered.insert(s.key, (v.clone(), Source::DotEnv));
            }
            if let Some(v) = (self.env)(s.env).filter(|v| !v.is_empty()) {
                layered.insert(s.key, (v, Source::Env));
            }
        }
        for (key, value) in self.flags {
            layered.insert(key, (value, Source::Flag));
        }
        build(layered)
    }
}

fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| ConfigError::ReadFile { path: path.to_owned(), cause })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::ParseFile {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(s) = setting(&key) else {
            return Err(ConfigError::UnknownKey { path: path.to_owned(), key });
        };
        let text = match (s.kind, value) {
            (Kind::Text, toml::Value::String(v)) => v,
            (Kind::Integer, toml::Value::Integer(v)) => v.to_string(),
            (kind, other) => {
                let expected = if kind == Kind::Text { "a string" } else { "a whole number" };
                return Err(invalid(
                    s,
                    Source::File,
                    format!("expected {expected}, found {}", other.type_str()),
                ));
            }
        };
        out.push((s.key, text));
    }
    Ok(out)
}

fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new())
        }
        Err(e) => {
            return Err(ConfigError::DotEnv { path: path.to_owned(), message: e.to_string() })
        }
    };
    iter.map(|item| {
        item.map_err(|e| ConfigError::DotEnv { path: path.to_owned(), message: e.to_string() })
    })
    .collect()
}

fn invalid(s: &Setting, source: Source, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: s.key, env: s.env, origin: source, problem: problem.into() }
}

/// Reads the layered text values into typed settings, naming the setting on any problem.
pub(crate) struct Typed {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Typed {
    pub(crate) fn def(key: &str) -> &'static Setting {
        setting(key).unwrap_or_else(|| unreachable!("setting {key} is in SETTINGS"))
    }

    pub(crate) fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some((v, source)) => {
                parse(v).map(Some).map_err(|p| invalid(Self::def(key), *source, p))
            }
        }
    }

    pub(crate) fn required<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parsed(key, parse)?
            .ok_or_else(|| invalid(Self::def(key), Source::Default, "must be set"))
    }

    /// Whether `key` has a value (set, or a default).
    pub(crate) fn is_set(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// A problem with `key`'s value that only shows against another setting.
    pub(crate) fn invalid(&self, key: &str, problem: String) -> ConfigError {
        let source = self.values.get(key).map_or(Source::Default, |(_, s)| *s);
        invalid(Self::def(key), source, problem)
    }
}

pub(crate) fn integer(min: i64, max: i64) -> impl Fn(&str) -> Result<i64, String> {
    move |v| {
        let n: i64 = v.trim().parse().map_err(|_| format!("{v:?} is not a whole number"))?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is outside the allowed range {min}..={max}"))
        }
    }
}

fn build(values: BTreeMap<&'static str, (String, Source)>) -> Result<Config, ConfigError> {
    let t = Typed { values };
    let database_url = t.parsed("database_url", |v| {
        if v.starts_with("postgres://") || v.starts_with("postgresql://") {
            Ok(Secret::new(v.to_owned()))
        } else {
            Err("must start with postgres:// or postgresql://".to_owned())
        }
    })?;
    let listen = t.required("listen", |v| {
        v.parse::<SocketAddr>().map_err(|_| format!("{v:?} is not an address like 127.0.0.1:8080"))
    })?;
    let data_dir = t.required("data_dir", |v| Ok(PathBuf::from(v)))?;
    let max_connections = t.required("db_max_connections", integer(1, 100))? as u32;
    let statement_ms = t.required("db_statement_timeout_ms", integer(0, 86_400_000))? as u64;
    let acquire_ms = t.required("db_acquire_timeout_ms", integer(1, 600_000))? as u64;
    let application_name = t.required("db_application_name", |v| {
        if v.len() < 64 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            Ok(v.to_owned())
        } else {
            Err("must be printable ASCII, shorter than 64 characters".to_owned())
        }
    })?;
    let analyst_password = t.parsed("analyst_password", |v| {
        if v.len() >= 12 {
            Ok(Secret::new(v.to_owned()))
        } else {
            Err("must be at least 12 characters".to_owned())
        }
    })?;
    let analyst = AnalystLimits {
        statement_timeout: Duration::from_millis(
            t.required("analyst_statement_timeout_ms", integer(1_000, 86_400_000))? as u64,
        ),
        connection_limit: t.required("analyst_connection_limit", integer(1, 1_000))? as u32,
    };
    let api = ApiLimits {
        db_connections: t.required("db_api_connections", integer(2, 100))? as u32,
        exports_per_user: t.required("exports_per_user", integer(1, 100))? as usize,
        exports_max: t.required("exports_max", integer(1, 99))? as usize,
        export_stall_timeout: Duration::from_millis(
            t.required("export_stall_timeout_ms", integer(100, 3_600_000))? as u64,
        ),
        streams_per_user: t.required("streams_per_user", integer(1, 1_000))? as usize,
        streams_max: t.required("streams_max", integer(1, 100_000))? as usize,
        stream_recheck: Duration::from_secs(t.required("stream_recheck_s", integer(1, 60))? as u64),
    };
    if api.exports_max >= api.db_connections as usize {
        return Err(t.invalid(
            "exports_max",
            format!(
                "must be less than db_api_connections ({}), so the rest of the API keeps a connection",
                api.db_connections
            ),
        ));
    }
    let partition_months_ahead = t.required("partition_months_ahead", integer(0, 24))? as u32;
    let pg_bindir = t.parsed("pg_bindir", |v| Ok(PathBuf::from(v)))?;
    let level = t.required("log_level", |v| Ok(v.to_owned()))?;
    let format = t.required("log_format", |v| match v {
        // `human` is this format's earlier name, still accepted so existing settings keep working
        "text" | "human" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of text, json")),
    })?;

    let tracksolid = tracksolid(&t)?;
    let secs = |key: &str, min: i64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(t.required(key, integer(min, 7 * 86_400))? as u64))
    };
    let ingest = IngestConfig {
        push_token: t.parsed("push_token", |v| {
            if v.len() >= 8 {
                Ok(Secret::new(v.to_owned()))
            } else {
                Err("must be at least 8 characters".to_owned())
            }
        })?,
        push_max_body_bytes: t.required("push_max_body_bytes", integer(1024, 64 * 1024 * 1024))?
            as usize,
        register_unknown_devices: t.required("register_unknown_devices", boolean)?,
        writer_max_rows: t.required("writer_max_rows", integer(1, 1_000_000))? as usize,
        writer_max_age: Duration::from_millis(
            t.required("writer_max_age_ms", integer(1, 60_000))? as u64
        ),
        poll_live: secs("poll_live_s", 5)?,
        poll_track: secs("poll_track_s", 60)?,
        poll_alarms: secs("poll_alarms_s", 30)?,
        poll_trips: secs("poll_trips_s", 60)?,
        poll_devices: secs("poll_devices_s", 60)?,
        trips_interval: secs("trips_interval_s", 1)?,
        kpi_interval: secs("kpi_interval_s", 1)?,
    };
    let demo_vehicles = t.required("demo_vehicles", integer(1, 10_000))? as usize;
    let days = |key: &str| -> Result<Option<u32>, ConfigError> {
        Ok(Some(t.required(key, integer(0, 36_500))? as u32).filter(|d| *d > 0))
    };
    let retention = RetentionConfig {
        positions_days: days("retention_positions_days")?,
        trips_days: days("retention_trips_days")?,
        alarms_days: days("retention_alarms_days")?,
        kpi_days: days("retention_kpi_days")?,
    };
    let backup = BackupConfig {
        dir: t.parsed("backup_dir", |v| Ok(PathBuf::from(v)))?,
        schedule: t.parsed("backup_schedule", |v| {
            v.parse::<croner::Cron>().map_err(|e| {
                format!("{v:?} is not a cron expression like \"30 2 * * *\" (minute hour day month weekday): {e}")
            })
        })?,
        verify: t.required("backup_verify", boolean)?,
        keep_daily: t.required("backup_keep_daily", integer(0, 3650))? as u32,
        keep_weekly: t.required("backup_keep_weekly", integer(0, 520))? as u32,
        keep_monthly: t.required("backup_keep_monthly", integer(0, 1200))? as u32,
        max_age: Duration::from_secs(t.required("backup_max_age_h", integer(1, 24 * 365))? as u64 * 3600),
    };
    let alerts = AlertConfig {
        webhooks: t.parsed("alert_webhooks", webhook_urls)?.unwrap_or_default(),
        failures: t.required("alert_failures", integer(1, 1000))? as u32,
        stale_after: secs("alert_stale_after_s", 60)?,
        check_every: secs("alert_check_s", 1)?,
    };
    let max_in_flight = t.required("http_max_in_flight", integer(1, 1_000_000))? as usize;
    let priority_reserve = t.required("http_priority_reserve", integer(0, 1_000_000))? as usize;
    if priority_reserve >= max_in_flight {
        let source = t.values.get("http_priority_reserve").map_or(Source::Default, |v| v.1);
        return Err(invalid(
            Typed::def("http_priority_reserve"),
            source,
            format!(
                "{priority_reserve} must be less than FLEETD_HTTP_MAX_IN_FLIGHT ({max_in_flight})"
            ),
        ));
    }
    let http = HttpConfig {
        max_connections: t.required("http_max_connections", integer(16, 1_000_000))? as usize,
        header_timeout: secs("http_header_timeout_s", 1)?,
        body_timeout: secs("http_body_timeout_s", 1)?,
        body_memory: (t.required("http_body_memory_mb", integer(1, 4096))? as usize) << 20,
        send_timeout: secs("http_send_timeout_s", 1)?,
        max_in_flight,
        priority_reserve,
        uploads_per_address: t.required("http_uploads_per_address", integer(1, 1_000_000))?
            as usize,
        metrics_token: t.parsed("metrics_token", |v| {
            if v.len() >= 16 {
                Ok(Secret::new(v.to_owned()))
            } else {
                Err("must be at least 16 characters".to_owned())
            }
        })?,
        cors_origins: t.parsed("cors_origins", cors_origins)?.unwrap_or_default(),
        trusted_proxies: t.parsed("trusted_proxies", trusted_proxies)?.unwrap_or_default(),
        map_tile_url: t.parsed("map_tile_url", tile_url)?.unwrap_or_default(),
        map_tile_attribution: t
            .parsed("map_tile_attribution", |v| Ok(v.trim().to_owned()))?
            .unwrap_or_default(),
    };

    let notify = crate::notify::notify(&t, listen)?;

    let effective = SETTINGS
        .iter()
        .map(|s| {
            let (shown, source) = match t.values.get(s.key) {
                None => (None, Source::Default),
                Some((v, source)) => {
                    let shown = match (s.secret, s.key) {
                        (true, "database_url") => redact_url(v),
                        (true, _) => "[redacted]".to_owned(),
                        (false, _) => v.clone(),
                    };
                    (Some(shown), *source)
                }
            };
            EffectiveSetting { key: s.key, env: s.env, shown, source }
        })
        .collect();

    Ok(Config {
        database_url,
        listen,
        data_dir,
        db: DbConfig {
            max_connections,
            statement_timeout: (statement_ms > 0).then(|| Duration::from_millis(statement_ms)),
            acquire_timeout: Duration::from_millis(acquire_ms),
            application_name,
        },
        analyst_password,
        analyst,
        api,
        partition_months_ahead,
        pg_bindir,
        log: LogConfig { level, format },
        tracksolid,
        ingest,
        http,
        demo_vehicles,
        retention,
        backup,
        alerts,
        notify,
        effective,
    })
}

fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// A comma-separated list of http(s) URLs. They are secrets: a refusal names the position of
/// the bad URL in the list, never its text.
fn webhook_urls(v: &str) -> Result<Vec<Secret<String>>, String> {
    let mut out = Vec::new();
    for (i, item) in v.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
        let n = i + 1;
        let rest = item
            .strip_prefix("https://")
            .or_else(|| item.strip_prefix("http://"))
            .ok_or_else(|| format!("URL {n} of the list is not an http(s) URL"))?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
            return Err(format!("URL {n} of the list is not an http(s) URL with a host"));
        }
        out.push(Secret::new(item.to_owned()));
    }
    Ok(out)
}

/// A comma-separated list of networks (`10.0.0.0/8`) or single addresses (`127.0.0.1`, a /32).
fn trusted_proxies(v: &str) -> Result<Vec<ipnet::IpNet>, String> {
    let mut out: Vec<ipnet::IpNet> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = item
            .parse::<ipnet::IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| format!("{item:?} is not a network like 10.0.0.0/8 or an address"))?;
        if net.prefix_len() == 0 {
            return Err(format!("{item:?} would trust every client; list the proxies' networks"));
        }
        if !out.contains(&net.trunc()) {
            out.push(net.trunc());
        }
    }
    Ok(out)
}

/// A comma-separated list of origins: `scheme://host[:port]`, no path, no wildcard (the API
/// allows credentials, which browsers refuse to combine with `*`).
/// A tile URL template (http(s) with the {z}, {x} and {y} placeholders), or `none` for a plain
/// background (kept as "").
fn tile_url(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("none") {
        return Ok(String::new());
    }
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err("must be an http:// or https:// URL template, or none".into());
    }
    if !["{z}", "{x}", "{y}"].iter().all(|p| v.contains(p)) {
        return Err("must contain the {z}, {x} and {y} placeholders".into());
    }
    if v.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == ';') {
        return Err("must not contain spaces, quotes or semicolons".into());
    }
    Ok(v.to_owned())
}

fn cors_origins(v: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.contains('*') {
            return Err("list origins one by one; * is not allowed".to_owned());
        }
        let bad = || format!("{item:?} is not an origin like https://ops.example.com");
        let origin = item.to_ascii_lowercase();
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(bad)?;
        if rest.contains('/') {
            return Err(format!("{item:?} has a path; an origin is scheme://host[:port] only"));
        }
        let (host_ok, port) = match rest.strip_prefix('[') {
            // IPv6 literal: [::1] or [::1]:8080
            Some(v6) => {
                let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(bad)?),
                };
                (addr.parse::<std::net::Ipv6Addr>().is_ok(), port)
            }
            None => {
                let (host, port) = match rest.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (rest, None),
                };
                let ok = !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                (ok, port)
            }
        };
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if !host_ok || !port_ok {
            return Err(bad());
        }
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

/// The Tracksolid account: all five settings or none.
fn tracksolid(t: &Typed) -> Result<Option<TracksolidConfig>, ConfigError> {
    const KEYS: [&str; 5] = [
        "tracksolid_url",
        "tracksolid_app_key",
        "tracksolid_app_secret",
        "tracksolid_user",
        "tracksolid_password",
    ];
    let set: Vec<&str> = KEYS.iter().copied().filter(|k| t.values.contains_key(k)).collect();
    if set.is_empty() {
        return Ok(None);
    }
    if let Some(missing) = KEYS.iter().find(|k| !t.values.contains_key(**k)) {
        let s = Typed::def(missing);
        return Err(invalid(
            s,
            Source::Default,
            format!("must be set too, since {} is set", set.join(", ")),
        ));
    }
    let text = |k: &str| t.values.get(k).map(|(v, _)| v.clone()).unwrap_or_default();
    let url = t.required("tracksolid_url", |v| {
        if v.starts_with("http://") || v.starts_with("https://") {
            Ok(v.to_owned())
        } else {
            Err(format!("{v:?} is not an http(s) URL"))
        }
    })?;
    Ok(Some(TracksolidConfig {
        url,
        app_key: text("tracksolid_app_key"),
        app_secret: Secret::new(text("tracksolid_app_secret")),
        user: text("tracksolid_user"),
        password: Secret::new(text("tracksolid_password")),
    }))
}
