//! The ingest-health views: reporting.v_ingest_health_jobs, v_ingest_health_devices and the
//! union of both, v_ingest_health, against hand-computed figures.

use chrono::{DateTime, Utc};
use fleet_testkit::TestDb;
use sqlx::PgPool;

const POLLER: &str = r#"{"source": "poller"}"#;
const WINDOW: &str = r#""writer window""#;

/// Writes ingestion_log rows timed relative to one instant, so gaps between runs are exact.
struct Log {
    pool: PgPool,
    t0: DateTime<Utc>,
}

impl Log {
    fn new(db: &TestDb) -> Self {
        Self { pool: db.pool.clone(), t0: Utc::now() }
    }

    /// A run of `job` that started and finished `ago_s` seconds before t0.
    async fn run(&self, job: &str, ago_s: i32, status: &str, detail: &str) {
        self.counted(job, ago_s, status, detail, [0, 0, 0, 0]).await;
    }

    /// A run with its counts: received, new, duplicate, rejected.
    async fn counted(
        &self,
        job: &str,
        ago_s: i32,
        status: &str,
        detail: &str,
        [rows_in, new, dup, rej]: [i32; 4],
    ) {
        sqlx::query(
            "insert into fleet.ingestion_log (job, started_at, finished_at, status, rows_in,
                 rows_new, rows_duplicate, rows_rejected, error, detail)
             select $1, t, t, $4, $5, $6, $7, $8,
                    case when $4 = 'failed' then 'vendor down' end, $9::jsonb
             from (select $2 - make_interval(secs => $3) as t) x",
        )
        .bind(job)
        .bind(self.t0)
        .bind(ago_s)
        .bind(status)
        .bind(rows_in)
        .bind(new)
        .bind(dup)
        .bind(rej)
        .bind(detail)
        .execute(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("logging {job}: {e}"));
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Job {
    run_kind: String,
    last_status: String,
    last_error: Option<String>,
    last_success_at: Option<DateTime<Utc>>,
    consecutive_failures: i64,
    runs_24h: i64,
    rows_in_24h: i64,
    rows_per_hour: i64,
    rows_per_hour_24h: f64,
    duplicate_rate: Option<f64>,
    reject_rate: Option<f64>,
    lag_s: Option<i64>,
    stale_after_s: Option<i32>,
    status: String,
}

async fn job(pool: &PgPool, name: &str) -> Job {
    sqlx::query_as("select * from reporting.v_ingest_health_jobs where job = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("health of {name}: {e}"))
}

fn assert_lag(lag: Option<i64>, expected: i64) {
    let lag = lag.expect("a lag");
    assert!((expected..=expected + 5).contains(&lag), "lag {lag}, expected about {expected}");
}

#[tokio::test]
async fn consecutive_failures_count_failed_runs_since_the_last_success_and_reset_on_the_next() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.live", 1800, "ok", POLLER).await;
    log.run("poll.live", 1200, "failed", POLLER).await;
    log.run("poll.live", 600, "failed", POLLER).await;
    let j = job(&db.pool, "poll.live").await;
    assert_eq!((j.consecutive_failures, j.status.as_str()), (2, "failing"));
    assert_eq!((j.last_status.as_str(), j.last_error.as_deref()), ("failed", Some("vendor down")));
    assert_lag(j.lag_s, 1800);

    log.run("poll.live", 60, "ok", POLLER).await;
    let j = job(&db.pool, "poll.live").await;
    assert_eq!((j.consecutive_failures, j.status.as_str()), (0, "ok"));
    assert_eq!((j.last_status.as_str(), j.last_error), ("ok", None));
    assert_lag(j.lag_s, 60);
}

#[tokio::test]
async fn a_partial_run_is_a_success_that_ends_a_failure_streak() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.track", 900, "failed", POLLER).await;
    log.run("poll.track", 300, "partial", POLLER).await;
    let j = job(&db.pool, "poll.track").await;
    assert_eq!((j.consecutive_failures, j.status.as_str()), (0, "ok"));
    assert_eq!(j.last_status, "partial");
    assert_lag(j.lag_s, 300);
}

