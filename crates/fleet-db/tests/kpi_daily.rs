//! Daily KPIs (fleet.kpi_daily, fleet.refresh_kpi_daily) and the reporting layer over them,
//! checked against figures worked out by hand from hand-built fixtures.
//!
//! Every fixture uses the seeded global settings unless it says otherwise: Africa/Nairobi
//! (UTC+3, no DST), shift 08:00-17:00 Monday to Saturday, speed limit 80 km/h, moving threshold
//! 5 km/h, idling 1.0 l/h at 180 KES/l.

use chrono::{DateTime, NaiveDate, Utc};
use fleet_testkit::TestDb;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

/// Runs a multi-statement fixture; `$D`, `$E`, ... are replaced by the given device ids.
async fn fixture(pool: &PgPool, sql: &str, devices: &[(&str, i32)]) {
    let mut sql = sql.to_owned();
    for (name, id) in devices {
        sql = sql.replace(name, &id.to_string());
    }
    sqlx::raw_sql(&sql).execute(pool).await.unwrap_or_else(|e| panic!("fixture: {e}\n{sql}"));
}

async fn device(pool: &PgPool, imei: &str, cost_centre: &str, city: &str) -> i32 {
    sqlx::query_scalar(
        "insert into fleet.devices (imei, name, plate, driver_name, cost_centre, city, created_at)
         values ($1, 'Van ' || right($1, 3), 'KDA ' || right($1, 3), 'Driver ' || right($1, 3), $2, $3,
                 '2026-01-01 00:00+03')
         returning device_id",
    )
    .bind(imei)
    .bind(cost_centre)
    .bind(city)
    .fetch_one(pool)
    .await
    .expect("device")
}

/// fleet.refresh_kpi_daily over one (device, from, to) per tuple; returns the rows written.
async fn refresh(pool: &PgPool, ranges: &[(i32, &str, &str)]) -> i32 {
    let ids: Vec<i32> = ranges.iter().map(|r| r.0).collect();
    let from: Vec<String> = ranges.iter().map(|r| r.1.to_owned()).collect();
    let to: Vec<String> = ranges.iter().map(|r| r.2.to_owned()).collect();
    sqlx::query_scalar(
        "select fleet.refresh_kpi_daily($1, $2::text[]::timestamptz[], $3::text[]::timestamptz[])",
    )
    .bind(ids)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await
    .expect("refresh_kpi_daily")
}

async fn kpi(pool: &PgPool, device: i32, day: &str) -> PgRow {
    sqlx::query("select * from fleet.kpi_daily where device_id = $1 and local_date = $2::date")
        .bind(device)
        .bind(day)
        .fetch_optional(pool)
        .await
        .expect("kpi_daily")
        .unwrap_or_else(|| panic!("no kpi_daily row for device {device} on {day}"))
}

async fn kpi_days(pool: &PgPool, device: i32) -> Vec<NaiveDate> {
    sqlx::query_scalar("select local_date from fleet.kpi_daily where device_id = $1 order by 1")
        .bind(device)
        .fetch_all(pool)
        .await
        .expect("kpi days")
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("timestamp").with_timezone(&Utc)
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

#[track_caller]
fn close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-6, "{what}: got {actual}, expected {expected}");
}

