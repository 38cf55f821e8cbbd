//! Monthly partitions of fleet.positions: writes never fail for want of one.

use chrono::{Datelike, NaiveDate, Utc};
use fleet_db::partitions;
use fleet_testkit::TestDb;

async fn device(db: &TestDb) -> i32 {
    sqlx::query_scalar(
        "insert into fleet.devices (imei) values ('359339075012345') returning device_id",
    )
    .fetch_one(&db.pool)
    .await
    .expect("device")
}

async fn insert_at(db: &TestDb, device: i32, at: &str) {
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, source)
         values ($1, $2::timestamptz, -4.04, 39.67, 42, 'track')",
    )
    .bind(device)
    .bind(at)
    .execute(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("insert at {at}: {e}"));
}

async fn partition_of(db: &TestDb, at: &str) -> String {
    sqlx::query_scalar(
        "select tableoid::regclass::text from fleet.positions where gps_time = $1::timestamptz",
    )
    .bind(at)
    .fetch_one(&db.pool)
    .await
    .expect("row")
}

#[tokio::test]
async fn positions_for_months_without_a_partition_are_stored_then_moved_into_their_own() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    let far_future = format!("{}-05-10 08:00:00+00", Utc::now().year() + 3);
    insert_at(&db, d, "2019-03-15 12:30:00+00").await;
    insert_at(&db, d, &far_future).await;
    assert_eq!(partition_of(&db, "2019-03-15 12:30:00+00").await, "fleet.positions_default");

    let today = Utc::now().date_naive();
    let touched = partitions::maintain(&db.pool, today, 1).await.expect("maintain");
    assert!(touched.contains(&"positions_y2019m03".to_owned()), "{touched:?}");

    assert_eq!(partition_of(&db, "2019-03-15 12:30:00+00").await, "fleet.positions_y2019m03");
    assert_eq!(
        partition_of(&db, &far_future).await,
        format!("fleet.positions_y{}m05", Utc::now().year() + 3)
    );
    let left: i64 = sqlx::query_scalar("select count(*) from fleet.positions_default")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "the default partition is emptied");
    let total: i64 = sqlx::query_scalar("select count(*) from fleet.positions")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(total, 2, "no row lost in the move");
}

#[tokio::test]
async fn next_month_is_ready_after_migrating_and_maintenance_keeps_months_ahead() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    let next = partitions::month_start(Utc::now().date_naive(), 1);
    let at = format!("{} 00:00:00+00", next);
    insert_at(&db, d, &at).await;
    assert_eq!(
        partition_of(&db, &at).await,
        format!("fleet.positions_y{}m{:02}", next.year(), next.month())
    );

    let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
    partitions::maintain(&db.pool, today, 6).await.expect("maintain");
    let names: Vec<String> =
        partitions::list(&db.pool).await.expect("list").into_iter().map(|p| p.name).collect();
    for m in ["2026m11", "2026m12", "2027m01", "2027m05"] {
        assert!(names.contains(&format!("positions_y{m}")), "{m} missing from {names:?}");
    }
    let listed = partitions::list(&db.pool).await.expect("list");
    let may = listed.iter().find(|p| p.name == "positions_y2027m05").expect("may");
    assert_eq!(may.from.map(|d| d.to_rfc3339()), Some("2027-05-01T00:00:00+00:00".to_owned()));
    assert_eq!(listed.last().map(|p| p.name.as_str()), Some("positions_default"));
}

#[tokio::test]
async fn two_processes_maintaining_at_once_do_not_collide() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;
    let today = NaiveDate::from_ymd_opt(2030, 1, 15).expect("date");
    let (a, b) = tokio::join!(
        partitions::maintain(&db.pool, today, 4),
        partitions::maintain(&other, today, 4)
    );
    assert_eq!(a.expect("first"), b.expect("second"));
}
