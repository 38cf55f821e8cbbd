//! The poll jobs against the simulator over real HTTP, into a real database: each run stores
//! exactly what the simulated account has, logs itself, and moves its cursor.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{jobs, runs, start_sim, start_sim_of, yesterday_evening, Sim, SEED};
use chrono::{DateTime, TimeDelta, Utc};
use fleet_ingest::{PollConfig, RunStatus};
use fleet_sim::model::city::CITIES;
use fleet_testkit::TestDb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A working day: from 05:00 to 19:00 in Nairobi.
fn day_config() -> PollConfig {
    PollConfig { first_backfill: Duration::from_secs(14 * 3600), ..PollConfig::default() }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Every stored (IMEI, GPS time) of positions.
async fn stored_fixes(pool: &PgPool) -> BTreeSet<(String, i64)> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "select d.imei, p.gps_time from fleet.positions p join fleet.devices d using (device_id)",
    )
    .fetch_all(pool)
    .await
    .expect("positions");
    rows.into_iter().map(|(i, t)| (i, t.timestamp())).collect()
}

/// The simulator's (IMEI, time) of every fix in `[from, to]`.
fn simulated_fixes(sim: &Sim, from: i64, to: i64) -> BTreeSet<(String, i64)> {
    let fleet = &sim.state.fleet;
    fleet
        .vehicles()
        .iter()
        .flat_map(|v| {
            fleet.history(v.index, from, to).into_iter().map(|f| (v.imei.to_string(), f.time))
        })
        .collect()
}

#[tokio::test]
async fn device_sync_registers_the_accounts_devices_and_marks_those_that_left_it_inactive() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let now = Utc::now().timestamp();
    let (six, four) = (start_sim(6, now).await, start_sim(4, now).await);
    let all = jobs(&db.pool, &six, &stop, PollConfig::default());

    let first = all.sync_devices().await.expect("first sync");
    assert_eq!((first.counts.received, first.counts.new, first.status), (6, 6, RunStatus::Ok));
    for v in six.state.fleet.vehicles() {
        let row: (String, Option<String>, Option<String>, Option<String>, Option<String>, bool) =
            sqlx::query_as(
                "select name, plate, driver_name, model, city, active from fleet.devices
                 where imei = $1",
            )
            .bind(v.imei.as_str())
            .fetch_one(&db.pool)
            .await
            .expect("registered");
        assert_eq!(row.0, v.name);
        assert_eq!(row.1.as_deref(), Some(v.plate.as_str()));
        assert_eq!(row.2.as_deref(), Some(v.driver.as_str()));
        assert_eq!(row.3.as_deref(), Some(v.model));
        assert_eq!(row.4.as_deref(), Some(CITIES[v.city].name), "the vendor group fills city");
        assert!(row.5);
    }

    // an operator files the first vehicle under another cost centre and city
    let edited = six.state.fleet.vehicles()[0].imei.to_string();
    sqlx::query(
        "update fleet.devices set cost_centre = 'Ops East', city = 'Thika' where imei = $1",
    )
    .bind(&edited)
    .execute(&db.pool)
    .await
    .expect("operator edit");

    let fewer = jobs(&db.pool, &four, &stop, PollConfig::default());
    let second = fewer.sync_devices().await.expect("second sync");
    assert_eq!((second.counts.received, second.counts.new, second.counts.duplicate), (4, 0, 4));
    assert_eq!(count(&db.pool, "select count(*) from fleet.devices").await, 6, "never deleted");
    let gone: Vec<(String, bool, bool)> = sqlx::query_as(
        "select imei, active, deactivated_at is not null from fleet.devices
         where not active order by device_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("inactive");
    let left: Vec<String> =
        six.state.fleet.vehicles()[4..].iter().map(|v| v.imei.to_string()).collect();
    assert_eq!(gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>(), left);
    assert!(gone.iter().all(|g| !g.1 && g.2), "inactive with the time it left");
    let kept: (Option<String>, Option<String>) =
        sqlx::query_as("select cost_centre, city from fleet.devices where imei = $1")
            .bind(&edited)
            .fetch_one(&db.pool)
            .await
            .expect("edited device");
    assert_eq!(kept, (Some("Ops East".to_owned()), Some("Thika".to_owned())));

    // an operator renames the second vehicle and clears its plate through the API (which
    // records the fields in edited_fields); the next sync keeps both, and the driver the
    // operator did not touch still follows the vendor
    let renamed = six.state.fleet.vehicles()[1].imei.to_string();
    sqlx::query(
        "update fleet.devices set name = 'Ambulance 7', plate = null, driver_name = 'old',
             edited_fields = '{name,plate}'
         where imei = $1",
    )
    .bind(&renamed)
    .execute(&db.pool)
    .await
    .expect("operator edit");
    fewer.sync_devices().await.expect("sync after the edit");
    let row: (String, Option<String>, Option<String>) =
        sqlx::query_as("select name, plate, driver_name from fleet.devices where imei = $1")
            .bind(&renamed)
            .fetch_one(&db.pool)
            .await
            .expect("renamed device");
    let vendor = &six.state.fleet.vehicles()[1];
    assert_eq!(row, ("Ambulance 7".to_owned(), None, Some(vendor.driver.clone())));

    all.sync_devices().await.expect("third sync");
    assert_eq!(
        count(
            &db.pool,
            "select count(*) from fleet.devices where active and deactivated_at is null"
        )
        .await,
        6,
        "listed again, active again"
    );
    let log = runs(&db.pool, "poll.devices").await;
    let counts: Vec<(i32, i32, i32)> = log.iter().map(|r| (r.1, r.2, r.3)).collect();
    assert_eq!(counts, vec![(6, 6, 0), (4, 0, 4), (4, 0, 4), (6, 0, 6)], "one row per sync");
    assert!(log.iter().all(|r| r.0 == "ok"));
}

