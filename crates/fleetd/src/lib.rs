//! fleetd's commands, wired from the library crates. `main.rs` only parses arguments, loads the
//! configuration and sets up logging before calling [`run`].

pub mod cli;
mod commands;
mod database;
mod shutdown;
pub mod telemetry;

use cli::{Cli, Command, DbCommand, IngestCommand, TokenCommand, TripsCommand, UserCommand};
use fleet_config::Config;

/// Runs one command to completion on a multi-threaded runtime.
pub fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Command::Config = cli.command {
        print!("{}", config.render());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => commands::serve::run(config, commands::serve::Mode::Serve).await,
            Command::Demo(_) => commands::serve::run(config, commands::serve::Mode::Demo).await,
            Command::Migrate(_) => commands::migrate::run(config).await,
            Command::Db { command: DbCommand::Status(_) } => commands::status::run(config).await,
            Command::Sim(args) => commands::sim::run(args).await,
            Command::Ingest { command: IngestCommand::Backfill(args) } => {
                commands::backfill::run(config, args).await
            }
            Command::Trips { command: TripsCommand::Rebuild(args) } => {
                commands::trips::rebuild(config, args).await
            }
            Command::User { command: UserCommand::Add(args) } => {
                commands::users::add(config, args).await
            }
            Command::Token { command: TokenCommand::Create(args) } => {
                commands::users::create_token(config, args).await
            }
            Command::Backup(args) => commands::ops::backup(config, args).await,
            Command::Restore(args) => commands::ops::restore(config, args).await,
            Command::Audit(args) => commands::ops::audit(config, args).await,
            Command::Config => Ok(()),
        }
    })
}
