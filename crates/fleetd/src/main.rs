//! The `fleetd` binary: parse arguments, load configuration, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetd::cli::Cli::parse();
    let config = match fleetd::cli::load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleetd: {e}");
            return ExitCode::from(2);
        }
    };
    fleetd::telemetry::init(&config.log);
    match fleetd::run(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fleetd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