fn f64_of(row: &PgRow, col: &str) -> f64 {
    row.try_get::<f64, _>(col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

fn opt_f64(row: &PgRow, col: &str) -> Option<f64> {
    row.try_get::<Option<f64>, _>(col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

fn i32_of(row: &PgRow, col: &str) -> i32 {
    row.try_get::<i32, _>(col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

fn opt_i32(row: &PgRow, col: &str) -> Option<i32> {
    row.try_get::<Option<i32>, _>(col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

fn opt_time(row: &PgRow, col: &str) -> Option<DateTime<Utc>> {
    row.try_get::<Option<DateTime<Utc>>, _>(col).unwrap_or_else(|e| panic!("{col}: {e}"))
}

/// Wednesday 2026-03-04 in Nairobi (a shift day), one van with ACC and an odometer:
///
/// | local time    | segment                                                             |
/// | ------------- | ------------------------------------------------------------------- |
/// | 19:00 (Tue) - 08:20 | stop S0, engine on 08:10-08:20 (600 s idle, all on Wednesday)  |
/// | 08:20 - 09:20 | trip T1: 40 km, moving 3000 s, idle 600 s, 2 overspeeds / 300 s, 121 fixes |
/// | 09:20 - 12:00 | stop S1 (idling): 9600 s, idle 1200 s                                 |
/// | 12:00 - 13:00 | trip T2: 20 km, moving 3000 s, idle 300 s, 1 overspeed / 120 s, 61 fixes, gap 600 s |
/// | 13:00 - 16:30 | stop S2: parked 12600 s                                               |
/// | 16:30 - 17:30 | trip T3 across the shift end: 30 km, moving 3600 s, 181 fixes, split at 17:00 by time |
/// | 17:30 - 22:00 | stop S3: parked 16200 s                                               |
const WEDNESDAY: &str = "
insert into fleet.stops (device_id, start_time, end_time, lat, lon, kind, duration_s, idle_s) values
 ($D, '2026-03-03 19:00+03', '2026-03-04 08:20+03', -1.28, 36.82, 'parked', 48000, 600),
 ($D, '2026-03-04 09:20+03', '2026-03-04 12:00+03', -1.10, 36.82, 'idling', 9600, 1200),
 ($D, '2026-03-04 13:00+03', '2026-03-04 16:30+03', -1.30, 36.82, 'parked', 12600, 0),
 ($D, '2026-03-04 17:30+03', '2026-03-04 22:00+03', -1.00, 36.82, 'parked', 16200, 0);
insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
    distance_m, duration_s, moving_s, idle_s, overspeed_count, overspeed_s, point_count, gap_s, end_reason) values
 ($D, '2026-03-04 08:20+03', '2026-03-04 09:20+03', -1.28, 36.82, -1.10, 36.82, 40000, 3600, 3000, 600, 2, 300, 121, 0, 'work_stop'),
 ($D, '2026-03-04 12:00+03', '2026-03-04 13:00+03', -1.10, 36.82, -1.30, 36.82, 20000, 3600, 3000, 300, 1, 120, 61, 600, 'work_stop'),
 ($D, '2026-03-04 16:30+03', '2026-03-04 17:30+03', -1.30, 36.82, -1.00, 36.82, 30000, 3600, 3600, 0, 0, 0, 181, 0, 'work_stop');
insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, odometer_m, source) values
 ($D, '2026-03-04 07:50+03', -1.28, 36.82, 0, false, 100000, 'poll'),
 ($D, '2026-03-04 08:10+03', -1.28, 36.82, 0, true, null, 'poll'),
 ($D, '2026-03-04 08:20+03', -1.28, 36.82, 30, true, null, 'poll'),
 ($D, '2026-03-04 08:50+03', -1.20, 36.82, 50, true, null, 'poll'),
 ($D, '2026-03-04 09:20+03', -1.10, 36.82, 0, true, 140000, 'poll'),
 ($D, '2026-03-04 16:30+03', -1.30, 36.82, 40, true, null, 'poll'),
 ($D, '2026-03-04 17:00+03', -1.20, 36.82, 60, true, null, 'poll'),
 ($D, '2026-03-04 17:30+03', -1.00, 36.82, 0, false, 190000, 'poll'),
 ($D, '2026-03-04 22:00+03', -1.00, 36.82, 0, false, null, 'poll');
insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_class, source) values
 ($D, '2026-03-04 08:40+03', '41', 'driving', 'poll'),
 ($D, '2026-03-04 08:45+03', 'overSpeed', 'driving', 'poll'),
 ($D, '2026-03-04 12:05+03', 'in', 'geofence', 'poll'),
 ($D, '2026-03-04 12:30+03', '48', 'driving', 'push'),
 ($D, '2026-03-04 16:45+03', 'ubiTurn', 'driving', 'push'),
 ($D, '2026-03-04 22:30+03', '2', 'power', 'poll');
";

#[tokio::test]
async fn a_hand_built_day_gives_every_kpi_its_hand_computed_value() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000001", "Field", "Nairobi").await;
    fixture(&db.pool, WEDNESDAY, &[("$D", d)]).await;

    let written = refresh(&db.pool, &[(d, "2026-03-04 00:00+03", "2026-03-04 23:59:59+03")]).await;
    assert_eq!(written, 1, "one local day asked for, one row");
    let k = kpi(&db.pool, d, "2026-03-04").await;

    assert_eq!(k.get::<String, _>("timezone"), "Africa/Nairobi");
    assert_eq!(i32_of(&k, "fixes"), 9);
    assert_eq!(opt_time(&k, "last_fix_time"), Some(at("2026-03-04T22:00:00+03:00")));
    assert!(k.get::<bool, _>("has_acc"));

    // distance: T1 + T2 + T3, all on Wednesday
    close(f64_of(&k, "distance_m"), 40_000.0 + 20_000.0 + 30_000.0, "distance_m");
    let driving = 3000 + 3000 + 3600;
    assert_eq!(i32_of(&k, "driving_s"), driving);
    // idle: trips 600 + 300, stops: S0's 600 s (08:10-08:20, shown by its fixes) + S1's 1200 s
    let idle = (600 + 300) + (600 + 1200);
    assert_eq!(opt_i32(&k, "idle_s"), Some(idle));
    let engine_on = driving + idle;
    assert_eq!(opt_i32(&k, "engine_on_s"), Some(engine_on));
    close(opt_f64(&k, "idle_ratio").unwrap(), idle as f64 / engine_on as f64, "idle_ratio");
    // parked: S0 00:00-08:20 minus 600 s idle, S1 9600 - 1200, S2, S3
    let parked = (8 * 3600 + 20 * 60 - 600) + (9600 - 1200) + 12_600 + 16_200;
    assert_eq!(i32_of(&k, "parked_s"), parked);

    assert_eq!(i32_of(&k, "trips"), 3);
    assert_eq!(opt_time(&k, "first_start"), Some(at("2026-03-04T08:20:00+03:00")));
    assert_eq!(opt_time(&k, "last_stop"), Some(at("2026-03-04T17:30:00+03:00")));

    // reporting time: the first fix with the ignition on, 08:10; the shift starts 08:00
    assert_eq!(opt_time(&k, "reporting_time"), Some(at("2026-03-04T08:10:00+03:00")));
    assert_eq!(opt_time(&k, "shift_start_time"), Some(at("2026-03-04T08:00:00+03:00")));
    assert_eq!(opt_i32(&k, "tardiness_s"), Some(10 * 60));

    // utilisation: driving inside 08:00-17:00 = T1 + T2 + the first half of T3's moving time
    // (T3's two legs 16:30-17:00 and 17:00-17:30 are both moving, 1800 s each)
    let shift_s = 9 * 3600;
    let shift_driving = 3000 + 3000 + 1800;
    assert_eq!(i32_of(&k, "shift_s"), shift_s);
    assert_eq!(i32_of(&k, "shift_driving_s"), shift_driving);
    close(
        opt_f64(&k, "utilisation").unwrap(),
        shift_driving as f64 / shift_s as f64,
        "utilisation",
    );
    // after hours: T3 after 17:00. Within one day a trip is cut at shift boundaries by time
    // (its fixes apportion it only across midnight), so half of it: 17:00-17:30 of 16:30-17:30
    assert_eq!(i32_of(&k, "after_hours_driving_s"), 3600 / 2);
    close(f64_of(&k, "after_hours_distance_m"), 30_000.0 / 2.0, "after_hours_distance_m");

    let km100 = 90_000.0 / 100_000.0;
    assert_eq!(i32_of(&k, "overspeed_count"), 2 + 1);
    assert_eq!(i32_of(&k, "overspeed_s"), 300 + 120);
    close(opt_f64(&k, "overspeed_per_100km").unwrap(), 3.0 / km100, "overspeed_per_100km");
    // harsh: 41 (acceleration), 48 (braking), ubiTurn (cornering); overSpeed is not harsh
    assert_eq!(i32_of(&k, "harsh_events"), 3);
    assert_eq!(i32_of(&k, "overspeed_alarms"), 1);
    close(opt_f64(&k, "harsh_per_100km").unwrap(), 3.0 / km100, "harsh_per_100km");
    let score = 100.0 - 2.0 * (3.0 / km100) - 4.0 * (3.0 / km100) - 100.0 * (420.0 / 9600.0);
    close(opt_f64(&k, "driving_score").unwrap(), score, "driving_score");
    close(score, 75.625, "the score worked out");

    assert_eq!(i32_of(&k, "alarms"), 6);
    let by_class_ok: bool = sqlx::query_scalar(
        "select alarms_by_class = '{\"driving\": 4, \"geofence\": 1, \"power\": 1}'::jsonb
         from fleet.kpi_daily where device_id = $1",
    )
    .bind(d)
    .fetch_one(&db.pool)
    .await
    .expect("alarms_by_class");
    assert!(by_class_ok, "alarms_by_class");

    // coverage: expected fixes per trip = (points - 1) x duration / (duration - gap) + 1
    let expected_fixes = (120.0 * 3600.0 / 3600.0 + 1.0)
        + (60.0 * 3600.0 / (3600.0 - 600.0) + 1.0)
        + (180.0 * 3600.0 / 3600.0 + 1.0);
    close(f64_of(&k, "expected_fixes"), expected_fixes, "expected_fixes");
    close(f64_of(&k, "trip_fixes"), 121.0 + 61.0 + 181.0, "trip_fixes");
    close(opt_f64(&k, "coverage").unwrap(), 363.0 / expected_fixes, "coverage");

    assert_eq!(opt_f64(&k, "odometer_start_m"), Some(100_000.0));
    assert_eq!(opt_f64(&k, "odometer_end_m"), Some(190_000.0));
    assert_eq!(opt_f64(&k, "odometer_delta_m"), Some(90_000.0));

    let expected_idle_cost = (idle as f64 / 3600.0) /*h*/ * 1.0 /*l/h*/ * 180.0 /*KES/l*/;
    close(opt_f64(&k, "idle_cost").unwrap(), expected_idle_cost, "idle_cost");
    close(expected_idle_cost, 135.0, "0.75 h of idling");
    close(opt_f64(&k, "idle_fuel_l").unwrap(), 0.75, "idle_fuel_l");
    assert_eq!(k.get::<String, _>("currency"), "KES");
    assert_eq!(i32_of(&k, "vendor_trips"), 0);
    assert_eq!(opt_f64(&k, "vendor_distance_m"), None);
}

#[tokio::test]
async fn a_trip_across_local_midnight_is_split_between_the_two_local_days() {
    let db = TestDb::migrated().await;
    let fixes = device(&db.pool, "868120300000002", "Field", "Nairobi").await;
    let no_fixes = device(&db.pool, "868120300000003", "Field", "Nairobi").await;
    let utc = device(&db.pool, "868120300000004", "Field", "Nairobi").await;
    let uneven = device(&db.pool, "868120300000018", "Field", "Nairobi").await;
    fixture(
        &db.pool,
        "
        insert into fleet.analytics_config (scope, scope_key, timezone)
        values ('device', '868120300000004', 'UTC');
        -- Friday 20:30-21:30 UTC = 23:30 Friday - 00:30 Saturday in Nairobi, 30 km at a steady pace
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
        select d, '2026-03-06 20:30+00', '2026-03-06 21:30+00', -1.0, 36.8, -1.27, 36.8, 30000, 3600, 3600, 0, 7, 'work_stop'
        from unnest(array[$A, $U]) d;
        insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source)
        select d, '2026-03-06 20:30+00'::timestamptz + make_interval(mins => 10 * i), -1.0 - 0.045 * i, 36.8, 30, true, 'track'
        from unnest(array[$A, $U]) d, generate_series(0, 6) i;
        -- no fixes stored: 20:00-21:30 UTC = 23:00-00:30 local, split by time, 2/3 and 1/3
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
        values ($B, '2026-03-06 20:00+00', '2026-03-06 21:30+00', -1.0, 36.8, -1.4, 36.8, 45000, 5400, 5400, 0, 10, 'work_stop');
        -- the same hour with uneven fixes: 0.09 degrees of latitude before midnight, 0.18 after
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
        values ($V, '2026-03-06 20:30+00', '2026-03-06 21:30+00', -1.0, 36.8, -1.27, 36.8, 30000, 3600, 3600, 0, 3, 'work_stop');
        insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source) values
         ($V, '2026-03-06 20:30+00', -1.00, 36.8, 20, true, 'track'),
         ($V, '2026-03-06 21:00+00', -1.09, 36.8, 40, true, 'track'),
         ($V, '2026-03-06 21:30+00', -1.27, 36.8, 0, true, 'track');
        ",
        &[("$A", fixes), ("$B", no_fixes), ("$U", utc), ("$V", uneven)],
    )
    .await;
    refresh(
        &db.pool,
        &[
            (fixes, "2026-03-06 00:00+00", "2026-03-07 12:00+00"),
            (no_fixes, "2026-03-06 00:00+00", "2026-03-07 12:00+00"),
            (utc, "2026-03-06 00:00+00", "2026-03-07 12:00+00"),
            (uneven, "2026-03-06 00:00+00", "2026-03-07 12:00+00"),
        ],
    )
    .await;

    assert_eq!(kpi_days(&db.pool, fixes).await, vec![date("2026-03-06"), date("2026-03-07")]);
    let fri = kpi(&db.pool, fixes, "2026-03-06").await;
    let sat = kpi(&db.pool, fixes, "2026-03-07").await;
    // three of the six 10-minute legs before local midnight, three after
    close(f64_of(&fri, "distance_m"), 30_000.0 / 2.0, "Friday's half");
    close(f64_of(&sat, "distance_m"), 30_000.0 / 2.0, "Saturday's half");
    assert_eq!((i32_of(&fri, "driving_s"), i32_of(&sat, "driving_s")), (1800, 1800));
    // the trip counts on its start day only
    assert_eq!((i32_of(&fri, "trips"), i32_of(&sat, "trips")), (1, 0));
    assert_eq!(opt_time(&fri, "first_start"), Some(at("2026-03-06T23:30:00+03:00")));
    assert_eq!(opt_time(&sat, "first_start"), None);
    assert_eq!(opt_time(&fri, "last_stop"), None, "the trip did not end on Friday");
    assert_eq!(opt_time(&sat, "last_stop"), Some(at("2026-03-07T00:30:00+03:00")));
    // both parts are outside the 08:00-17:00 shift
    close(f64_of(&fri, "after_hours_distance_m"), 15_000.0, "after hours Friday");
    close(f64_of(&sat, "after_hours_distance_m"), 15_000.0, "after hours Saturday");
    assert_eq!(i32_of(&sat, "after_hours_driving_s"), 1800);
    // fixes by local day: 23:30, 23:40, 23:50 on Friday; 00:00 ... 00:30 on Saturday
    assert_eq!((i32_of(&fri, "fixes"), i32_of(&sat, "fixes")), (3, 4));

    let fri = kpi(&db.pool, no_fixes, "2026-03-06").await;
    let sat = kpi(&db.pool, no_fixes, "2026-03-07").await;
    close(f64_of(&fri, "distance_m"), 45_000.0 * 60.0 / 90.0, "23:00-00:00 of 23:00-00:30");
    close(f64_of(&sat, "distance_m"), 45_000.0 * 30.0 / 90.0, "00:00-00:30 of 23:00-00:30");
    assert_eq!((i32_of(&fri, "driving_s"), i32_of(&sat, "driving_s")), (3600, 1800));
    assert_eq!((i32_of(&fri, "fixes"), i32_of(&sat, "fixes")), (0, 0));

    // across midnight a trip is apportioned by its own fixes: a third of the distance (one
    // leg of 0.09 of 0.27 degrees) but half of the moving time lies before midnight
    let fri = kpi(&db.pool, uneven, "2026-03-06").await;
    let sat = kpi(&db.pool, uneven, "2026-03-07").await;
    close(f64_of(&fri, "distance_m"), 30_000.0 / 3.0, "the 0.09 degree leg");
    close(f64_of(&sat, "distance_m"), 30_000.0 * 2.0 / 3.0, "the 0.18 degree leg");
    assert_eq!((i32_of(&fri, "driving_s"), i32_of(&sat, "driving_s")), (1800, 1800));

    // the same trip on a device kept in UTC lies inside Friday
    assert_eq!(kpi_days(&db.pool, utc).await, vec![date("2026-03-06")]);
    let k = kpi(&db.pool, utc, "2026-03-06").await;
    assert_eq!(k.get::<String, _>("timezone"), "UTC");
    close(f64_of(&k, "distance_m"), 30_000.0, "whole trip on the UTC Friday");
}

#[tokio::test]
async fn a_device_without_acc_has_null_idle_engine_on_reporting_time_and_idle_cost() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000005", "Field", "Mombasa").await;
    fixture(
        &db.pool,
        "
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
        values ($D, '2026-03-04 09:00+03', '2026-03-04 10:00+03', -4.04, 39.67, -4.2, 39.67, 25000, 3600, 3300, 0, 61, 'work_stop');
        insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source) values
         ($D, '2026-03-04 09:00+03', -4.04, 39.67, 20, null, 'poll'),
         ($D, '2026-03-04 10:00+03', -4.20, 39.67, 0, null, 'poll');
        ",
        &[("$D", d)],
    )
    .await;
    refresh(&db.pool, &[(d, "2026-03-04 00:00+03", "2026-03-04 12:00+03")]).await;
    let k = kpi(&db.pool, d, "2026-03-04").await;
    assert!(!k.get::<bool, _>("has_acc"));
    assert_eq!(i32_of(&k, "driving_s"), 3300, "driving is known without ACC");
    close(f64_of(&k, "distance_m"), 25_000.0, "distance");
    for col in ["idle_s", "engine_on_s", "tardiness_s"] {
        assert_eq!(opt_i32(&k, col), None, "{col} is unknown without ACC, not zero");
    }
    for col in ["idle_ratio", "idle_cost", "idle_fuel_l"] {
        assert_eq!(opt_f64(&k, col), None, "{col} is unknown without ACC, not zero");
    }
    assert_eq!(opt_time(&k, "reporting_time"), None);
    // utilisation needs no ACC: 3300 s of the 9 h shift
    close(opt_f64(&k, "utilisation").unwrap(), 3300.0 / 32_400.0, "utilisation");
}

