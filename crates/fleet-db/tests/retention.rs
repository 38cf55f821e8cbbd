//! Retention: expired positions partitions are dropped whole, nothing else is touched; trips
//! and alarms keep their own longer periods; only the lease holder runs it.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fleet_config::RetentionConfig;
use fleet_db::{partitions, retention, Lease, LeaseOptions};
use fleet_testkit::TestDb;

async fn device(db: &TestDb) -> i32 {
    sqlx::query_scalar(
        "insert into fleet.devices (imei) values ('359339075012345') returning device_id",
    )
    .fetch_one(&db.pool)
    .await
    .expect("device")
}

async fn position(db: &TestDb, device: i32, at: &str) {
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, source)
         values ($1, $2::timestamptz, -1.28, 36.82, 30, 'track')",
    )
    .bind(device)
    .bind(at)
    .execute(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("position at {at}: {e}"));
}

async fn trip(db: &TestDb, device: i32, start: &str) {
    sqlx::query(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
         values ($1, $2::timestamptz, $2::timestamptz + interval '1 hour', -1.28, 36.82, -1.1,
             36.82, 20000, 3600, 3600, 0, 60, 'work_stop')",
    )
    .bind(device)
    .bind(start)
    .execute(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("trip at {start}: {e}"));
}

async fn alarm(db: &TestDb, device: i32, at: &str) {
    sqlx::query(
        "insert into fleet.alarms (device_id, alarm_time, alarm_type, source)
         values ($1, $2::timestamptz, '1', 'push')",
    )
    .bind(device)
    .bind(at)
    .execute(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("alarm at {at}: {e}"));
}

/// A notification event at `at` with one sent webhook message and an in-app row, plus a test
/// message (no event) sent then.
async fn notification(db: &TestDb, device: i32, at: &str) {
    let script = format!(
        "with u as (insert into fleet.users (username, password_hash, role)
                    values ('u-' || md5('{at}'), 'x', 'viewer') returning user_id),
              e as (insert into fleet.notify_events (event_key, device_id, event_time, kind, created_at)
                    values ('alarm:{at}', {device}, '{at}', 'alarm.safety', '{at}') returning event_id),
              o as (insert into fleet.notify_outbox (event_id, channel, address, state, idempotency_key, created_at)
                    select event_id, 'email', 'ops@example.com', 'sent', 'k-{at}', '{at}' from e
                    returning delivery_id),
              a as (insert into fleet.notify_attempts (delivery_id, attempt, outcome)
                    select delivery_id, 1, 'sent' from o),
              t as (insert into fleet.notify_outbox (channel, address, state, idempotency_key, is_test, created_at)
                    values ('sms', '+254712345678', 'sent', 't-{at}', true, '{at}'))
         insert into fleet.notify_inbox (user_id, event_id, device_id, event_time, kind, severity, title, body, created_at)
         select user_id, event_id, {device}, '{at}', 'alarm.safety', 'critical', 'SOS', 'SOS', '{at}' from u, e"
    );
    sqlx::raw_sql(&script)
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("notification at {at}: {e}"));
}

async fn count(db: &TestDb, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

async fn kpi_day(db: &TestDb, device: i32, date: &str) {
    sqlx::query(
        "insert into fleet.kpi_daily (device_id, local_date, timezone, fixes, has_acc, trips,
             distance_m, driving_s, idle_s, engine_on_s, parked_s, shift_s, shift_driving_s,
             after_hours_driving_s, after_hours_distance_m, overspeed_count, overspeed_s,
             overspeed_alarms, harsh_events, alarms, alarms_by_class, trip_fixes,
             expected_fixes, vendor_trips, currency)
         values ($1, $2::date, 'Africa/Nairobi', 100, true, 1, 1000, 600, 0, 600, 0, 0, 0, 0,
                 0, 0, 0, 0, 0, 0, '{}', 90, 100, 0, 'KES')",
    )
    .bind(device)
    .bind(date)
    .execute(&db.pool)
    .await
    .unwrap_or_else(|e| panic!("kpi row of {date}: {e}"));
}