#[tokio::test]
async fn vendor_names_with_bidi_overrides_are_stored_without_them_and_the_device_is_kept() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let mut fleet = fleet_sim::Fleet::new(SEED, 2);
    fleet.relabel(0, "Van \u{202E}7 naV\u{200B}", "KDA\u{202E} 123X");
    let sim = start_sim_of(fleet, Utc::now().timestamp()).await;
    let run =
        jobs(&db.pool, &sim, &stop, PollConfig::default()).sync_devices().await.expect("sync");
    assert_eq!((run.counts.new, run.counts.rejected, run.status), (2, 0, RunStatus::Ok));
    let imei = sim.state.fleet.vehicles()[0].imei.to_string();
    let (name, plate): (String, Option<String>) =
        sqlx::query_as("select name, plate from fleet.devices where imei = $1")
            .bind(&imei)
            .fetch_one(&db.pool)
            .await
            .expect("registered");
    assert_eq!((name.as_str(), plate.as_deref()), ("Van 7 naV", Some("KDA 123X")));
    let detail: serde_json::Value = sqlx::query_scalar(
        "select detail from fleet.ingestion_log where job = 'poll.devices'
           and detail->>'source' = 'poller'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("log row");
    assert_eq!(detail["hidden_characters_stripped"], 1, "{detail}");
}

#[tokio::test]
async fn a_track_poll_over_a_working_day_stores_exactly_the_simulated_history_and_a_rerun_changes_nothing(
) {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let end = yesterday_evening();
    let sim = start_sim(4, end.timestamp()).await;
    let jobs = jobs(&db.pool, &sim, &stop, day_config());
    jobs.sync_devices().await.expect("sync");

    let first = jobs.poll_track(end).await.expect("track poll");
    let expected = simulated_fixes(&sim, end.timestamp() - 14 * 3600, end.timestamp());
    assert!(expected.len() > 1000, "a day of driving: {}", expected.len());
    assert_eq!(stored_fixes(&db.pool).await, expected);
    assert_eq!((first.counts.new, first.counts.rejected, first.devices), (expected.len(), 0, 4));
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.positions where source <> 'track'").await,
        0
    );

    let newest: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "select d.imei, max(p.gps_time) from fleet.positions p join fleet.devices d using (device_id)
         group by d.imei",
    )
    .fetch_all(&db.pool)
    .await
    .expect("newest");
    for (imei, t) in &newest {
        let cursor: DateTime<Utc> = sqlx::query_scalar(
            "select c.cursor_time from fleet.poll_cursors c join fleet.devices d using (device_id)
             where c.job = 'poll.track' and d.imei = $1",
        )
        .bind(imei)
        .fetch_one(&db.pool)
        .await
        .expect("cursor");
        assert_eq!(cursor, *t, "the cursor is the newest point of {imei}");
    }

    let again = jobs.poll_track(end).await.expect("second poll");
    assert_eq!(again.counts.new, 0);
    assert!(again.counts.duplicate > 0 && again.counts.duplicate == again.counts.received);
    assert_eq!(stored_fixes(&db.pool).await, expected, "nothing changed");
    let log = runs(&db.pool, "poll.track").await;
    let n = expected.len() as i32;
    let dup = again.counts.duplicate as i32;
    assert_eq!(
        log,
        vec![("ok".to_owned(), n, n, 0, 0, None), ("ok".to_owned(), dup, 0, dup, 0, None),]
    );
}