#[tokio::test]
async fn a_job_that_never_succeeded_is_never_with_every_failure_counted() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.devices", 120, "failed", POLLER).await;
    log.run("poll.devices", 60, "failed", POLLER).await;
    let j = job(&db.pool, "poll.devices").await;
    assert_eq!((j.status.as_str(), j.consecutive_failures), ("never", 2));
    assert_eq!((j.last_success_at, j.lag_s), (None, None));
}

#[tokio::test]
async fn a_job_is_stale_once_its_lag_exceeds_three_median_intervals_and_at_least_600_s() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    // successes 3600, 3300, 3000, 2100 and 1990 s ago: gaps 300, 300, 900, 110, median 300
    // (the mean would be 402.5), so stale after 900 s. The retries of a failure streak in
    // between would pull the median down to 20 if they counted; only successes do.
    for ago in [3600, 3300, 3000, 2100] {
        log.run("poll.alarms", ago, "ok", POLLER).await;
    }
    for ago in [2080, 2060, 2040, 2020, 2000] {
        log.run("poll.alarms", ago, "failed", POLLER).await;
    }
    log.run("poll.alarms", 1990, "ok", POLLER).await;
    let j = job(&db.pool, "poll.alarms").await;
    assert_eq!((j.stale_after_s, j.status.as_str()), (Some(900), "stale"));
    assert_eq!(j.consecutive_failures, 0);
    assert_lag(j.lag_s, 1990);

    // every 30 s: 3 x 30 = 90, raised to the 600 s floor; fresh, so ok
    for ago in [90, 60, 30] {
        log.run("poll.live", ago, "ok", POLLER).await;
    }
    let j = job(&db.pool, "poll.live").await;
    assert_eq!((j.stale_after_s, j.status.as_str()), (Some(600), "ok"));

    // a single success: cadence unknown, stale after a day
    log.run("push.hb", 3600, "ok", WINDOW).await;
    log.run("push.tem", 25 * 3600, "ok", WINDOW).await;
    let (hb, tem) = (job(&db.pool, "push.hb").await, job(&db.pool, "push.tem").await);
    assert_eq!((hb.stale_after_s, hb.status.as_str()), (Some(86_400), "ok"));
    assert_eq!((tem.stale_after_s, tem.status.as_str()), (Some(86_400), "stale"));
}

#[tokio::test]
async fn a_manual_backfill_is_never_stale() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("backfill", 10 * 86_400, "ok", POLLER).await;
    log.run("backfill", 9 * 86_400, "ok", POLLER).await;
    let j = job(&db.pool, "backfill").await;
    assert_eq!((j.run_kind.as_str(), j.stale_after_s, j.status.as_str()), ("backfill", None, "ok"));
}

#[tokio::test]
async fn run_kind_tells_poll_runs_from_writer_windows() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.live", 30, "ok", POLLER).await;
    log.run("push.gps", 30, "partial", WINDOW).await;
    log.run("trips.build", 30, "ok", "null").await;
    assert_eq!(job(&db.pool, "poll.live").await.run_kind, "poll");
    assert_eq!(job(&db.pool, "push.gps").await.run_kind, "writer_window");
    assert_eq!(job(&db.pool, "trips.build").await.run_kind, "other");
}

#[tokio::test]
async fn throughput_and_duplicate_and_reject_rates_cover_the_last_hour_and_day() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.counted("push.gps", 30 * 60, "partial", WINDOW, [100, 75, 20, 5]).await;
    log.counted("push.gps", 5 * 3600, "partial", WINDOW, [300, 245, 40, 15]).await;
    // older than a day: left out of every figure
    log.counted("push.gps", 25 * 3600, "ok", WINDOW, [1000, 0, 1000, 0]).await;
    let j = job(&db.pool, "push.gps").await;
    assert_eq!((j.runs_24h, j.rows_in_24h), (2, 400));
    assert_eq!(j.rows_per_hour, 75, "new rows of the runs of the last hour");
    assert_eq!(j.rows_per_hour_24h, 320.0 / 24.0, "new rows of the last day over 24");
    assert_eq!(j.duplicate_rate, Some(60.0 / 400.0));
    assert_eq!(j.reject_rate, Some(20.0 / 400.0));

    log.run("poll.trips", 60, "ok", POLLER).await;
    let quiet = job(&db.pool, "poll.trips").await;
    assert_eq!((quiet.duplicate_rate, quiet.reject_rate), (None, None), "nothing received");
    assert_eq!((quiet.rows_per_hour, quiet.rows_per_hour_24h), (0, 0.0));
}

