//! `fleetd trips rebuild` against a real database.

mod support;

use fleet_db::{Lease, LeaseOptions};
use fleet_testkit::TestDb;
use support::fleetd;

/// One vehicle: parked 10 minutes, 20 minutes east at 36 km/h (a fix every 10 s), parked 20.
async fn seed_one_trip(db: &TestDb) {
    sqlx::query("insert into fleet.devices (imei, name) values ('861234567800001', 'KDA 001A')")
        .execute(&db.pool)
        .await
        .expect("device");
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source)
         select 1, t, -1.286, 36.817 + 0.0009 * least(greatest(s - 60, 0), 120) / 10.0,
                case when s between 61 and 180 then 36 else 0 end, s between 55 and 185, 'push'
         from generate_series(0, 300) as s,
              lateral (select timestamptz '2026-03-02 05:00:00+00' + s * interval '10 seconds' as t) x",
    )
    .execute(&db.pool)
    .await
    .expect("positions");
    // as if these fixes predate the trip builder: nothing marks them
    sqlx::query("delete from fleet.analytics_backlog").execute(&db.pool).await.expect("clear");
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test]
async fn trips_rebuild_derives_trips_and_stops_from_the_stored_fixes() {
    let db = TestDb::migrated().await;
    seed_one_trip(&db).await;
    let out = fleetd()
        .args(["trips", "rebuild", "--database-url", db.url()])
        .output()
        .expect("fleetd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rebuilt 1 devices: 301 fixes read, 1 trips written"), "{stdout}");
    assert_eq!(
        count(&db, "select count(*) from fleet.trips where end_reason = 'work_stop'").await,
        1
    );
    assert_eq!(count(&db, "select count(*) from fleet.stops").await, 2);
    assert_eq!(count(&db, "select count(*) from fleet.analytics_backlog").await, 0);
    assert!(stdout.contains(", 1 daily KPI rows"), "{stdout}");
    assert_eq!(count(&db, "select count(*) from fleet.kpi_daily where trips = 1").await, 1);
    assert_eq!(count(&db, "select count(*) from fleet.kpi_backlog").await, 0);
}

#[tokio::test]
async fn trips_rebuild_of_an_unknown_imei_fails_naming_it() {
    let db = TestDb::migrated().await;
    let out = fleetd()
        .args(["trips", "rebuild", "--database-url", db.url(), "--imei", "861234567899999"])
        .output()
        .expect("fleetd runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no device has IMEI 861234567899999"), "{stderr}");
}

#[tokio::test]
async fn trips_rebuild_hands_the_work_to_the_process_holding_the_lease() {
    let db = TestDb::migrated().await;
    seed_one_trip(&db).await;
    let holder = Lease::try_acquire(&db.pool, "trip-builder", LeaseOptions::default())
        .await
        .expect("lease query")
        .expect("free");
    let out = fleetd()
        .args(["trips", "rebuild", "--database-url", db.url(), "--imei", "861234567800001"])
        .output()
        .expect("fleetd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("marked 1 devices for rebuilding; another fleetd process"), "{stdout}");
    assert_eq!(count(&db, "select count(*) from fleet.trips").await, 0);
    assert_eq!(count(&db, "select count(*) from fleet.analytics_backlog").await, 1);
    holder.release().await;
}
