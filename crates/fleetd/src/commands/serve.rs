//! `fleetd serve` and `fleetd demo`: prepare the database, start the writer and the push
//! receivers (and, for the demo, the simulator), then serve HTTP until a signal. Shutdown runs
//! in reverse: stop accepting, let the producers finish, then drain the writer so everything
//! acknowledged is stored, then close the database.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use fleet_analytics::{TripWorker, TripWorkerConfig};
use fleet_config::{Config, Secret};
use fleet_db::PgPool;
use fleet_ingest::{PushReceiver, Writer, WriterConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::demo_sim::{random_token, DemoSim};
use crate::database::{Database, EMBEDDED_DATABASE};
use crate::shutdown;

/// How often positions partitions are checked ahead (and the default partition emptied) and
/// old ingest rejects pruned.
const PARTITION_CHECK_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Demo,
}

pub async fn run(cfg: Config, mode: Mode) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal()?;
    let db = Database::open(&cfg).await?;
    let result = serve(&db, &cfg, mode, shutdown).await;
    let closed = db.close().await;
    result.and(closed)
}

async fn serve(
    db: &Database,
    cfg: &Config,
    mode: Mode,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if shutdown.is_cancelled() {
        return Ok(());
    }
    db.prepare(cfg).await?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (FLEETD_LISTEN / --listen)", cfg.listen))?;
    let addr = listener.local_addr()?;
    let maintenance = tokio::spawn(partition_maintenance(
        db.pool.clone(),
        cfg.partition_months_ahead,
        shutdown.clone(),
    ));
    // retention, scheduled backups and ops alerts, each under its own lease
    let operations = fleet_ops::workers::start(cfg, &db.pool, db.url.expose(), &shutdown);

    // the writer outlives the producers: it is stopped only after they are
    let writer_stop = CancellationToken::new();
    let writer_config = WriterConfig {
        max_rows: cfg.ingest.writer_max_rows,
        max_age: cfg.ingest.writer_max_age,
        register_unknown_devices: cfg.ingest.register_unknown_devices,
        ..WriterConfig::default()
    };
    let (writer, writer_task) = Writer::spawn(db.pool.clone(), writer_config, writer_stop.clone());
    let push_token = match (&cfg.ingest.push_token, mode) {
        (Some(t), _) => Some(t.clone()),
        (None, Mode::Demo) => Some(random_token()),
        (None, Mode::Serve) => {
            tracing::warn!("FLEETD_PUSH_TOKEN is not set: the push receivers refuse every push");
            None
        }
    };
    let demo = match mode {
        Mode::Demo => {
            let token = push_token.clone().unwrap_or_else(random_token);
            Some(DemoSim::start(cfg.demo_vehicles, addr, token, shutdown.clone()).await?)
        }
        Mode::Serve => None,
    };
    // a configured account wins; otherwise the demo polls its own simulator
    let account = cfg.tracksolid.clone().or_else(|| demo.as_ref().map(DemoSim::account));
    let pollers = match &account {
        Some(a) => {
            Some(super::pollers::start(cfg, a, db.pool.clone(), writer.clone(), shutdown.clone())?)
        }
        None => {
            tracing::info!("no Tracksolid credentials configured: running without pollers");
            None
        }
    };
    let trips = tokio::spawn(
        TripWorker::new(
            db.pool.clone(),
            TripWorkerConfig {
                interval: cfg.ingest.trips_interval,
                kpi_interval: cfg.ingest.kpi_interval,
                ..TripWorkerConfig::default()
            },
        )
        .run(shutdown.clone()),
    );
    // notifications: one dispatcher per database (under its lease) sends the outbox and sweeps
    // for trackers gone silent and vehicles not moved
    let channels = fleet_notify::channels::Channels::from_config(cfg)
        .context("setting up the notification channels")?;
    let dispatcher = tokio::spawn(fleet_notify::dispatcher::run(
        db.pool.clone(),
        fleet_notify::dispatcher::DispatcherConfig::from_config(cfg),
        std::sync::Arc::new(channels),
        shutdown.clone(),
    ));
    let access = access(mode, &db.pool).await?;
    announce(mode, addr, db, cfg, demo.as_ref(), push_token.as_ref(), &access);

    let receiver = PushReceiver {
        writer: writer.clone(),
        token: push_token,
        max_body_bytes: cfg.ingest.push_max_body_bytes,
    };
    // the API reads through a pool of its own: slow readers can never take the connections
    // of the writer, the leases and the workers
    let api_pool = db.api_pool(cfg).await?;
    let state = fleet_http::AppState::new(api_pool.clone())
        .with_cors_origins(cfg.http.cors_origins.iter().cloned())
        .with_trusted_proxies(cfg.http.trusted_proxies.iter().copied())
        .with_metrics_token(cfg.http.metrics_token.clone())
        .with_export_limits(fleet_http::ExportLimits {
            per_user: cfg.api.exports_per_user,
            total: cfg.api.exports_max,
            stall_timeout: cfg.api.export_stall_timeout,
        })
        .with_stream_limits(fleet_http::StreamLimits {
            per_user: cfg.api.streams_per_user,
            total: cfg.api.streams_max,
            recheck_every: cfg.api.stream_recheck,
        });
    // one listener turns the writer's fleet_changes notifications into the live stream's events
    // and ends streams whose credential ended
    let stream_listener = fleet_http::stream::spawn_listener(
        api_pool.clone(),
        state.stream.clone(),
        shutdown.clone(),
    );
    let analyst_watchdog = tokio::spawn(fleet_db::analyst_limits::watch(
        db.pool.clone(),
        cfg.analyst.statement_timeout,
        shutdown.clone(),
    ));
    let web = fleet_web::router(fleet_web::WebConfig {
        tile_url: cfg.http.map_tile_url.clone(),
        tile_attribution: cfg.http.map_tile_attribution.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    });
    let app = fleet_http::router(state)
        .merge(fleet_http::with_http_metrics(fleet_ingest::push_routes(receiver)))
        .merge(web)
        // pages, bundles and JSON travel compressed to clients that accept it (not the live
        // stream: event streams are left alone). The fastest level: the live fleet of 10,000
        // vehicles (6 MB of GeoJSON) shrinks to 1 MB in 25 ms, where the default level would
        // spend 65 ms per request for 0.8 MB.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        );
    let limits = fleet_http::server::Limits {
        max_connections: cfg.http.max_connections,
        header_timeout: cfg.http.header_timeout,
        body_timeout: cfg.http.body_timeout,
        body_memory: cfg.http.body_memory,
        send_timeout: cfg.http.send_timeout,
        max_in_flight: cfg.http.max_in_flight,
        priority_reserve: cfg.http.priority_reserve,
        uploads_per_address: cfg.http.uploads_per_address,
        trusted_proxies: cfg.http.trusted_proxies.clone(),
    }
    // the workers' pool, the API's, the stream listener's and the dispatcher's own connections
    .for_process(cfg.db.max_connections + cfg.api.db_connections + 2);
    let served =
        fleet_http::server::serve(listener, app, limits, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    if let Some(p) = pollers {
        let _ = p.await;
    }
    if let Some(demo) = demo {
        demo.stopped().await;
    }
    let _ = maintenance.await;
    for task in operations {
        let _ = task.await;
    }
    let _ = trips.await;
    let _ = dispatcher.await;
    let _ = stream_listener.await;
    let _ = analyst_watchdog.await;
    api_pool.close().await;
    writer_stop.cancel();
    let _ = writer_task.await;
    served.context("HTTP server failed")
}

async fn partition_maintenance(pool: PgPool, months_ahead: u32, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(PARTITION_CHECK_EVERY);
    every.tick().await; // start-up already did it
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let today = chrono::Utc::now().date_naive();
                if let Err(e) = fleet_db::partitions::maintain(&pool, today, months_ahead).await {
                    tracing::error!(error = %e, "positions partition maintenance failed");
                }
                match fleet_db::housekeeping::prune_rejects(&pool).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "old ingest rejects deleted"),
                    Err(e) => tracing::error!(error = %e, "pruning ingest rejects failed"),
                }
            }
        }
    }
}