async fn times(db: &TestDb, sql: &str) -> Vec<DateTime<Utc>> {
    sqlx::query_scalar(sql).fetch_all(&db.pool).await.expect(sql)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

async fn partition_names(db: &TestDb) -> Vec<String> {
    partitions::list(&db.pool).await.expect("partitions").into_iter().map(|p| p.name).collect()
}

#[tokio::test]
async fn retention_drops_exactly_the_expired_partitions_and_keeps_longer_periods() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    for month in 5..=9 {
        let day = NaiveDate::from_ymd_opt(2026, month, 1).expect("date");
        partitions::create_for_month(&db.pool, day).await.expect("partition");
    }
    for at in [
        "2026-05-20T10:00:00Z",
        "2026-06-30T23:59:59Z",
        "2026-07-31T23:59:59Z",
        "2026-08-01T00:00:00Z",
        "2026-08-02T09:00:00Z",
        "2026-09-10T09:00:00Z",
    ] {
        position(&db, d, at).await;
    }
    for at in ["2026-01-10T08:00:00Z", "2026-04-01T08:00:00Z", "2026-05-01T08:00:00Z"] {
        trip(&db, d, at).await;
        alarm(&db, d, at).await;
        notification(&db, d, at).await;
    }
    for date in ["2025-10-31", "2025-11-01", "2026-05-01"] {
        kpi_day(&db, d, date).await;
    }
    let before = partition_names(&db).await;

    // 100 days before this instant is exactly 2026-08-01 00:00 UTC, the July partition's end
    let now = Utc.with_ymd_and_hms(2026, 11, 9, 0, 0, 0).single().expect("now");
    let policy = RetentionConfig {
        positions_days: Some(100),
        trips_days: Some(200),  // cutoff 2026-04-23
        alarms_days: Some(300), // cutoff 2026-01-13
        kpi_days: Some(373),    // cutoff 2025-11-01
    };
    let report =
        retention::run_with_lease(&db.pool, &policy, now).await.expect("runs").expect("lease");

    let expired = ["positions_y2026m05", "positions_y2026m06", "positions_y2026m07"];
    assert_eq!(report.dropped_partitions, expired);
    let after = partition_names(&db).await;
    let expected: Vec<String> =
        before.iter().filter(|p| !expired.contains(&p.as_str())).cloned().collect();
    assert_eq!(after, expected, "every other partition is still there");
    assert!(after.contains(&"positions_default".to_owned()));
    // the August partition holds rows older than the cutoff's day and is kept whole
    assert_eq!(
        times(&db, "select gps_time from fleet.positions order by gps_time").await,
        vec![utc("2026-08-01T00:00:00Z"), utc("2026-08-02T09:00:00Z"), utc("2026-09-10T09:00:00Z")]
    );
    assert_eq!(
        times(&db, "select start_time from fleet.trips order by 1").await,
        vec![utc("2026-05-01T08:00:00Z")],
        "trips keep their own period, longer than the positions'"
    );
    assert_eq!(
        times(&db, "select alarm_time from fleet.alarms order by 1").await,
        vec![utc("2026-04-01T08:00:00Z"), utc("2026-05-01T08:00:00Z")]
    );
    let kpi_days: Vec<NaiveDate> =
        sqlx::query_scalar("select local_date from fleet.kpi_daily order by 1")
            .fetch_all(&db.pool)
            .await
            .expect("kpi days");
    assert_eq!(
        kpi_days,
        ["2025-11-01", "2026-05-01"].map(|d| d.parse::<NaiveDate>().expect("date")),
        "daily KPIs keep the cutoff's own day and later"
    );
    assert_eq!(
        report.deleted_rows,
        vec![
            ("fleet.trips".to_owned(), 2),
            ("fleet.alarms".to_owned(), 1),
            ("fleet.notify_events".to_owned(), 1),
            ("fleet.notify_outbox".to_owned(), 1),
            ("fleet.kpi_daily".to_owned(), 1)
        ]
    );
    // notifications follow the alarms: the old event took its message, attempt and in-app row
    // with it, and the old test message went by its own age
    for (table, left) in [
        ("fleet.notify_events", 2),
        ("fleet.notify_outbox where not is_test", 2),
        ("fleet.notify_outbox where is_test", 2),
        ("fleet.notify_attempts", 2),
        ("fleet.notify_inbox", 2),
    ] {
        assert_eq!(count(&db, table).await, left, "{table}");
    }

    // a second run finds nothing more to do
    let again = retention::apply(&db.pool, &policy, now).await.expect("again");
    assert_eq!(again, retention::RetentionReport::default());
}