#[tokio::test]
async fn refreshing_is_idempotent_and_drops_the_rows_of_days_whose_data_is_gone() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000006", "Field", "Nairobi").await;
    fixture(&db.pool, WEDNESDAY, &[("$D", d)]).await;
    // the next day: one fix and one alarm
    fixture(
        &db.pool,
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source)
         values ($D, '2026-03-05 09:00+03', -1.0, 36.82, 0, false, 'poll');
         insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_class, source)
         values ($D, '2026-03-05 09:05+03', '1', 'safety', 'push');",
        &[("$D", d)],
    )
    .await;

    let snapshot = || async {
        sqlx::query_scalar::<_, String>(
            "select string_agg((to_jsonb(k) - 'computed_at')::text, E'\\n' order by local_date)
             from fleet.kpi_daily k where device_id = $1",
        )
        .bind(d)
        .fetch_one(&db.pool)
        .await
        .expect("snapshot")
    };
    // from the device's first data: Tuesday (the evening part of stop S0), Wednesday, Thursday
    assert_eq!(refresh(&db.pool, &[(d, "-infinity", "2026-03-05 23:00+03")]).await, 3);
    let first = snapshot().await;
    assert_eq!(refresh(&db.pool, &[(d, "-infinity", "2026-03-05 23:00+03")]).await, 3);
    assert_eq!(snapshot().await, first, "a second refresh changes nothing");
    // overlapping ranges in one call count each day once
    let twice =
        [(d, "2026-03-04 00:00+03", "2026-03-05 23:00+03"), (d, "2026-03-05 00:00+03", "infinity")];
    assert_eq!(refresh(&db.pool, &twice).await, 2);
    assert_eq!(snapshot().await, first);
    assert_eq!(
        kpi_days(&db.pool, d).await,
        vec![date("2026-03-03"), date("2026-03-04"), date("2026-03-05")]
    );
    let tue = kpi(&db.pool, d, "2026-03-03").await;
    assert_eq!(
        i32_of(&tue, "fixes"),
        0,
        "offline all Tuesday evening, parked: a row without fixes"
    );
    assert_eq!(i32_of(&tue, "parked_s"), 5 * 3600, "19:00-24:00");

    // Thursday's data is deleted: its row goes; Wednesday's stays as it was
    fixture(
        &db.pool,
        "delete from fleet.positions where device_id = $D and gps_time >= '2026-03-05 00:00+03';
         delete from fleet.alarms where device_id = $D and alarm_time >= '2026-03-05 00:00+03';",
        &[("$D", d)],
    )
    .await;
    assert_eq!(refresh(&db.pool, &[(d, "2026-03-05 00:00+03", "2026-03-05 23:00+03")]).await, 0);
    assert_eq!(kpi_days(&db.pool, d).await, vec![date("2026-03-03"), date("2026-03-04")]);

    // a trip removed by a rebuild takes its distance with it
    fixture(
        &db.pool,
        "delete from fleet.trips where device_id = $D and start_time = '2026-03-04 12:00+03';",
        &[("$D", d)],
    )
    .await;
    refresh(&db.pool, &[(d, "2026-03-04 12:00+03", "2026-03-04 13:00+03")]).await;
    let wed = kpi(&db.pool, d, "2026-03-04").await;
    close(f64_of(&wed, "distance_m"), 90_000.0 - 20_000.0, "T2 gone");
    assert_eq!(i32_of(&wed, "trips"), 2);
}

