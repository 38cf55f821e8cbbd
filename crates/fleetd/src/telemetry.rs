//! Logging: human-readable by default, JSON with FLEETD_LOG_FORMAT=json, to stderr.

use fleet_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_new(&cfg.level).unwrap_or_else(|e| {
        eprintln!("fleetd: FLEETD_LOG {:?} is not a valid filter ({e}); using info", cfg.level);
        EnvFilter::new("info")
    });
    // sqlx reports slow statements at warn and every statement at debug; quiet unless asked
    let filter = if cfg.level.contains("sqlx") {
        filter
    } else {
        filter
            .add_directive("sqlx=warn".parse().unwrap_or_else(|_| unreachable!("static directive")))
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
