//! The batching writer against a real PostgreSQL database.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fleet_core::{
    AlarmClass, AlarmEvent, CellFix, DeviceEvent, FixKind, Heartbeat, Imei, LatLon, PositionFix,
    PositionSource, SensorKind, SensorReading, SessionEventKind, VendorTrip,
};
use fleet_ingest::{Record, Reject, WriteError, Writer, WriterConfig};
use fleet_testkit::TestDb;
use tokio_util::sync::CancellationToken;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).single().expect("time")
}

fn imei(n: u32) -> Imei {
    Imei::parse(&format!("8612345678{n:05}")).expect("imei")
}

fn fix(device: u32, t: DateTime<Utc>, speed: f32, ignition: Option<bool>) -> Record {
    Record::Position(PositionFix {
        imei: imei(device),
        gps_time: t,
        location: LatLon::new(-1.28 + f64::from(device) * 0.001, 36.82).expect("valid"),
        speed_kmh: Some(speed),
        course_deg: Some(90.0),
        altitude_m: None,
        ignition,
        satellites: Some(9),
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: Some(12.4),
        odometer_m: None,
        source: PositionSource::Push,
        extra: Some(serde_json::json!({"gateTime": "with\ttab and \\ backslash"})),
    })
}

fn start(
    db: &TestDb,
    config: WriterConfig,
) -> (Writer, tokio::task::JoinHandle<()>, CancellationToken) {
    let stop = CancellationToken::new();
    let (w, task) = Writer::spawn(db.pool.clone(), config, stop.clone());
    (w, task, stop)
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test]
async fn records_written_twice_are_stored_once_and_the_second_time_reported_as_duplicates() {
    let db = TestDb::migrated().await;
    let (w, _, _) = start(&db, WriterConfig::default());
    let batch: Vec<Record> = (0..50)
        .map(|i| {
            fix(i % 2, at(8, 0) + chrono::TimeDelta::seconds(i64::from(i) * 10), 30.0, Some(true))
        })
        .collect();
    let first = w.write("push.gps", batch.clone()).await.expect("stored");
    assert_eq!((first.received, first.new, first.duplicate, first.rejected), (50, 50, 0, 0));
    let again = w.write("push.gps", batch).await.expect("stored");
    assert_eq!((again.new, again.duplicate), (0, 50));
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 50);
    assert_eq!(
        count(&db, "select count(*) from fleet.devices").await,
        2,
        "unknown IMEIs are registered"
    );
    let extra: serde_json::Value = sqlx::query_scalar("select extra from fleet.positions limit 1")
        .fetch_one(&db.pool)
        .await
        .expect("extra");
    assert_eq!(extra["gateTime"], "with\ttab and \\ backslash", "the JSON text is kept exact");
}

/// One stored row of `fleet.positions`: every column the writer stages.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct StoredFix {
    gps_time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f32>,
    course_deg: Option<f32>,
    altitude_m: Option<f32>,
    ignition: Option<bool>,
    satellites: Option<i16>,
    fix_kind: String,
    battery_pct: Option<f32>,
    external_v: Option<f32>,
    odometer_m: Option<f64>,
    source: String,
    extra: Option<serde_json::Value>,
}

#[tokio::test]
async fn every_column_of_a_fix_is_stored_exactly_and_missing_values_as_null() {
    let db = TestDb::migrated().await;
    let (w, _, _) = start(&db, WriterConfig::default());
    // a time with sub-microsecond digits (dropped), before PostgreSQL's 2000 epoch too
    let full_time = Utc.timestamp_opt(1_763_625_601, 123_456_789).single().expect("time");
    let early_time = Utc.timestamp_opt(946_684_799, 999_999_000).single().expect("time");
    let full = PositionFix {
        imei: imei(1),
        gps_time: full_time,
        location: LatLon::new(-4.043_210_987_654_321, 39.668_123_456_789).expect("valid"),
        speed_kmh: Some(63.7),
        course_deg: Some(359.5),
        altitude_m: Some(-12.25),
        ignition: Some(false),
        satellites: Some(14),
        fix_kind: FixKind::Lbs,
        battery_pct: Some(87.5),
        external_v: Some(24.1),
        odometer_m: Some(123_456_789.125),
        source: PositionSource::Track,
        extra: Some(serde_json::json!({"note": "Mombasa – “quoted” \\ \t", "n": [1, 2.5]})),
    };
    let bare = PositionFix {
        imei: imei(2),
        gps_time: early_time,
        location: LatLon::new(0.5, -0.25).expect("valid"),
        speed_kmh: Some(f32::NAN),
        course_deg: None,
        altitude_m: Some(f32::INFINITY),
        ignition: None,
        satellites: None,
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: None,
        odometer_m: Some(f64::NAN),
        source: PositionSource::Push,
        extra: Some(serde_json::Value::Null),
    };
    let report = w
        .write("push.gps", vec![Record::Position(full.clone()), Record::Position(bare.clone())])
        .await
        .expect("stored");
    assert_eq!(report.new, 2);
    let rows: Vec<StoredFix> = sqlx::query_as(
        "select gps_time, lat, lon, speed_kmh, course_deg, altitude_m, ignition, satellites,
                fix_kind, battery_pct, external_v, odometer_m, source, extra
         from fleet.positions p join fleet.devices d using (device_id) order by d.imei",
    )
    .fetch_all(&db.pool)
    .await
    .expect("rows");
    let micros = |t: DateTime<Utc>| {
        Utc.timestamp_micros(t.timestamp_micros()).single().expect("whole microseconds")
    };
    assert_eq!(
        rows[0],
        StoredFix {
            gps_time: micros(full_time),
            lat: full.location.lat(),
            lon: full.location.lon(),
            speed_kmh: Some(63.7),
            course_deg: Some(359.5),
            altitude_m: Some(-12.25),
            ignition: Some(false),
            satellites: Some(14),
            fix_kind: "lbs".to_owned(),
            battery_pct: Some(87.5),
            external_v: Some(24.1),
            odometer_m: Some(123_456_789.125),
            source: "track".to_owned(),
            extra: full.extra.clone(),
        }
    );
    assert_eq!(
        rows[1],
        StoredFix {
            gps_time: micros(early_time),
            lat: 0.5,
            lon: -0.25,
            speed_kmh: None,
            course_deg: None,
            altitude_m: None,
            ignition: None,
            satellites: None,
            fix_kind: "gps".to_owned(),
            battery_pct: None,
            external_v: None,
            odometer_m: None,
            source: "push".to_owned(),
            extra: None,
        },
        "values that are not finite, and a JSON null, are stored as NULL"
    );
}