#[tokio::test]
async fn refresh_refuses_arrays_of_different_lengths() {
    let db = TestDb::migrated().await;
    let e = sqlx::query(
        "select fleet.refresh_kpi_daily(array[1, 2], array['-infinity']::timestamptz[], array['infinity', 'infinity']::timestamptz[])",
    )
    .execute(&db.pool)
    .await
    .expect_err("mismatched arrays");
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("22023"), "{e}");
}

#[tokio::test]
async fn rollups_over_two_days_recompute_ratios_from_summed_parts() {
    let db = TestDb::migrated().await;
    let a = device(&db.pool, "868120300000007", "North", "Nairobi").await;
    let b = device(&db.pool, "868120300000008", "North", "Kampala").await;
    let other = device(&db.pool, "868120300000009", "South", "Nairobi").await;
    // Monday 2026-03-02 and Tuesday 2026-03-03. Trip figures (moving s, trip idle s, distance m):
    //   a Monday 3600 / 400 / 50 km, a Tuesday 1000 / 1000 / 10 km,
    //   b Monday 7200 / 800 / 100 km, b Tuesday: no data at all (offline),
    //   other Monday 1800 / 0 / 20 km.
    fixture(
        &db.pool,
        "
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, overspeed_count, overspeed_s, point_count, end_reason) values
         ($A, '2026-03-02 09:00+03', '2026-03-02 10:10+03', -1.28, 36.82, -1.5, 36.82, 50000, 4200, 3600, 400, 1, 60, 100, 'work_stop'),
         ($A, '2026-03-03 09:00+03', '2026-03-03 09:40+03', -1.28, 36.82, -1.3, 36.82, 10000, 2400, 1000, 1000, 0, 0, 50, 'work_stop'),
         ($B, '2026-03-02 09:00+03', '2026-03-02 11:20+03', -1.28, 36.82, -2.0, 36.82, 100000, 8400, 7200, 800, 2, 240, 200, 'work_stop'),
         ($C, '2026-03-02 09:00+03', '2026-03-02 09:30+03', -1.28, 36.82, -1.4, 36.82, 20000, 1800, 1800, 0, 0, 0, 40, 'work_stop');
        insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source) values
         ($A, '2026-03-02 08:55+03', -1.28, 36.82, 0, true, 'poll'),
         ($A, '2026-03-03 08:30+03', -1.28, 36.82, 0, true, 'poll'),
         ($B, '2026-03-02 09:30+03', -1.28, 36.82, 0, true, 'poll'),
         ($C, '2026-03-02 09:00+03', -1.28, 36.82, 0, true, 'poll');
        insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_class, source) values
         ($A, '2026-03-02 09:10+03', '41', 'driving', 'poll'),
         ($A, '2026-03-03 09:10+03', '2', 'power', 'poll'),
         ($B, '2026-03-02 09:15+03', '48', 'driving', 'poll');
        ",
        &[("$A", a), ("$B", b), ("$C", other)],
    )
    .await;
    let range = ("2026-03-02 00:00+03", "2026-03-03 23:59+03");
    refresh(&db.pool, &[(a, range.0, range.1), (b, range.0, range.1), (other, range.0, range.1)])
        .await;

    let row = sqlx::query(
        "select * from reporting.kpi_rollup('2026-03-02', '2026-03-03', 'cost_centre')
         where group_key = 'North'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("rollup");

    let idle = 400 + 1000 + 800;
    let engine_on = (3600 + 400) + (1000 + 1000) + (7200 + 800);
    close(
        opt_f64(&row, "idle_ratio").unwrap(),
        idle as f64 / engine_on as f64,
        "idle ratio of sums",
    );
    let mean_of_daily_ratios = (400.0 / 4000.0 + 1000.0 / 2000.0 + 800.0 / 8000.0) / 3.0;
    assert!((opt_f64(&row, "idle_ratio").unwrap() - mean_of_daily_ratios).abs() > 0.05);
    assert_eq!(row.get::<Option<i64>, _>("idle_s"), Some(idle as i64));
    assert_eq!(row.get::<Option<i64>, _>("engine_on_s"), Some(engine_on as i64));

    let distance = 50_000.0 + 10_000.0 + 100_000.0;
    close(f64_of(&row, "distance_m"), distance, "distance");
    assert_eq!(row.get::<i64, _>("trips"), 3);
    // utilisation: summed shift driving over summed shift seconds of the three vehicle-days
    // with KPIs (b's offline Tuesday has no row and no known shift); every trip lies inside
    // 08:00-17:00
    let driving = 3600 + 1000 + 7200;
    let shift_driving = driving;
    let shift_s = 3 * 9 * 3600;
    close(
        opt_f64(&row, "utilisation").unwrap(),
        shift_driving as f64 / shift_s as f64,
        "utilisation",
    );
    // per 100 km and the score from summed events and distance
    let km100 = distance / 100_000.0;
    close(opt_f64(&row, "overspeed_per_100km").unwrap(), 3.0 / km100, "overspeed/100 km");
    close(opt_f64(&row, "harsh_per_100km").unwrap(), 2.0 / km100, "harsh/100 km");
    let score =
        100.0 - 2.0 * (3.0 / km100) - 4.0 * (2.0 / km100) - 100.0 * (300.0 / driving as f64);
    close(opt_f64(&row, "driving_score").unwrap(), score, "driving score");
    let by_class_ok: bool = sqlx::query_scalar(
        "select alarms_by_class = '{\"driving\": 2, \"power\": 1}'::jsonb
         from reporting.kpi_rollup('2026-03-02', '2026-03-03', 'cost_centre') where group_key = 'North'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("alarms_by_class");
    assert!(by_class_ok);
    // coverage from summed fixes: no gaps, so every trip got what it should
    close(opt_f64(&row, "coverage").unwrap(), 1.0, "coverage");

    assert_eq!(row.get::<i32, _>("vehicles"), 2);
    assert_eq!(row.get::<i32, _>("vehicles_moved"), 2);
    assert_eq!(row.get::<i32, _>("vehicle_days"), 4, "2 vehicles x 2 days");
    assert_eq!(row.get::<i32, _>("vehicle_days_moved"), 3);
    assert_eq!(row.get::<i32, _>("vehicle_days_not_moved"), 1);
    assert_eq!(row.get::<i32, _>("vehicle_days_offline"), 1, "b on Tuesday");
    close(opt_f64(&row, "idle_cost").unwrap(), idle as f64 / 3600.0 * 1.0 * 180.0, "idle cost");

    // the fleet sums both cost centres; cities split the North vehicles
    let fleet: (i32, f64) = sqlx::query_as(
        "select vehicles, distance_m from reporting.kpi_rollup('2026-03-02', '2026-03-03', 'fleet')",
    )
    .fetch_one(&db.pool)
    .await
    .expect("fleet");
    assert_eq!(fleet, (3, distance + 20_000.0));
    let cities: Vec<(Option<String>, f64)> = sqlx::query_as(
        "select group_key, distance_m from reporting.kpi_rollup('2026-03-02', '2026-03-03', 'city')",
    )
    .fetch_all(&db.pool)
    .await
    .expect("cities");
    assert_eq!(
        cities,
        vec![(Some("Kampala".into()), 100_000.0), (Some("Nairobi".into()), 80_000.0)]
    );

    // the daily views are one-day rollups
    let monday: (i32, i32, f64) = sqlx::query_as(
        "select vehicles, vehicle_days_offline, distance_m from reporting.v_kpi_cost_centre_daily
         where local_date = '2026-03-02' and cost_centre = 'North'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("cost centre daily");
    assert_eq!(monday, (2, 0, 150_000.0));
    let tuesday: (i32, i32, i32) = sqlx::query_as(
        "select vehicles, vehicles_moved, vehicle_days_offline from reporting.v_kpi_fleet_daily
         where local_date = '2026-03-03'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("fleet daily");
    assert_eq!(tuesday, (3, 1, 2), "only a moved; b and other sent nothing");

    let bad =
        sqlx::query("select * from reporting.kpi_rollup('2026-03-02', '2026-03-03', 'driver')")
            .execute(&db.pool)
            .await
            .expect_err("unknown grouping");
    assert_eq!(bad.as_database_error().and_then(|d| d.code()).as_deref(), Some("22023"));
}

#[tokio::test]
async fn reconciliation_flags_a_30_percent_vendor_difference_and_not_a_2_percent_one() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000010", "Field", "Nairobi").await;
    fixture(
        &db.pool,
        "
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason) values
         ($D, '2026-03-02 09:00+03', '2026-03-02 11:00+03', -1.28, 36.82, -2.0, 36.82, 100000, 7200, 7000, 0, 100, 'work_stop'),
         ($D, '2026-03-03 09:00+03', '2026-03-03 11:00+03', -1.28, 36.82, -2.0, 36.82, 100000, 7200, 7000, 0, 100, 'work_stop');
        -- Monday: the vendor says 130 km (+30 %); Tuesday 102 km (+2 %), in two trips
        insert into fleet.vendor_trips (device_id, start_time, end_time, distance_m, source) values
         ($D, '2026-03-02 09:01+03', '2026-03-02 11:00+03', 130000, 'poll'),
         ($D, '2026-03-03 09:01+03', '2026-03-03 10:00+03', 50000, 'poll'),
         ($D, '2026-03-03 10:01+03', '2026-03-03 11:00+03', 52000, 'push');
        ",
        &[("$D", d)],
    )
    .await;
    refresh(&db.pool, &[(d, "2026-03-02 00:00+03", "2026-03-03 23:00+03")]).await;

    /// local_date, distance_m, vendor_distance_m, vendor_diff_ratio, vendor_mismatch, flagged
    type Reconciled = (NaiveDate, f64, Option<f64>, Option<f64>, bool, bool);
    let rows: Vec<Reconciled> = sqlx::query_as(
        "select local_date, distance_m, vendor_distance_m, vendor_diff_ratio, vendor_mismatch, flagged
         from reporting.v_distance_reconciliation where device_id = $1 order by local_date",
    )
    .bind(d)
    .fetch_all(&db.pool)
    .await
    .expect("reconciliation");
    assert_eq!(rows.len(), 2);
    let (mon, tue) = (&rows[0], &rows[1]);
    assert_eq!((mon.1, mon.2), (100_000.0, Some(130_000.0)));
    close(mon.3.unwrap(), 30_000.0 / 130_000.0, "Monday: |diff| / larger");
    assert!(mon.4 && mon.5, "30 % and 30 km apart: flagged");
    assert_eq!(tue.2, Some(50_000.0 + 52_000.0));
    close(tue.3.unwrap(), 2_000.0 / 102_000.0, "Tuesday");
    assert!(!tue.4 && !tue.5, "2 % apart: not flagged");
    let k = kpi(&db.pool, d, "2026-03-03").await;
    assert_eq!(i32_of(&k, "vendor_trips"), 2);
}

#[tokio::test]
async fn a_shift_crossing_midnight_counts_its_hours_on_both_days() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000011", "Night", "Nairobi").await;
    // night shift 22:00-06:00, Monday to Friday; Friday 2026-03-06 into Saturday
    fixture(
        &db.pool,
        "
        insert into fleet.analytics_config (scope, scope_key, shift_start, shift_end, shift_weekdays)
        values ('cost_centre', 'Night', '22:00', '06:00', '{1,2,3,4,5}');
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, idle_s, point_count, end_reason) values
         ($D, '2026-03-07 05:00+03', '2026-03-07 07:00+03', -1.28, 36.82, -1.5, 36.82, 60000, 7200, 7200, 0, 100, 'work_stop');
        insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source) values
         ($D, '2026-03-06 21:50+03', -1.28, 36.82, 0, true, 'poll'),
         ($D, '2026-03-07 07:00+03', -1.5, 36.82, 0, false, 'poll');
        ",
        &[("$D", d)],
    )
    .await;
    refresh(&db.pool, &[(d, "2026-03-06 00:00+03", "2026-03-07 23:00+03")]).await;
    let fri = kpi(&db.pool, d, "2026-03-06").await;
    let sat = kpi(&db.pool, d, "2026-03-07").await;
    // Friday holds 00:00-06:00 of Thursday's shift and 22:00-24:00 of its own; Saturday (not a
    // shift day) holds 00:00-06:00 of Friday's
    assert_eq!(i32_of(&fri, "shift_s"), (6 + 2) * 3600);
    assert_eq!(i32_of(&sat, "shift_s"), 6 * 3600);
    assert_eq!(opt_time(&fri, "shift_start_time"), Some(at("2026-03-06T22:00:00+03:00")));
    assert_eq!(opt_time(&sat, "shift_start_time"), None);
    assert_eq!(opt_i32(&fri, "tardiness_s"), Some(0), "ignition on at 21:50, early");
    // the trip 05:00-07:00: one hour inside the shift, one after it
    assert_eq!(i32_of(&sat, "shift_driving_s"), 3600);
    assert_eq!(i32_of(&sat, "after_hours_driving_s"), 3600);
    close(opt_f64(&sat, "utilisation").unwrap(), 3600.0 / (6.0 * 3600.0), "utilisation");
}