/// Registers a device; with `ago_s` its newest fix is that old, received 5 s after it.
async fn device(pool: &PgPool, imei: &str, ago_s: Option<i32>) -> i32 {
    let id: i32 =
        sqlx::query_scalar("insert into fleet.devices (imei) values ($1) returning device_id")
            .bind(imei)
            .fetch_one(pool)
            .await
            .expect("device");
    if let Some(ago) = ago_s {
        sqlx::query(
            "insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, source,
                 motion_state, state_since)
             select $1, t, t + interval '5 s', -1.28, 36.82, 'push', 'parked', t
             from (select now() - make_interval(secs => $2) as t) x",
        )
        .bind(id)
        .bind(ago)
        .execute(pool)
        .await
        .expect("latest");
    }
    id
}

async fn statuses(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("select imei, status from reporting.v_ingest_health_devices order by imei")
        .fetch_all(pool)
        .await
        .expect("device health")
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn device_status_is_live_stale_offline_or_never_seen_by_the_age_of_its_newest_fix() {
    let db = TestDb::migrated().await;
    device(&db.pool, "359339075000001", Some(60)).await;
    device(&db.pool, "359339075000002", Some(20 * 60)).await;
    device(&db.pool, "359339075000003", Some(2 * 3600)).await;
    device(&db.pool, "359339075000004", None).await;
    let gone = device(&db.pool, "359339075000005", Some(60)).await;
    sqlx::query("update fleet.devices set active = false where device_id = $1")
        .bind(gone)
        .execute(&db.pool)
        .await
        .expect("deactivate");
    assert_eq!(
        statuses(&db.pool).await,
        pairs(&[
            ("359339075000001", "live"),
            ("359339075000002", "stale"),
            ("359339075000003", "offline"),
            ("359339075000004", "never_seen"),
        ]),
        "inactive devices are left out"
    );
    let (age, delivered): (Option<i64>, Option<f64>) = sqlx::query_as(
        "select gps_age_s, extract(epoch from last_received_at - last_gps_time)::float8
         from reporting.v_ingest_health_devices where imei = '359339075000002'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("row");
    assert_lag(age, 1200);
    assert_eq!(delivered, Some(5.0));
}

#[tokio::test]
async fn the_offline_threshold_is_the_offline_after_s_setting() {
    let db = TestDb::migrated().await;
    device(&db.pool, "359339075000002", Some(20 * 60)).await;
    device(&db.pool, "359339075000003", Some(2 * 3600)).await;
    let set = |secs: i32| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "update fleet.analytics_config set offline_after_s = $1 where scope = 'global'",
            )
            .bind(secs)
            .execute(&pool)
            .await
            .expect("config");
        }
    };
    set(900).await;
    let expected = [("359339075000002", "offline"), ("359339075000003", "offline")];
    assert_eq!(statuses(&db.pool).await, pairs(&expected));
    set(4 * 3600).await;
    let expected = [("359339075000002", "stale"), ("359339075000003", "stale")];
    assert_eq!(statuses(&db.pool).await, pairs(&expected));
    // a device's own override wins over the global value
    sqlx::query(
        "insert into fleet.analytics_config (scope, scope_key, offline_after_s)
         values ('device', '359339075000002', 900)",
    )
    .execute(&db.pool)
    .await
    .expect("override");
    let expected = [("359339075000002", "offline"), ("359339075000003", "stale")];
    assert_eq!(statuses(&db.pool).await, pairs(&expected));
}