#[tokio::test]
async fn a_track_poll_after_two_days_down_fills_the_gap_from_each_devices_cursor() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let end = yesterday_evening();
    let sim = start_sim(2, end.timestamp()).await;
    let jobs = jobs(&db.pool, &sim, &stop, PollConfig::default());
    jobs.sync_devices().await.expect("sync");
    let down_since = end - TimeDelta::days(2);
    sqlx::query(
        "insert into fleet.poll_cursors (job, device_id, cursor_time)
         select 'poll.track', device_id, $1 from fleet.devices",
    )
    .bind(down_since)
    .execute(&db.pool)
    .await
    .expect("old cursors");

    jobs.poll_track(end).await.expect("catch-up poll");
    let from = down_since.timestamp() - 35 * 60;
    assert_eq!(stored_fixes(&db.pool).await, simulated_fixes(&sim, from, end.timestamp()));
}

#[tokio::test]
async fn a_live_poll_stores_each_reporting_vehicles_latest_fix_and_device_latest_matches_it() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let at = yesterday_evening().timestamp() - 5 * 3600;
    let sim = start_sim(8, at).await;
    let jobs = jobs(&db.pool, &sim, &stop, PollConfig::default());

    let report = jobs.poll_live().await.expect("live poll");
    let fleet = &sim.state.fleet;
    let latest: Vec<_> = fleet
        .vehicles()
        .iter()
        .filter_map(|v| fleet.latest(v.index, at).map(|f| (v.imei.to_string(), f)))
        .collect();
    assert!(latest.len() >= 6, "most vehicles report");
    assert_eq!(report.counts.new, latest.len());
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.device_latest").await,
        latest.len() as i64
    );
    for (imei, fix) in &latest {
        let row: (DateTime<Utc>, f64, f64, String) = sqlx::query_as(
            "select l.gps_time, l.lat, l.lon, l.source from fleet.device_latest l
             join fleet.devices d using (device_id) where d.imei = $1",
        )
        .bind(imei)
        .fetch_one(&db.pool)
        .await
        .expect("latest row");
        assert_eq!(row.0.timestamp(), fix.time);
        assert_eq!((row.1, row.2), (fix.position.lat(), fix.position.lon()));
        assert_eq!(row.3, "poll");
    }
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.positions where source = 'poll'").await,
        latest.len() as i64,
        "the live fix is also history"
    );
    assert_eq!(runs(&db.pool, "poll.live").await.len(), 1);
}

#[tokio::test]
async fn alarm_and_trip_polls_store_the_simulated_alarms_and_vendor_trips() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let end = yesterday_evening();
    let sim = start_sim(10, end.timestamp()).await;
    let jobs = jobs(&db.pool, &sim, &stop, PollConfig::default());
    jobs.sync_devices().await.expect("sync");

    let alarms = jobs.poll_alarms(end).await.expect("alarm poll");
    let trips = jobs.poll_trips(end).await.expect("trip poll");
    let fleet = &sim.state.fleet;
    let (from, to) = (end.timestamp() - 86_400, end.timestamp());
    let expected_alarms: BTreeSet<(String, &str, i64)> = fleet
        .vehicles()
        .iter()
        .flat_map(|v| {
            fleet
                .alarms(v.index, from, to)
                .into_iter()
                .map(|a| (v.imei.to_string(), a.code, a.time))
        })
        .collect();
    let expected_trips: usize =
        fleet.vehicles().iter().map(|v| fleet.trips(v.index, from, to).len()).sum();
    assert!(!expected_alarms.is_empty() && expected_trips > 10);
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.alarms where source = 'poll'").await,
        expected_alarms.len() as i64
    );
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.vendor_trips where source = 'poll'").await,
        expected_trips as i64
    );
    assert_eq!((alarms.counts.new, alarms.counts.rejected), (expected_alarms.len(), 0));
    assert_eq!((trips.counts.new, trips.counts.rejected), (expected_trips, 0));

    let cursors: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "select job, cursor_time from fleet.poll_cursors where device_id is null order by job",
    )
    .fetch_all(&db.pool)
    .await
    .expect("cursors");
    assert_eq!(cursors, vec![("poll.alarms".to_owned(), end), ("poll.trips".to_owned(), end)]);

    let again = jobs.poll_alarms(end).await.expect("second alarm poll");
    assert_eq!(again.counts.new, 0, "the overlap only finds what is stored");
    assert_eq!(runs(&db.pool, "poll.alarms").await.len(), 2);
    assert_eq!(runs(&db.pool, "poll.trips").await.len(), 1);
}

