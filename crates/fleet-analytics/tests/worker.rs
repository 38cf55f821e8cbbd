//! The trip builder worker against a real PostgreSQL database, fed by the real ingest writer.

mod support;

use std::time::Duration;

use chrono::Utc;
use fleet_analytics::{mark_rebuild, refresh_kpis, TripWorker, TripWorkerConfig};
use fleet_core::AnalyticsSettings;
use fleet_db::{Lease, LeaseOptions};
use fleet_testkit::TestDb;
use support::{at, day, deliver, expected, stored, working_day, writer, Leg};
use tokio_util::sync::CancellationToken;

fn worker(db: &TestDb) -> TripWorker {
    TripWorker::new(db.pool.clone(), TripWorkerConfig::default())
}

async fn backlog_len(db: &TestDb) -> i64 {
    sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("backlog")
}

async fn point_counts(db: &TestDb) -> Vec<i32> {
    sqlx::query_scalar("select point_count from fleet.trips order by start_time")
        .fetch_all(&db.pool)
        .await
        .expect("trips")
}

#[tokio::test]
async fn fixes_written_by_the_ingest_writer_become_the_trips_and_stops_of_a_full_rebuild() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    deliver(&w, 1, &points).await;
    assert_eq!(backlog_len(&db).await, 1, "the writer marks the device");

    let report = worker(&db).pass(|_| {}).await.expect("pass");
    assert_eq!(report.devices, 1);
    assert_eq!(report.fixes_read, points.len());

    let rows = stored(&db, 1).await;
    let want = expected(&points, &AnalyticsSettings::default());
    assert_eq!(rows, want);
    let trips: Vec<_> = rows.iter().filter(|r| r.0 == "trip").collect();
    assert_eq!(trips.len(), 2, "two drives, split by the 40-minute delivery: {rows:?}");
    assert_eq!(trips[0].4, "work_stop");
    assert_eq!(trips[1].4, "work_stop", "parked for 30 minutes at the end");
    assert_eq!(backlog_len(&db).await, 0, "the mark is cleared with the result");
}

#[tokio::test]
async fn new_fixes_continue_the_builder_in_memory_and_give_the_same_result() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    let mut wk = worker(&db);
    for part in points.chunks(37) {
        deliver(&w, 1, part).await;
        wk.pass(|_| {}).await.expect("pass");
    }
    let again = wk.pass(|_| {}).await.expect("idle pass");
    assert_eq!(again.devices, 0, "nothing new, nothing done");
    assert_eq!(stored(&db, 1).await, expected(&points, &AnalyticsSettings::default()));
}

#[tokio::test]
async fn a_late_batch_in_the_middle_of_a_closed_trip_re_derives_it() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = day(
        at(5, 0),
        &[
            Leg::Park { mins: 20, every: 60 },
            Leg::Drive { mins: 15, kmh: 40.0 },
            Leg::Park { mins: 40, every: 60 },
            Leg::Drive { mins: 10, kmh: 50.0 },
            Leg::Park { mins: 30, every: 60 },
            Leg::Drive { mins: 20, kmh: 30.0 },
            Leg::Park { mins: 30, every: 60 },
        ],
    );
    // the third drive runs 06:55-07:15; hold back its middle ten minutes
    let (late, on_time): (Vec<_>, Vec<_>) =
        points.iter().partition(|p| p.time >= at(7, 0) && p.time < at(7, 10));
    let mut wk = worker(&db);
    deliver(&w, 1, &on_time).await;
    wk.pass(|_| {}).await.expect("pass");
    assert_eq!(stored(&db, 1).await, expected(&on_time, &AnalyticsSettings::default()));
    let before = point_counts(&db).await;

    deliver(&w, 1, &late).await;
    let report = wk.pass(|_| {}).await.expect("pass");
    assert_eq!(report.cold, 1, "late data re-derives from the stored segments");
    // the stop before the last trip that ended before the late fixes is the restart point:
    // the first drive and the parking before it are not read again
    assert!(report.fixes_read < points.len() - 40, "read {} fixes", report.fixes_read);
    let after = point_counts(&db).await;
    assert_eq!(after[..2], before[..2]);
    assert_eq!(after[2], before[2] + late.len() as i32, "the trip now has the fixes of its middle");
    assert_eq!(stored(&db, 1).await, expected(&points, &AnalyticsSettings::default()));
}

