//! The simulator `fleetd demo` runs in-process: the vendor's OpenAPI on a private loopback port
//! and a pusher sending the fleet's data to fleetd's own receivers, so a newcomer sees data
//! flowing without any account.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use fleet_config::{Secret, TracksolidConfig};
use fleet_sim::push::{PushConfig, PushStats};
use fleet_sim::server::default_credentials;
use fleet_sim::{Credentials, Fleet, SimClock, SimConfig, SimState};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Minutes of recent history the demo's pusher delivers at start, so data shows at once.
const PUSH_RECENT_MIN: i64 = 30;

/// The running simulator.
#[derive(Debug)]
pub struct DemoSim {
    /// `…/route/rest` of the simulated OpenAPI.
    pub url: String,
    pub credentials: Credentials,
    pub vehicles: usize,
    tasks: Vec<JoinHandle<()>>,
}

impl DemoSim {
    /// Starts the simulator and its pusher towards `fleetd_addr`'s `/push` with `push_token`.
    pub async fn start(
        vehicles: usize,
        fleetd_addr: SocketAddr,
        push_token: Secret<String>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let fleet = Arc::new(Fleet::new(1, vehicles));
        let clock = SimClock::real_time();
        let config = SimConfig { clock, ..SimConfig::default() };
        let listener =
            TcpListener::bind("127.0.0.1:0").await.context("binding the demo simulator")?;
        let url = format!("http://{}/route/rest", listener.local_addr()?);
        let state = SimState::new(fleet.clone(), config);
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            if let Err(e) = fleet_sim::serve(listener, state, stop.cancelled_owned()).await {
                tracing::error!(error = %e, "demo simulator stopped");
            }
        });
        // fleetd may listen on every interface; the pusher talks to it over loopback
        let target = SocketAddr::new(
            "127.0.0.1".parse().unwrap_or_else(|_| unreachable!("literal")),
            fleetd_addr.port(),
        );
        let mut push = PushConfig::new(format!("http://{target}/push"), push_token);
        push.start_at = Some(clock.now() - PUSH_RECENT_MIN * 60);
        let pusher = tokio::spawn(fleet_sim::push::run(
            fleet,
            clock,
            push,
            Arc::new(PushStats::default()),
            shutdown,
        ));
        Ok(Self { url, credentials: default_credentials(), vehicles, tasks: vec![server, pusher] })
    }

    /// The simulator as a Tracksolid account for the pollers.
    pub fn account(&self) -> TracksolidConfig {
        TracksolidConfig {
            url: self.url.clone(),
            app_key: self.credentials.app_key.clone(),
            app_secret: self.credentials.app_secret.clone(),
            user: self.credentials.user.clone(),
            password: self.credentials.password.clone(),
        }
    }

    /// Waits for the simulator's tasks after shutdown was signalled.
    pub async fn stopped(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// A random push secret for the demo (nothing configured).
pub fn random_token() -> Secret<String> {
    let bytes: [u8; 16] = rand::random();
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