#[tokio::test]
async fn a_backfill_stores_the_range_and_never_moves_a_cursor_back() {
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let end = yesterday_evening();
    let sim = start_sim(3, end.timestamp()).await;
    let jobs = jobs(&db.pool, &sim, &stop, PollConfig::default());
    jobs.sync_devices().await.expect("sync");
    let fleet = &sim.state.fleet;
    let ahead = fleet.vehicles()[0].imei.to_string();
    sqlx::query(
        "insert into fleet.poll_cursors (job, device_id, cursor_time)
         select 'poll.track', device_id, $2 from fleet.devices where imei = $1",
    )
    .bind(&ahead)
    .bind(end)
    .execute(&db.pool)
    .await
    .expect("a recent cursor");

    let (from, to) = (end - TimeDelta::days(3), end - TimeDelta::days(2));
    let mut steps = Vec::new();
    let report =
        fleet_ingest::backfill(&jobs.client, &jobs.writer, &db.pool, from, to, None, |d, t| {
            steps.push((d, t))
        })
        .await
        .expect("backfill");
    assert_eq!(steps, vec![(1, 4), (2, 4), (3, 4), (4, 4)], "one step per device, then alarms");
    assert_eq!(
        stored_fixes(&db.pool).await,
        simulated_fixes(&sim, from.timestamp(), to.timestamp())
    );
    assert_eq!(report.job, "backfill");
    let expected_alarms: usize = fleet
        .vehicles()
        .iter()
        .map(|v| fleet.alarms(v.index, from.timestamp(), to.timestamp()).len())
        .sum();
    assert_eq!(count(&db.pool, "select count(*) from fleet.alarms").await, expected_alarms as i64);

    let cursors: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "select d.imei, c.cursor_time from fleet.poll_cursors c join fleet.devices d using (device_id)
         where c.job = 'poll.track'",
    )
    .fetch_all(&db.pool)
    .await
    .expect("cursors");
    for (imei, cursor) in cursors {
        if imei == ahead {
            assert_eq!(cursor, end, "a newer cursor stays where it was");
        } else {
            assert!(cursor > from && cursor <= to, "moved up to the backfilled data: {cursor}");
        }
    }
    assert_eq!(
        count(&db.pool, "select count(*) from fleet.poll_cursors where device_id is null").await,
        0,
        "the account-wide alarm cursor is left alone"
    );
    assert_eq!(runs(&db.pool, "backfill").await.len(), 1);
}

#[tokio::test]
async fn a_run_logs_inside_its_poll_job_span() {
    // the test runtime runs on this thread, so the capture sees the run
    let log = fleet_testkit::logs::capture(tracing::Level::INFO);
    let db = TestDb::migrated().await;
    let stop = CancellationToken::new();
    let sim = start_sim(2, Utc::now().timestamp()).await;
    let jobs = jobs(&db.pool, &sim, &stop, PollConfig::default());
    let report = jobs.run(fleet_ingest::Job::Devices, Utc::now()).await.expect("sync");
    assert_eq!(report.counts.new, 2);
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("device registry changed"))
        .unwrap_or_else(|| panic!("the sync logs its changes: {text}"));
    assert!(line.contains("poll_job{job=poll.devices}"), "{line}");
}
