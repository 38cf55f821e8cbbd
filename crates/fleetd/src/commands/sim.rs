//! `fleetd sim`: the Tracksolid simulator on its own, for trying fleetd (or any Tracksolid
//! client) without a vendor account.

use std::sync::Arc;

use anyhow::Context;
use fleet_config::Secret;
use fleet_sim::push::{PushConfig, PushFormat, PushStats};
use fleet_sim::{Credentials, Fleet, SimClock, SimConfig, SimState};
use tokio::net::TcpListener;

use crate::cli::SimArgs;
use crate::shutdown;

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal()?;
    let fleet = Arc::new(Fleet::new(args.seed, args.vehicles));
    let credentials = Credentials {
        app_key: args.app_key.clone(),
        app_secret: Secret::new(args.app_secret.clone()),
        user: args.user.clone(),
        password: Secret::new(args.password.clone()),
    };
    let config = SimConfig {
        credentials,
        rate_limit_per_s: args.rate_limit,
        clock: if args.speedup > 1.0 {
            SimClock::catching_up(i64::from(args.replay_hours) * 3600, args.speedup)
        } else {
            SimClock::real_time()
        },
        ..SimConfig::default()
    };
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("fleetd sim listening on http://{addr}/route/rest");
    println!(
        "  {} vehicles, seed {}; app key {}, user {}",
        args.vehicles, args.seed, args.app_key, args.user
    );
    if args.speedup > 1.0 {
        println!("  replaying the last {} h at {}x, then live", args.replay_hours, args.speedup);
    }
    let pusher = args.push_to.as_ref().map(|url| {
        let mut push = PushConfig::new(url.clone(), Secret::new(args.push_token.clone()));
        push.format = match args.push_format.as_str() {
            "openapi" => PushFormat::OpenApi,
            "both" => PushFormat::Both,
            _ => PushFormat::DataPush,
        };
        push.max_delay_s = args.push_delay_s.max(0);
        push.duplicate_rate = args.push_duplicates.clamp(0.0, 1.0);
        println!("  pushing to {url} ({} format)", args.push_format);
        let stats = Arc::new(PushStats::default());
        tokio::spawn(fleet_sim::push::run(
            fleet.clone(),
            config.clock,
            push,
            stats,
            shutdown.clone(),
        ))
    });
    let state = SimState::new(fleet, config);
    let served = fleet_sim::serve(listener, state, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    if let Some(p) = pusher {
        let _ = p.await;
    }
    served.context("simulator server failed")
}