/// How a person gets into the API.
enum Access {
    /// The demo's admin, created or reset at this start.
    DemoAdmin { username: &'static str, password: String },
    /// Nobody can log in yet.
    NoUsers,
    /// Users exist.
    Users,
}

/// Username of the admin `fleetd demo` creates.
const DEMO_ADMIN: &str = "admin";

async fn access(mode: Mode, pool: &PgPool) -> anyhow::Result<Access> {
    if mode == Mode::Demo {
        let password = random_password();
        let admin = fleet_accounts::users::ensure_admin(pool, DEMO_ADMIN, &password)
            .await
            .context("creating the demo admin")?;
        demo_rule(pool, admin.user_id).await.context("creating the demo's notification rule")?;
        return Ok(Access::DemoAdmin { username: DEMO_ADMIN, password });
    }
    let users = fleet_accounts::users::list(pool).await.context("listing users")?;
    Ok(if users.is_empty() { Access::NoUsers } else { Access::Users })
}

/// On a demo database without notification rules, one that rings the admin's bell for the
/// simulator's SOS and power-cut alarms, so the demo shows notifications from the start.
async fn demo_rule(pool: &PgPool, admin: i32) -> anyhow::Result<()> {
    use fleet_core::notification::rule::Recipients;
    use fleet_core::notification::{Channel, EventKind, Rule, Severity};
    let mut conn = pool.acquire().await?;
    if !fleet_db::notifications::rules::list(&mut conn).await?.is_empty() {
        return Ok(());
    }
    let rule = Rule {
        name: "SOS and power cut".to_owned(),
        enabled: true,
        kinds: vec![EventKind::AlarmSafety, EventKind::AlarmPower],
        scope: Default::default(),
        schedule: None,
        throttle_s: 0,
        params: Default::default(),
        recipients: Recipients { user_ids: vec![admin], ..Recipients::default() },
        channels: vec![Channel::InApp],
        severity: Severity::Critical,
    };
    rule.validate()?;
    fleet_db::notifications::rules::insert(&mut conn, &rule, Some(admin)).await?;
    tracing::info!("demo notification rule created: SOS and power cut, in the admin's bell");
    Ok(())
}

/// 16 random letters and digits.
fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 16)
}

