//! The full rebuild (every marked device read in one scan, handed on in windows, built and
//! written in one pipeline) against the per-device passes that fed the builders as the fixes
//! arrived.

mod support;

use chrono::Duration;
use fleet_analytics::{mark_rebuild, TripWorker, TripWorkerConfig};
use fleet_core::{AnalyticsSettings, TripPoint};
use fleet_testkit::TestDb;
use support::{at, day, deliver, expected, stored, working_day, writer, Leg};

/// Every trip, stop and geofence event as JSON text, all columns but `computed_at`.
async fn derived(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select x from (
             select 1 as k, device_id, start_time as t, (to_jsonb(r) - 'computed_at')::text as x
             from fleet.trips r
             union all
             select 2, device_id, start_time, (to_jsonb(r) - 'computed_at')::text from fleet.stops r
             union all
             select 3, device_id, event_time, (to_jsonb(r) - 'computed_at')::text
             from fleet.geofence_events r) a
         order by k, device_id, t, x",
    )
    .fetch_all(&db.pool)
    .await
    .expect("derived rows")
}

/// Device `n`'s fixes: the working day shifted by `n` × 7 minutes, and for odd devices a
/// second, shorter day.
fn fixes_of(n: u32) -> Vec<TripPoint> {
    let shift = Duration::minutes(7 * i64::from(n));
    let mut points: Vec<TripPoint> =
        working_day().into_iter().map(|p| TripPoint { time: p.time + shift, ..p }).collect();
    if n % 2 == 1 {
        points.extend(day(
            at(14, 0) + shift,
            &[
                Leg::Park { mins: 10, every: 60 },
                Leg::Drive { mins: 25, kmh: 70.0 },
                Leg::Idle { mins: 6 },
                Leg::Park { mins: 45, every: 120 },
            ],
        ));
    }
    points
}

#[tokio::test]
async fn a_full_rebuild_in_many_windows_stores_what_the_passes_stored_as_fixes_came() {
    let db = TestDb::migrated().await;
    support::depot_and_customer(&db).await;
    let (w, _stop) = writer(&db);
    let devices: Vec<(u32, Vec<TripPoint>)> = (1..=5).map(|n| (n, fixes_of(n))).collect();
    let total: usize = devices.iter().map(|d| d.1.len()).sum();

    // the fixes arrive a batch at a time per device, a pass after each round
    let mut passes = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    for round in 0.. {
        let mut any = false;
        for (n, points) in &devices {
            if let Some(part) = points.chunks(41).nth(round) {
                deliver(&w, *n, part).await;
                any = true;
            }
        }
        if !any {
            break;
        }
        passes.pass(|_| {}).await.expect("pass");
    }
    let as_they_came = derived(&db).await;
    assert!(as_they_came.iter().filter(|r| r.contains("\"end_reason\"")).count() >= 10);
    assert!(as_they_came.iter().any(|r| r.contains("\"event\": \"enter\"")), "crossings recorded");

    // windows of ~300 fixes: the rebuild hands the ~1,400 fixes on in several of them (the
    // windows stay wider than how far a fix can sit from its arrival order in the heap: a few
    // pages, as each connection fills its own last page)
    let config = TripWorkerConfig { rebuild_window_fixes: 300, ..TripWorkerConfig::default() };
    let mut rebuilder = TripWorker::new(db.pool.clone(), config);
    assert_eq!(mark_rebuild(&db.pool, None, None).await.expect("mark"), 5);
    let report = rebuilder.pass(|_| {}).await.expect("rebuild");
    assert_eq!((report.devices, report.cold, report.fixes_read), (5, 5, total));
    assert_eq!(derived(&db).await, as_they_came, "the rebuild stores the same rows");
    assert_eq!(stored(&db, 3).await, expected(&fixes_of(3), &AnalyticsSettings::default()));
    let backlog: i64 = sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("backlog");
    assert_eq!(backlog, 0, "the marks are cleared");
    assert!(report.rebuild_windows >= 4, "read in several windows: {report:?}");
    assert_eq!(report.rebuild_reordered, 0, "{report:?}");

    // the builders the rebuild leaves in memory continue warm with the same result
    let more =
        day(at(20, 0), &[Leg::Park { mins: 10, every: 60 }, Leg::Drive { mins: 20, kmh: 45.0 }]);
    for (n, _) in &devices {
        deliver(&w, *n, &more).await;
    }
    let warm = rebuilder.pass(|_| {}).await.expect("warm pass");
    assert_eq!((warm.devices, warm.cold), (5, 0), "continued in memory");
    let continued = derived(&db).await;
    mark_rebuild(&db.pool, None, None).await.expect("mark");
    TripWorker::new(db.pool.clone(), TripWorkerConfig::default())
        .pass(|_| {})
        .await
        .expect("rebuild in one window");
    assert_eq!(derived(&db).await, continued);
}

#[tokio::test]
async fn devices_whose_fixes_were_stored_out_of_order_are_rebuilt_from_them_in_time_order() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let mut passes = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    // device 2's midday and afternoon arrive first and its morning later, as a late batch: in
    // the heap its morning comes after them, windows apart
    let late = fixes_of(2);
    let third = late.len() / 3;
    let (morning, rest) = late.split_at(third);
    let (midday, afternoon) = rest.split_at(third);
    for n in [1, 3, 4] {
        deliver(&w, n, &fixes_of(n)).await;
    }
    for part in [midday, afternoon, morning] {
        deliver(&w, 2, part).await;
        passes.pass(|_| {}).await.expect("pass");
    }
    let as_they_came = derived(&db).await;

    let config = TripWorkerConfig { rebuild_window_fixes: 20, ..TripWorkerConfig::default() };
    let mut rebuilder = TripWorker::new(db.pool.clone(), config);
    // devices 1 to 3 only: the scan reads theirs, not device 4's
    let some: Vec<String> = (1..=3).map(|n| support::imei(n).to_string()).collect();
    assert_eq!(mark_rebuild(&db.pool, Some(&some[..]), None).await.expect("mark"), 3);
    let report = rebuilder.pass(|_| {}).await.expect("rebuild");
    assert_eq!(report.rebuild_reordered, 1, "{report:?}");
    assert_eq!((report.devices, report.cold), (3, 3), "{report:?}");
    let theirs: usize = [1, 3].iter().map(|&n| fixes_of(n).len()).sum::<usize>() + late.len();
    assert_eq!(report.fixes_read, theirs + late.len(), "device 2's fixes read twice: {report:?}");
    assert_eq!(stored(&db, 2).await, expected(&late, &AnalyticsSettings::default()));
    assert_eq!(derived(&db).await, as_they_came, "the rebuild stores the same rows");
    let backlog: i64 = sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("backlog");
    assert_eq!(backlog, 0, "the marks are cleared");
}

#[tokio::test]
async fn a_rebuild_of_devices_without_usable_fixes_clears_their_segments_and_marks() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    deliver(&w, 1, &working_day()).await;
    let mut wk = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    wk.pass(|_| {}).await.expect("pass");
    // the fixes go (as retention would drop them); a rebuild then leaves nothing derived
    sqlx::query("delete from fleet.positions").execute(&db.pool).await.expect("delete");
    mark_rebuild(&db.pool, None, None).await.expect("mark");
    let report = wk.pass(|_| {}).await.expect("rebuild");
    assert_eq!((report.devices, report.fixes_read, report.trips_written), (1, 0, 0));
    assert!(derived(&db).await.is_empty());
    let backlog: i64 = sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("backlog");
    assert_eq!(backlog, 0);
}