#[tokio::test]
async fn retention_keeps_everything_when_no_period_is_set() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    partitions::create_for_month(&db.pool, NaiveDate::from_ymd_opt(2019, 1, 1).expect("date"))
        .await
        .expect("partition");
    position(&db, d, "2019-01-05T00:00:00Z").await;
    trip(&db, d, "2019-01-05T00:00:00Z").await;
    let before = partition_names(&db).await;
    let report =
        retention::apply(&db.pool, &RetentionConfig::default(), Utc::now()).await.expect("runs");
    assert_eq!(report, retention::RetentionReport::default());
    assert_eq!(partition_names(&db).await, before);
}

#[tokio::test]
async fn retention_does_not_run_while_another_process_holds_its_lease() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    partitions::create_for_month(&db.pool, NaiveDate::from_ymd_opt(2020, 3, 1).expect("date"))
        .await
        .expect("partition");
    position(&db, d, "2020-03-05T00:00:00Z").await;
    let other = db.another_pool().await;
    let held = Lease::try_acquire(&other, retention::RETENTION_LEASE, LeaseOptions::default())
        .await
        .expect("try")
        .expect("free");
    let policy = RetentionConfig { positions_days: Some(30), ..RetentionConfig::default() };
    let ran = retention::run_with_lease(&db.pool, &policy, Utc::now()).await.expect("try");
    assert!(ran.is_none(), "skipped while the lease is held elsewhere");
    assert!(partition_names(&db).await.contains(&"positions_y2020m03".to_owned()));
    held.release().await;
    let ran = retention::run_with_lease(&db.pool, &policy, Utc::now()).await.expect("runs");
    assert_eq!(ran.map(|r| r.dropped_partitions), Some(vec!["positions_y2020m03".to_owned()]));
}

#[tokio::test]
async fn retention_deletes_the_fix_aggregates_of_the_days_whose_positions_may_be_gone() {
    let db = TestDb::migrated().await;
    let d = device(&db).await;
    for month in 7..=9 {
        let day = NaiveDate::from_ymd_opt(2026, month, 1).expect("date");
        partitions::create_for_month(&db.pool, day).await.expect("partition");
    }
    // local days in Nairobi (UTC+3): 07-31, 08-01 (from 07-31 21:00 UTC), 08-02, 09-10
    for at in [
        "2026-07-31T10:00:00Z",
        "2026-07-31T22:00:00Z",
        "2026-08-02T09:00:00Z",
        "2026-09-10T09:00:00Z",
    ] {
        position(&db, d, at).await;
    }
    sqlx::query(
        "select fleet.refresh_kpi_daily(array[$1::int], array['-infinity']::timestamptz[],
                                        array['infinity']::timestamptz[])",
    )
    .bind(d)
    .execute(&db.pool)
    .await
    .expect("refresh");
    let aggregate_days = || async {
        sqlx::query_scalar::<_, NaiveDate>(
            "select local_date from fleet.kpi_fix_days where device_id = $1 order by 1",
        )
        .bind(d)
        .fetch_all(&db.pool)
        .await
        .expect("aggregate days")
    };
    let date = |s: &str| s.parse::<NaiveDate>().expect("date");
    assert_eq!(
        aggregate_days().await,
        ["2026-07-31", "2026-08-01", "2026-08-02", "2026-09-10"].map(date)
    );

    // positions cutoff 2026-08-01 00:00 UTC: the July partition goes, and with it every local
    // day that may have had a fix before the cutoff (08-01 in Nairobi began 07-31 21:00 UTC)
    let now = Utc.with_ymd_and_hms(2026, 11, 9, 0, 0, 0).single().expect("now");
    let policy = RetentionConfig { positions_days: Some(100), ..RetentionConfig::default() };
    let report = retention::apply(&db.pool, &policy, now).await.expect("retention");
    assert_eq!(report.dropped_partitions, ["positions_y2026m07"]);
    assert_eq!(report.deleted_rows, vec![("fleet.kpi_fix_days".to_owned(), 2)]);
    assert_eq!(aggregate_days().await, ["2026-08-02", "2026-09-10"].map(date));
}