#[tokio::test]
async fn a_new_worker_without_builders_in_memory_continues_from_the_stored_segments() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    let cut = points.len() * 2 / 3;
    deliver(&w, 1, &points[..cut]).await;
    worker(&db).pass(|_| {}).await.expect("pass");
    deliver(&w, 1, &points[cut..]).await;
    let report = worker(&db).pass(|_| {}).await.expect("pass of a restarted process");
    assert_eq!(report.cold, 1);
    assert!(report.fixes_read < points.len());
    assert_eq!(stored(&db, 1).await, expected(&points, &AnalyticsSettings::default()));
}

#[tokio::test]
async fn changing_a_trip_rule_rebuilds_the_devices_it_applies_to() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    deliver(&w, 1, &points).await;
    let mut wk = worker(&db);
    wk.pass(|_| {}).await.expect("pass");
    assert_eq!(stored(&db, 1).await.iter().filter(|r| r.0 == "trip").count(), 2);

    // a work stop of an hour: the 40-minute delivery no longer ends the first trip
    sqlx::query("update fleet.analytics_config set work_stop_min_s = 3600 where scope = 'global'")
        .execute(&db.pool)
        .await
        .expect("update settings");
    assert_eq!(backlog_len(&db).await, 1, "the settings change marks the device");
    let report = wk.pass(|_| {}).await.expect("pass");
    assert_eq!(report.cold, 1, "the builder in memory used the old rule");
    let settings = AnalyticsSettings { work_stop_min_s: 3600, ..AnalyticsSettings::default() };
    let rows = stored(&db, 1).await;
    assert_eq!(rows, expected(&points, &settings));
    assert_eq!(rows.iter().filter(|r| r.0 == "trip").count(), 1);
}

#[tokio::test]
async fn trips_are_named_after_the_geofences_they_start_and_end_in_and_crossings_are_recorded() {
    let db = TestDb::migrated().await;
    support::depot_and_customer(&db).await;
    let (w, _stop) = writer(&db);
    deliver(&w, 1, &working_day()).await;
    worker(&db).pass(|_| {}).await.expect("pass");

    let trips: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("select start_geofence, end_geofence from fleet.trips order by start_time")
            .fetch_all(&db.pool)
            .await
            .expect("trips");
    assert_eq!(trips[0], (Some("Depot".into()), Some("Customer".into())));
    assert_eq!(trips[1].0.as_deref(), Some("Customer"));
    let events: Vec<(String, String)> = sqlx::query_as(
        "select g.name, e.event from fleet.geofence_events e join fleet.geofences g using (geofence_id)
         order by e.event_time, e.event desc",
    )
    .fetch_all(&db.pool)
    .await
    .expect("events");
    let events: Vec<(&str, &str)> = events.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        events,
        [("Depot", "exit"), ("Customer", "enter"), ("Customer", "exit")],
        "first seen inside the depot is not an entry"
    );
}

#[tokio::test]
async fn an_open_trip_of_a_device_that_fell_silent_is_closed() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    // the fixes end mid-drive; a trip stored back then was still open
    let points =
        day(at(5, 0), &[Leg::Park { mins: 10, every: 60 }, Leg::Drive { mins: 10, kmh: 40.0 }]);
    deliver(&w, 1, &points).await;
    let mut wk = worker(&db);
    wk.pass(|_| {}).await.expect("pass");
    sqlx::query("update fleet.trips set end_reason = 'open'")
        .execute(&db.pool)
        .await
        .expect("reopen");

    let report = wk.pass(|_| {}).await.expect("pass");
    assert_eq!(report.devices, 1, "the silent device is revisited without a mark");
    let reasons: Vec<String> = sqlx::query_scalar("select end_reason from fleet.trips")
        .fetch_all(&db.pool)
        .await
        .expect("trips");
    assert_eq!(reasons, ["day_end"]);
}

