//! Shared by the poller tests: a simulator on a free port with a frozen clock, a client and a
//! writer for it, and the poller's log rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use fleet_config::Secret;
use fleet_ingest::{PollConfig, PollJobs, Writer, WriterConfig};
use fleet_sim::server::default_credentials;
use fleet_sim::{Fleet, SimClock, SimConfig, SimState};
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The seed of every simulated fleet here: the same seed gives the same first vehicles
/// whatever the fleet's size.
pub const SEED: u64 = 7;

pub const METHODS: [&str; 7] = [
    "jimi.oauth.token.get",
    "jimi.user.device.list",
    "jimi.user.device.location.list",
    "jimi.device.track.list",
    "jimi.device.alarm.list",
    "jimi.device.track.mileage",
    "jimi.device.location.get",
];

pub struct Sim {
    pub state: Arc<SimState>,
    pub url: String,
    stop: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sim {
    /// Calls of every data and token method received.
    pub fn total_calls(&self) -> u64 {
        METHODS.iter().map(|m| self.state.calls(m)).sum()
    }
}

/// A simulator of `vehicles` whose clock stands still at `at` (unix seconds).
pub async fn start_sim(vehicles: usize, at: i64) -> Sim {
    start_sim_of(Fleet::new(SEED, vehicles), at).await
}

/// A simulator of `fleet` whose clock stands still at `at` (unix seconds).
pub async fn start_sim_of(fleet: Fleet, at: i64) -> Sim {
    let config = SimConfig { clock: SimClock::starting_at(at, 0.0), ..SimConfig::default() };
    let state = SimState::new(Arc::new(fleet), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/route/rest", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(fleet_sim::serve(listener, state.clone(), stop.clone().cancelled_owned()));
    Sim { state, url, stop }
}

/// 19:00 in Nairobi yesterday: the end of a simulated working day, safely in the past.
pub fn yesterday_evening() -> DateTime<Utc> {
    let day = Utc::now().date_naive().checked_sub_days(Days::new(1)).expect("a yesterday");
    day.and_hms_opt(16, 0, 0).expect("16:00 UTC").and_utc()
}

pub fn client(sim: &Sim, password: Option<&str>) -> Arc<TracksolidClient> {
    let c = default_credentials();
    let password = password.map_or(c.password, |p| Secret::new(p.to_owned()));
    let mut cfg = ClientConfig::new(sim.url.clone(), c.app_key, c.app_secret, c.user, password);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    Arc::new(TracksolidClient::new(cfg).expect("client"))
}

/// A writer that flushes quickly, stopped with `stop`.
pub fn writer(pool: &PgPool, stop: &CancellationToken) -> Writer {
    let config = WriterConfig { max_age: Duration::from_millis(10), ..WriterConfig::default() };
    Writer::spawn(pool.clone(), config, stop.clone()).0
}

/// Poll jobs against `sim` with `config`.
pub fn jobs(pool: &PgPool, sim: &Sim, stop: &CancellationToken, config: PollConfig) -> PollJobs {
    PollJobs::new(client(sim, None), writer(pool, stop), pool.clone(), config)
}

/// One run's log row: status, rows in / new / duplicate / rejected, error.
pub type LogRow = (String, i32, i32, i32, i32, Option<String>);

/// The poller's own log rows of `job`, oldest first (the writer's window rows left out).
pub async fn runs(pool: &PgPool, job: &str) -> Vec<LogRow> {
    sqlx::query_as(
        "select status, rows_in, rows_new, rows_duplicate, rows_rejected, error
         from fleet.ingestion_log where job = $1 and detail->>'source' = 'poller'
         order by run_id",
    )
    .bind(job)
    .fetch_all(pool)
    .await
    .expect("log rows")
}