#[tokio::test]
async fn the_latest_position_only_moves_forward_and_its_state_starts_when_it_changes() {
    let db = TestDb::migrated().await;
    let (w, _, _) = start(&db, WriterConfig::default());
    let latest = || async {
        sqlx::query_as::<_, (DateTime<Utc>, String, DateTime<Utc>)>(
            "select gps_time, motion_state, state_since from fleet.device_latest",
        )
        .fetch_one(&db.pool)
        .await
        .expect("latest")
    };
    w.write("poll.live", vec![fix(1, at(10, 0), 42.0, Some(true))]).await.expect("write");
    assert_eq!(latest().await, (at(10, 0), "moving".to_owned(), at(10, 0)));
    w.write("poll.track", vec![fix(1, at(9, 0), 0.0, Some(false))]).await.expect("late fix");
    assert_eq!(latest().await.0, at(10, 0), "an older fix does not move the latest back");
    w.write("push.gps", vec![fix(1, at(10, 5), 0.0, Some(false))]).await.expect("write");
    assert_eq!(latest().await, (at(10, 5), "parked".to_owned(), at(10, 5)));
    w.write("push.gps", vec![fix(1, at(10, 9), 0.0, Some(false))]).await.expect("write");
    assert_eq!(
        latest().await,
        (at(10, 9), "parked".to_owned(), at(10, 5)),
        "still parked since 10:05"
    );
    w.write("push.gps", vec![fix(1, at(10, 12), 1.0, Some(true))]).await.expect("write");
    assert_eq!(latest().await.1, "idling");
}

#[tokio::test]
async fn concurrent_producers_each_learn_exactly_what_was_new_for_them() {
    let db = TestDb::migrated().await;
    let (w, _, _) = start(
        &db,
        WriterConfig {
            max_rows: 10_000,
            max_age: Duration::from_millis(50),
            ..WriterConfig::default()
        },
    );
    let mut tasks = Vec::new();
    for p in 0..8u32 {
        let w = w.clone();
        // producers overlap: each sends 100 fixes, half of them also sent by its neighbour
        tasks.push(tokio::spawn(async move {
            let recs: Vec<Record> = (0..100)
                .map(|i| {
                    fix(3, at(6, 0) + chrono::TimeDelta::seconds(i64::from(p * 50 + i)), 20.0, None)
                })
                .collect();
            w.write("push.gps", recs).await.expect("stored")
        }));
    }
    let mut new = 0;
    for t in tasks {
        let r = t.await.expect("join");
        assert_eq!(r.new + r.duplicate, 100);
        new += r.new;
    }
    let stored = count(&db, "select count(*) from fleet.positions").await;
    assert_eq!(stored, 450);
    assert_eq!(new as i64, stored, "every stored fix was reported new to exactly one producer");
}

