//! Command-line interface: subcommands and the flags that override configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fleet_config::{Config, ConfigError, Loader};

/// fleetd: self-hosted fleet telematics for Jimi IoT / Concox GPS trackers.
///
/// Settings come from defaults, then the --config file, then a .env file in the working
/// directory, then the environment, then flags. `fleetd config` shows the result.
#[derive(Debug, Parser)]
#[command(name = "fleetd", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (keys as listed by `fleetd config`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: migrate the database, then serve HTTP until Ctrl-C or SIGTERM.
    ///
    /// Without DATABASE_URL a private PostgreSQL cluster is started in the data directory
    /// and stopped again on exit.
    Serve(ServeArgs),
    /// Run the whole platform on embedded defaults, with nothing configured.
    ///
    /// Starts a private PostgreSQL cluster in the data directory (unless DATABASE_URL is
    /// set), migrates it and serves HTTP; prints what is running and where.
    Demo(ServeArgs),
    /// Apply pending database migrations, create partitions ahead, set the analyst role's login.
    ///
    /// Safe to run while other fleetd processes start: migrations run under a lock, each once.
    Migrate(DbArgs),
    /// Inspect the database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Print the effective configuration (secrets redacted) and where each value came from.
    Config,
    /// Back up the database with pg_dump (custom format) and print the file's path.
    ///
    /// Writes the dump, its SHA-256 and a manifest (row counts of every table and the newest
    /// GPS time, from the dump's own snapshot) to the backup directory. `fleetd backup verify
    /// FILE` proves a backup restores. Needs the PostgreSQL client tools (pg_dump, pg_restore).
    Backup(BackupArgs),
    /// Restore a backup into the target database (--database-url, or the configured one).
    ///
    /// Checks the file's checksum, restores in one transaction, then compares row counts and
    /// the newest GPS time with the backup's manifest. Refuses a database that already holds
    /// fleetd's schema unless --clean is given. Stop fleetd before restoring over its database.
    Restore(RestoreArgs),
    /// Check the database: connections, migrations, partitions, retention, role privileges and
    /// passwords, sessions, sizes, ingest freshness and backups.
    ///
    /// Exits non-zero when any check fails; warnings do not fail it.
    Audit(AuditArgs),
    /// Fetch data from the Tracksolid account.
    Ingest {
        #[command(subcommand)]
        command: IngestCommand,
    },
    /// Trips and stops derived from the stored fixes.
    Trips {
        #[command(subcommand)]
        command: TripsCommand,
    },
    /// Manage the people who sign in to the API and the web apps.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Bearer tokens for integrations.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the Tracksolid simulator: a seeded fleet behind the vendor's OpenAPI.
    ///
    /// Serves /route/rest with the vendor's signing, tokens, limits and error codes; accepts
    /// exactly the credentials given here (or the documented defaults).
    Sim(SimArgs),
}

/// The simulator's settings (command-line only: the simulator is not part of a deployment).
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Number of simulated vehicles.
    #[arg(long, default_value_t = 25)]
    pub vehicles: usize,
    /// Seed of the fleet: the same seed gives the same vehicles and the same histories.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Address to serve the simulated OpenAPI on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// App key the simulator accepts.
    #[arg(long, default_value = "8FB345B8693CCD00SIMULATOR0000001")]
    pub app_key: String,
    /// App secret requests must be signed with.
    #[arg(long, default_value = "fleetd-sim-secret")]
    pub app_secret: String,
    /// Account name accepted by jimi.oauth.token.get.
    #[arg(long, default_value = "fleetd-demo")]
    pub user: String,
    /// Account password (clients send its MD5).
    #[arg(long, default_value = "demo-password")]
    pub password: String,
    /// Replay the last --replay-hours this many times faster than the wall clock, then go on
    /// in real time (simulated time never runs ahead of the wall clock).
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// With --speedup above 1: how far back the replay starts, hours.
    #[arg(long, default_value_t = 24)]
    pub replay_hours: u32,
    /// Calls per second before answering "too frequent" (code 1006); unlimited when unset.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Push what the fleet reports to this base URL, as the vendor does (e.g.
    /// http://127.0.0.1:8080/push; the vendor appends /pushgps, /notify, ...).
    #[arg(long, value_name = "URL")]
    pub push_to: Option<String>,
    /// Shared secret sent as `token` with Data Push requests.
    #[arg(long, default_value = "fleetd-push-token")]
    pub push_token: String,
    /// Push interface: data (Data Push paths), openapi (alarms to /notify) or both.
    #[arg(long, default_value = "data", value_parser = ["data", "openapi", "both"])]
    pub push_format: String,
    /// Largest delivery delay of a pushed item, simulated seconds (one in twenty up to 5x).
    #[arg(long, default_value_t = 30)]
    pub push_delay_s: i64,
    /// Share of pushed items delivered twice.
    #[arg(long, default_value_t = 0.01)]
    pub push_duplicates: f64,
}

/// `fleetd backup [--dir DIR]`, or `fleetd backup verify FILE`.
#[derive(Debug, Args, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Directory to write to (overrides FLEETD_BACKUP_DIR; default backups/ in the data
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum BackupCommand {
    /// Restore a backup into a scratch database, compare row counts per table and the newest
    /// GPS time with its manifest, then drop the scratch database.
    ///
    /// The outcome is recorded in fleet.backups (fleetd audit reports it). Exits non-zero when
    /// the backup does not match.
    Verify(VerifyArgs),
}

/// The backup to verify.
#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The .dump file written by `fleetd backup`.
    pub file: PathBuf,
}