#[tokio::test]
async fn vehicles_not_moved_today_lists_active_vehicles_without_a_trip_today() {
    let db = TestDb::migrated().await;
    let moved = device(&db.pool, "868120300000012", "Field", "Nairobi").await;
    let running = device(&db.pool, "868120300000013", "Field", "Nairobi").await;
    let idle = device(&db.pool, "868120300000014", "Field", "Nairobi").await;
    let never = device(&db.pool, "868120300000015", "Field", "Nairobi").await;
    let gone = device(&db.pool, "868120300000016", "Field", "Nairobi").await;
    fixture(
        &db.pool,
        "
        update fleet.devices set active = false, deactivated_at = now() where device_id = $G;
        insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
            distance_m, duration_s, moving_s, point_count, end_reason)
        select d, s, e, -1.28, 36.82, -1.3, 36.82, 5000, extract(epoch from e - s), 600, 10, 'work_stop'
        from (values
            -- started today (local), a minute after midnight
            ($M, (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' + interval '1 minute',
                 (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' + interval '2 minutes'),
            -- started yesterday, still running after midnight
            ($R, (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' - interval '1 hour',
                 (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' + interval '1 minute'),
            -- ended yesterday
            ($I, (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' - interval '3 hours',
                 (now() at time zone 'Africa/Nairobi')::date::timestamp at time zone 'Africa/Nairobi' - interval '2 hours')
        ) t (d, s, e);
        ",
        &[("$M", moved), ("$R", running), ("$I", idle), ("$G", gone)],
    )
    .await;
    let listed: Vec<i32> = sqlx::query_scalar(
        "select device_id from reporting.v_vehicles_not_moved_today order by device_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("not moved today");
    assert_eq!(listed, vec![idle, never]);
}

#[tokio::test]
async fn fleet_ro_reads_the_kpi_views_and_rollups_but_cannot_refresh() {
    let db = TestDb::migrated().await;
    let d = device(&db.pool, "868120300000017", "Field", "Nairobi").await;
    fixture(&db.pool, WEDNESDAY, &[("$D", d)]).await;
    refresh(&db.pool, &[(d, "2026-03-04 00:00+03", "2026-03-04 23:00+03")]).await;

    let mut tx = db.pool.begin().await.expect("tx");
    sqlx::query("set local role fleet_ro").execute(&mut *tx).await.expect("role");
    for sql in [
        "select count(*) from fleet.kpi_daily",
        "select count(*) from reporting.v_kpi_daily",
        "select count(*) from reporting.v_kpi_fleet_daily",
        "select count(*) from reporting.v_kpi_cost_centre_daily",
        "select count(*) from reporting.v_kpi_city_daily",
        "select count(*) from reporting.v_vehicles_not_moved_today",
        "select count(*) from reporting.v_distance_reconciliation",
        "select count(*) from reporting.kpi_rollup('2026-03-01', '2026-03-31', 'fleet')",
        "select count(*) from reporting.kpi_rollup('2026-03-01', '2026-03-31', 'cost_centre')",
        "select count(*) from reporting.kpi_rollup('2026-03-01', '2026-03-31', 'city')",
    ] {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("fleet_ro: {sql}: {e}"));
        assert!(n >= 1, "{sql} gave no rows");
    }
    let fleet_km: f64 = sqlx::query_scalar(
        "select distance_m from reporting.kpi_rollup('2026-03-04', '2026-03-04', 'fleet')",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("rollup as fleet_ro");
    assert_eq!(fleet_km, 90_000.0);
    tx.rollback().await.expect("rollback");

    for sql in [
        format!("select fleet.refresh_kpi_daily(array[{d}], array['-infinity']::timestamptz[], array['infinity']::timestamptz[])"),
        format!("delete from fleet.kpi_daily where device_id = {d}"),
    ] {
        let mut tx = db.pool.begin().await.expect("tx");
        sqlx::query("set local role fleet_ro").execute(&mut *tx).await.expect("role");
        let r = sqlx::query(&sql).execute(&mut *tx).await;
        let code = r.as_ref().err().and_then(|e| e.as_database_error()).and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "`{sql}` as fleet_ro gave {r:?}");
        tx.rollback().await.expect("rollback");
    }
}