#[tokio::test]
async fn every_kind_of_record_lands_in_its_table_once() {
    let db = TestDb::migrated().await;
    let (w, _, _) = start(&db, WriterConfig::default());
    let i = imei(7);
    let here = LatLon::new(-4.04, 39.67).ok();
    let records = vec![
        Record::Alarm(AlarmEvent {
            imei: i.clone(),
            alarm_time: at(9, 0),
            alarm_type: "1".into(),
            alarm_name: "SOS alert".into(),
            class: AlarmClass::Safety,
            location: here,
            speed_kmh: Some(0.0),
            source: PositionSource::Push,
            extra: None,
        }),
        Record::Heartbeat(Heartbeat {
            imei: i.clone(),
            gate_time: at(9, 1),
            power_level: Some(5),
            gsm_signal: Some(70),
            ignition: Some(false),
            extra: None,
        }),
        Record::Event(DeviceEvent {
            imei: i.clone(),
            time: at(9, 2),
            kind: SessionEventKind::Login,
            timezone: Some("GMT+03:00".into()),
            extra: None,
        }),
        Record::Cell(CellFix {
            imei: i.clone(),
            gate_time: at(9, 3),
            fix_kind: Some("LBS".into()),
            cells: Some(serde_json::json!({"mcc": 639})),
            extra: None,
        }),
        Record::Sensor(SensorReading {
            imei: i.clone(),
            time: at(9, 4),
            kind: SensorKind::Fuel,
            item: serde_json::json!({"oilValue": 42.5}),
        }),
        Record::VendorTrip {
            trip: VendorTrip {
                imei: i.clone(),
                start_time: at(9, 5),
                end_time: at(9, 25),
                start: here,
                end: here,
                distance_m: Some(8_400.0),
                duration_s: Some(1200),
                avg_speed_kmh: Some(25.2),
                max_speed_kmh: Some(61.0),
                extra: None,
            },
            pushed: true,
        },
    ];
    let r = w.write("push.mixed", records.clone()).await.expect("stored");
    assert_eq!((r.new, r.duplicate), (6, 0));
    for table in
        ["alarms", "heartbeats", "device_events", "cell_fixes", "sensor_readings", "vendor_trips"]
    {
        assert_eq!(count(&db, &format!("select count(*) from fleet.{table}")).await, 1, "{table}");
    }
    let again = w.write("push.mixed", records).await.expect("stored");
    assert_eq!((again.new, again.duplicate), (0, 6));
}

#[tokio::test]
async fn rejects_are_kept_with_reason_and_raw_form_and_unknown_devices_rejected_when_registration_is_off(
) {
    let db = TestDb::migrated().await;
    let (w, _, _) =
        start(&db, WriterConfig { register_unknown_devices: false, ..WriterConfig::default() });
    let huge = "x".repeat(200_000);
    let r = w
        .write(
            "push.gps",
            vec![
                Record::Reject(Reject::new(
                    "latitude 91 is outside -90..=90",
                    Some("861234567800001".into()),
                    huge,
                )),
                fix(9, at(7, 0), 10.0, None),
            ],
        )
        .await
        .expect("stored");
    assert_eq!((r.received, r.new, r.rejected), (2, 0, 2));
    let rows: Vec<(String, String, Option<String>, i32)> = sqlx::query_as(
        "select channel, reason, imei, length(raw) from fleet.ingest_rejects order by reject_id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("rejects");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0.as_str(), rows[0].3), ("push.gps", 65_536), "raw kept, cut to 64 KiB");
    assert!(rows[1].1.starts_with("unknown IMEI 861234567800009"), "{}", rows[1].1);
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 0);
    assert_eq!(count(&db, "select count(*) from fleet.devices").await, 0);
}

#[tokio::test]
async fn when_the_database_is_unreachable_producers_are_told_nothing_was_stored() {
    let db = TestDb::migrated().await;
    let pool = db.another_pool().await;
    let stop = CancellationToken::new();
    let (w, _) = Writer::spawn(pool.clone(), WriterConfig::default(), stop.clone());
    pool.close().await;
    let err = w.write("push.gps", vec![fix(1, at(8, 0), 5.0, None)]).await.expect_err("not stored");
    assert!(matches!(err, WriteError::Unavailable(_)), "{err:?}");
    assert_eq!(count(&db, "select count(*) from fleet.positions").await, 0);
}

#[tokio::test]
async fn shutdown_stores_what_was_submitted_and_logs_each_channels_window() {
    let db = TestDb::migrated().await;
    let (w, task, stop) = start(&db, WriterConfig::default());
    let a = w.write("push.gps", vec![fix(1, at(8, 0), 5.0, None), fix(1, at(8, 1), 5.0, None)]);
    let b = w.write("push.hb", vec![fix(2, at(8, 0), 5.0, None)]);
    let (a, b) = tokio::join!(a, b);
    assert_eq!((a.expect("a").new, b.expect("b").new), (2, 1));
    w.write("push.gps", vec![fix(1, at(8, 0), 5.0, None)]).await.expect("duplicate");
    // pollers log their own runs: no window rows for them
    w.write("poll.track", vec![fix(3, at(8, 0), 5.0, None)]).await.expect("polled");
    stop.cancel();
    task.await.expect("writer ends");
    let logged: Vec<(String, i32, i32, i32)> = sqlx::query_as(
        "select job, rows_in, rows_new, rows_duplicate from fleet.ingestion_log order by job",
    )
    .fetch_all(&db.pool)
    .await
    .expect("log");
    assert_eq!(logged, vec![("push.gps".to_owned(), 3, 2, 1), ("push.hb".to_owned(), 1, 1, 0)]);
    assert!(matches!(
        w.write("push.gps", vec![fix(1, at(9, 0), 5.0, None)]).await,
        Err(WriteError::Closed)
    ));
}