#[tokio::test]
async fn trips_rebuild_since_a_time_keeps_what_came_before_and_matches_a_full_rebuild() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    deliver(&w, 1, &points).await;
    deliver(&w, 2, &points).await;
    let mut wk = worker(&db);
    wk.pass(|_| {}).await.expect("pass");
    let computed_before: Vec<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select computed_at from fleet.trips order by device_id, start_time")
            .fetch_all(&db.pool)
            .await
            .expect("trips");

    let device_1 = [support::imei(1).as_str().to_owned()];
    let marked = mark_rebuild(&db.pool, Some(&device_1[..]), Some(at(6, 40))).await.expect("mark");
    assert_eq!(marked, 1);
    let report = wk.pass(|_| {}).await.expect("pass");
    assert_eq!(report.devices, 1, "only the device asked for");
    let computed_after: Vec<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select computed_at from fleet.trips order by device_id, start_time")
            .fetch_all(&db.pool)
            .await
            .expect("trips");
    assert_eq!(computed_after[0], computed_before[0], "the first trip (05:20-05:35) was kept");
    assert_ne!(
        computed_after[1], computed_before[1],
        "the trip before 06:40 was recomputed: its stop may have changed"
    );
    assert_eq!(computed_after[2..], computed_before[2..], "the other device was left alone");
    assert_eq!(stored(&db, 1).await, expected(&points, &AnalyticsSettings::default()));
}

#[tokio::test]
async fn only_the_holder_of_the_lease_builds_trips() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    deliver(&w, 1, &working_day()).await;
    let other = Lease::try_acquire(&db.pool, "trip-builder", LeaseOptions::default())
        .await
        .expect("lease query")
        .expect("free");

    let log = fleet_testkit::logs::capture(tracing::Level::INFO);
    let shutdown = CancellationToken::new();
    let config =
        TripWorkerConfig { interval: Duration::from_millis(100), ..TripWorkerConfig::default() };
    let task = tokio::spawn(TripWorker::new(db.pool.clone(), config).run(shutdown.clone()));
    // the worker has tried the lease and been refused once it says it stands by
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.lines_with("another process builds trips; standing by") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the worker never tried the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(backlog_len(&db).await, 1, "standing by while another process holds the lease");

    other.release().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while backlog_len(&db).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the worker never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!stored(&db, 1).await.is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops").expect("joins");
}

#[tokio::test]
async fn a_rebuild_of_an_unknown_imei_is_refused_naming_it() {
    let db = TestDb::migrated().await;
    let err = mark_rebuild(&db.pool, Some(&["861234567999999".to_owned()][..]), None)
        .await
        .expect_err("unknown");
    assert_eq!(err.to_string(), "no device has IMEI 861234567999999");
}

#[tokio::test]
async fn the_kpi_step_refreshes_the_days_the_trip_pass_queued_once() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let points = working_day();
    let mut wk = worker(&db);
    for part in points.chunks(100) {
        deliver(&w, 1, part).await;
        wk.pass(|_| {}).await.expect("pass");
    }
    let queued: i64 = sqlx::query_scalar("select count(*) from fleet.kpi_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("kpi backlog");
    assert_eq!(queued, 1, "several passes over one device-day queue it once");
    let report = refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    assert_eq!((report.devices, report.rows), (1, 1));
    // 05:00-07:00 UTC is 08:00-10:00 in Nairobi: one local day with both trips
    let (trips, distance_m, kpi_trips, kpi_distance_m): (i64, f64, i32, f64) = sqlx::query_as(
        "select (select count(*) from fleet.trips), (select sum(distance_m) from fleet.trips),
                k.trips, k.distance_m
         from fleet.kpi_daily k where k.local_date = '2026-03-02'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("kpi row");
    assert_eq!(i64::from(kpi_trips), trips);
    // the KPI table keeps whole metres
    assert!((kpi_distance_m - distance_m).abs() <= 0.5, "{kpi_distance_m} vs {distance_m}");
    assert_eq!(refresh_kpis(&db.pool, 200, |_| {}).await.expect("again").devices, 0);
}

#[tokio::test]
async fn a_pass_and_its_chunks_log_inside_their_spans() {
    // the test runtime runs on this thread, so the capture sees the pass
    let log = fleet_testkit::logs::capture(tracing::Level::DEBUG);
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    deliver(&w, 1, &working_day()).await;
    worker(&db).pass(|_| {}).await.expect("pass");
    let text = log.text();
    let line = text
        .lines()
        .find(|l| l.contains("trip builder chunk"))
        .unwrap_or_else(|| panic!("the chunk is logged: {text}"));
    assert!(line.contains("trip_pass:trip_chunk{devices=1 first_device="), "{line}");
}