/// Tells the person at the terminal what runs where. The `listening on` line is also what
/// scripts and tests wait for.
fn announce(
    mode: Mode,
    addr: SocketAddr,
    db: &Database,
    cfg: &Config,
    demo: Option<&DemoSim>,
    push_token: Option<&Secret<String>>,
    access: &Access,
) {
    println!("fleetd listening on http://{addr}");
    if mode == Mode::Serve {
        if let Access::NoUsers = access {
            tracing::warn!("no users yet: nobody can log in to the API");
            println!(
                "No users yet: create the first admin with `fleetd user add <name> --role admin`."
            );
        }
        return;
    }
    let database = match &db.embedded {
        Some(pg) => format!(
            "embedded PostgreSQL in {} (127.0.0.1:{}, database {EMBEDDED_DATABASE})",
            pg.root().display(),
            pg.port()
        ),
        None => "the server at DATABASE_URL".to_owned(),
    };
    let analyst = if cfg.analyst_password.is_some() {
        "fleet_ro can log in with FLEETD_ANALYST_PASSWORD"
    } else {
        "fleet_ro login disabled (set FLEETD_ANALYST_PASSWORD to enable it)"
    };
    let simulator = demo.map_or_else(String::new, |d| {
        format!(
            "  simulator  {} vehicles at {} (app key {}, user {}), pushing to http://{addr}/push\n",
            d.vehicles, d.url, d.credentials.app_key, d.credentials.user
        )
    });
    let token_note = if cfg.ingest.push_token.is_none() && push_token.is_some() {
        "  pushes     token generated for this run (set FLEETD_PUSH_TOKEN to choose one)\n"
    } else {
        ""
    };
    let login = match access {
        Access::DemoAdmin { username, password } => format!(
            "  login      user {username}, password {password}  (new at every demo start)\n"
        ),
        Access::NoUsers | Access::Users => String::new(),
    };
    println!(
        "\nfleetd demo is running\n  \
         database   {database}, schema migrated\n\
         {simulator}{token_note}  \
         FleetNow   http://{addr}/  (live map)\n  \
         FleetOps   http://{addr}/ops  (operations dashboard)\n  \
         API        http://{addr}/api/v1  (log in: POST /api/v1/auth/login; document: /api/v1/openapi.json)\n\
         {login}  \
         health     http://{addr}/healthz  and  http://{addr}/readyz\n  \
         analysts   {analyst}\n\
         Press Ctrl-C to stop (the embedded database stops with it).\n"
    );
}