/// The backup to restore, and where.
#[derive(Debug, Args, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The .dump file written by `fleetd backup`.
    pub file: PathBuf,
    /// Confirms the restore (it writes into the target database).
    #[arg(long)]
    pub yes: bool,
    /// Create the target database first if it does not exist.
    #[arg(long)]
    pub create: bool,
    /// Drop fleetd's objects already in the target database before restoring.
    #[arg(long)]
    pub clean: bool,
}

/// How to report the audit.
#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Fetch track history and alarms of a past range from the Tracksolid account.
    ///
    /// Safe to repeat and to overlap with the pollers: what is already stored is left as it is.
    /// The vendor keeps about three months of history.
    Backfill(BackfillArgs),
}

#[derive(Debug, Subcommand)]
pub enum TripsCommand {
    /// Recompute trips, stops, geofence events and daily KPIs from the stored fixes.
    ///
    /// Re-derives every device (or the given ones) from its first fix, or from --since (from
    /// the start of the stop before it, the earliest point the result can change). When a
    /// running fleetd holds the trip-builder lease, the devices are handed to it instead.
    Rebuild(TripsRebuildArgs),
}

/// Which devices and from when to rebuild.
#[derive(Debug, Args, Clone)]
pub struct TripsRebuildArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this device (repeat for several); default every device.
    #[arg(long = "imei", value_parser = parse_imei)]
    pub imeis: Vec<fleet_core::Imei>,
    /// Re-derive from this time (UTC): 2026-11-01, "2026-11-01 06:00:00" or RFC 3339; default
    /// from each device's first fix.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// The range and devices to backfill.
#[derive(Debug, Args, Clone)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Start of the range (UTC): 2026-11-01, "2026-11-01 06:00:00" or RFC 3339.
    #[arg(long, value_parser = parse_time)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// End of the range (UTC), same forms; default now.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this device (repeat for several); default every active device.
    #[arg(long = "imei", value_parser = parse_imei)]
    pub imeis: Vec<fleet_core::Imei>,
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!(
                "{s:?} is not a date (2026-11-01), a UTC time (2026-11-01 06:00:00) or RFC 3339"
            )
        })
}

fn parse_imei(s: &str) -> Result<fleet_core::Imei, String> {
    fleet_core::Imei::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    ///
    /// The password (at least 8 characters) is read from standard input with --password-stdin,
    /// otherwise prompted for twice without echo.
    Add(UserAddArgs),
}

/// A user to create.
#[derive(Debug, Args, Clone)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Login name: 1-64 letters, digits and _ . @ - (unique, ignoring case).
    pub username: String,
    /// What the user may do: viewer (reads), operator (also edits vehicles, acknowledges
    /// alarms) or admin (also manages users, tokens and settings).
    #[arg(long, value_parser = parse_role)]
    pub role: fleet_accounts::Role,
    /// Read the password from standard input (up to the first newline) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Name shown in the apps.
    #[arg(long, default_value = "")]
    pub display_name: String,
}

fn parse_role(s: &str) -> Result<fleet_accounts::Role, String> {
    fleet_accounts::Role::parse(s)
        .ok_or_else(|| format!("{s:?} is not a role: use viewer, operator or admin"))
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a bearer token acting as a user and print it; it is shown only this once.
    ///
    /// Only the token is printed on standard output, so `TOKEN=$(fleetd token create ...)`
    /// captures it. Revoke tokens with `DELETE /api/v1/tokens/{id}`.
    Create(TokenCreateArgs),
}

/// The token to create.
#[derive(Debug, Args, Clone)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The user the token acts as (with that user's role).
    #[arg(long)]
    pub user: String,
    /// What the token is for, e.g. erp-sync.
    #[arg(long, default_value = "cli")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Show applied and pending migrations, positions partitions and row counts per table.
    Status(DbArgs),
}

/// Where the database is.
#[derive(Debug, Args, Clone, Default)]
pub struct DbArgs {
    /// PostgreSQL URL (overrides DATABASE_URL). Unset: the embedded cluster.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// fleetd's data directory (overrides FLEETD_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Database plus where to listen.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to serve HTTP on (overrides FLEETD_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Loads the configuration with this invocation's file and flags applied.
pub fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let mut loader = Loader::new();
    if let Some(file) = &cli.config {
        loader = loader.file(file);
    }
    let (db, listen) = match &cli.command {
        Command::Serve(a) | Command::Demo(a) => (Some(&a.db), a.listen.as_ref()),
        Command::Migrate(d) | Command::Db { command: DbCommand::Status(d) } => (Some(d), None),
        Command::Ingest { command: IngestCommand::Backfill(b) } => (Some(&b.db), None),
        Command::Trips { command: TripsCommand::Rebuild(t) } => (Some(&t.db), None),
        Command::User { command: UserCommand::Add(u) } => (Some(&u.db), None),
        Command::Token { command: TokenCommand::Create(t) } => (Some(&t.db), None),
        Command::Backup(b) => match &b.command {
            Some(BackupCommand::Verify(v)) => (Some(&v.db), None),
            None => (Some(&b.db), None),
        },
        Command::Restore(r) => (Some(&r.db), None),
        Command::Audit(a) => (Some(&a.db), None),
        Command::Config | Command::Sim(_) => (None, None),
    };
    if let Some(db) = db {
        if let Some(url) = &db.database_url {
            loader = loader.flag("database_url", url.clone());
        }
        if let Some(dir) = &db.data_dir {
            loader = loader.flag("data_dir", dir.to_string_lossy().into_owned());
        }
    }
    if let Some(listen) = listen {
        loader = loader.flag("listen", listen.clone());
    }
    loader.load()
}