#[tokio::test]
async fn delay_percentiles_interpolate_over_the_fixes_of_the_last_24_hours() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "359339075000001", Some(600)).await;
    device(&db.pool, "359339075000002", Some(600)).await;
    // (minutes ago, delay s); the fix of 25 hours ago is left out
    for (mins, delay) in [(10, 40), (20, 10), (30, 100), (40, 30), (50, 20), (25 * 60, 9999)] {
        sqlx::query(
            "insert into fleet.positions (device_id, gps_time, received_at, lat, lon, source)
             select $1, t, t + make_interval(secs => $3), -1.28, 36.82, 'push'
             from (select now() - make_interval(mins => $2) as t) x",
        )
        .bind(d)
        .bind(mins)
        .bind(delay)
        .execute(&db.pool)
        .await
        .expect("position");
    }
    let rows: Vec<(i64, Option<f64>, Option<f64>)> = sqlx::query_as(
        "select fixes_24h, delay_p50_s, delay_p95_s from reporting.v_ingest_health_devices
         order by imei",
    )
    .fetch_all(&db.pool)
    .await
    .expect("delays");
    // sorted 10 20 30 40 100: p50 is the middle one; p95 sits at 0.95 x 4 = 3.8, so
    // 40 + 0.8 x (100 - 40) = 88
    let (n, p50, p95) = rows[0];
    assert_eq!((n, p50), (5, Some(30.0)));
    assert!((p95.expect("p95") - 88.0).abs() < 1e-9, "{p95:?}");
    assert_eq!(rows[1], (0, None, None), "no fixes, no delay");
}

#[tokio::test]
async fn the_delay_query_reads_only_the_partitions_of_the_last_24_hours() {
    let db = TestDb::migrated().await;
    sqlx::query("select fleet.create_positions_partition('2001-01-01')")
        .execute(&db.pool)
        .await
        .expect("old partition");
    let plan = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            let lines: Vec<String> =
                sqlx::query_scalar(sql).fetch_all(&pool).await.expect("explain");
            lines.join("\n")
        }
    };
    let unbounded = plan("explain select * from fleet.positions where device_id = 1").await;
    assert!(unbounded.contains("positions_y2001m01"), "{unbounded}");
    let health = plan("explain select * from reporting.v_ingest_health_devices").await;
    assert!(!health.contains("positions_y2001m01"), "{health}");
    assert!(health.contains("Subplans Removed"), "{health}");
}

#[tokio::test]
async fn the_union_view_has_a_row_per_job_and_per_active_device_with_status_and_lag() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.live", 600, "ok", POLLER).await;
    log.run("poll.live", 300, "failed", POLLER).await;
    device(&db.pool, "359339075000001", Some(60)).await;
    device(&db.pool, "359339075000004", None).await;
    type Row = (String, String, String, Option<i64>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "select scope, subject, status, lag_s,
                coalesce(detail ->> 'consecutive_failures', detail ->> 'fixes_24h')
         from reporting.v_ingest_health order by scope desc, subject",
    )
    .fetch_all(&db.pool)
    .await
    .expect("health");
    let strip = |r: &Row| (r.0.clone(), r.1.clone(), r.2.clone(), r.4.clone());
    let s = |x: &str| x.to_owned();
    assert_eq!(
        rows.iter().map(strip).collect::<Vec<_>>(),
        vec![
            (s("job"), s("poll.live"), s("failing"), Some(s("1"))),
            (s("device"), s("359339075000001"), s("live"), Some(s("0"))),
            (s("device"), s("359339075000004"), s("never_seen"), Some(s("0"))),
        ]
    );
    assert_lag(rows[0].3, 600);
    assert_lag(rows[1].3, 60);
    assert_eq!(rows[2].3, None);
}

#[tokio::test]
async fn fleet_ro_can_select_every_ingest_health_view() {
    let db = TestDb::migrated().await;
    let log = Log::new(&db);
    log.run("poll.live", 60, "ok", POLLER).await;
    device(&db.pool, "359339075000001", Some(60)).await;
    for view in [
        "reporting.v_ingest_health",
        "reporting.v_ingest_health_jobs",
        "reporting.v_ingest_health_devices",
    ] {
        let mut tx = db.pool.begin().await.expect("tx");
        sqlx::query("set local role fleet_ro").execute(&mut *tx).await.expect("role");
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {view}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("fleet_ro cannot read {view}: {e}"));
        assert!(n > 0, "{view} is empty");
        tx.rollback().await.expect("rollback");
    }
}
