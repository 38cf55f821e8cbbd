//! Incremental daily KPIs: whatever order fixes arrive in, and whenever the KPI step runs
//! between them, `fleet.kpi_daily` ends equal to a recomputation from scratch; in the in-order
//! case the step reads only the fixes after each day's watermark.

#[allow(dead_code)]
mod support;

use chrono::{DateTime, Duration, Utc};
use fleet_analytics::{refresh_kpis, TripWorker, TripWorkerConfig};
use fleet_core::{FixKind, PositionFix, PositionSource, TripPoint};
use fleet_ingest::{Record, Writer};
use fleet_testkit::TestDb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::{at, day, imei, writer, Leg};

/// A fix as delivered: the trip point, and whether its ignition state and odometer are sent.
#[derive(Debug, Clone)]
struct Fix {
    point: TripPoint,
    odometer_m: Option<f64>,
}

fn records(device: u32, fixes: &[Fix]) -> Vec<Record> {
    fixes
        .iter()
        .map(|f| {
            Record::Position(PositionFix {
                imei: imei(device),
                gps_time: f.point.time,
                location: f.point.location,
                speed_kmh: f.point.speed_kmh,
                course_deg: Some(90.0),
                altitude_m: None,
                ignition: f.point.ignition,
                satellites: Some(9),
                fix_kind: FixKind::Gps,
                battery_pct: None,
                external_v: Some(12.4),
                odometer_m: f.odometer_m,
                source: PositionSource::Push,
                extra: None,
            })
        })
        .collect()
}

async fn deliver(w: &Writer, device: u32, fixes: &[Fix]) {
    w.write("push.test", records(device, fixes)).await.expect("written");
}

async fn device_id(db: &TestDb, device: u32) -> i32 {
    sqlx::query_scalar("select device_id from fleet.devices where imei = $1")
        .bind(imei(device).as_str())
        .fetch_one(&db.pool)
        .await
        .expect("device")
}

/// Every KPI row of the device, as text, without the computation time.
async fn kpi_rows(db: &TestDb, id: i32) -> Vec<String> {
    sqlx::query_scalar(
        "select (to_jsonb(k) - 'computed_at')::text from fleet.kpi_daily k
         where device_id = $1 order by local_date",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .expect("kpi rows")
}

/// Recounts every day of the device from its fixes (the three-argument refresh).
async fn recompute(db: &TestDb, id: i32) {
    sqlx::query(
        "select fleet.refresh_kpi_daily(array[$1::int], array['-infinity']::timestamptz[],
                                        array['infinity']::timestamptz[])",
    )
    .bind(id)
    .execute(&db.pool)
    .await
    .expect("recompute");
}

async fn fixes_counted(db: &TestDb, id: i32, date: &str) -> i32 {
    sqlx::query_scalar(
        "select fixes from fleet.kpi_daily where device_id = $1 and local_date = $2::date",
    )
    .bind(id)
    .bind(date)
    .fetch_one(&db.pool)
    .await
    .expect("kpi row")
}

/// The day's fixes from `legs`, starting 22:00 in Nairobi so that they cross local midnight;
/// `acc_off[i]` drops fix i's ignition state, `odometer[i]` sends an odometer with fix i.
fn fixes_of(legs: &[Leg], acc_off: &[bool], odometer: &[bool]) -> Vec<Fix> {
    day(at(19, 0), legs)
        .into_iter()
        .enumerate()
        .map(|(i, mut point)| {
            if acc_off.get(i % acc_off.len().max(1)).copied().unwrap_or(false) {
                point.ignition = None;
            }
            let odometer_m = odometer
                .get(i % odometer.len().max(1))
                .copied()
                .unwrap_or(false)
                .then_some(1_000_000.0 + 25.0 * i as f64);
            Fix { point, odometer_m }
        })
        .collect()
}

fn leg() -> impl Strategy<Value = Leg> {
    prop_oneof![
        (5i64..90, prop_oneof![Just(30i64), Just(60), Just(300)])
            .prop_map(|(mins, every)| Leg::Park { mins, every }),
        (3i64..40, 20.0f64..90.0).prop_map(|(mins, kmh)| Leg::Drive { mins, kmh }),
        (2i64..15).prop_map(|mins| Leg::Idle { mins }),
    ]
}

/// One case: the fixes, the order they arrive in, the batch sizes, and per batch whether the
/// trip pass and the KPI step run after it (0: pass then KPIs, 1: KPIs then pass, 2: pass only).
type Case = (Vec<Leg>, Vec<bool>, Vec<bool>, Vec<usize>, Vec<usize>, Vec<u8>);

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(leg(), 2..8),
        prop::collection::vec(prop::bool::weighted(0.1), 1..7),
        prop::collection::vec(prop::bool::weighted(0.6), 1..7),
    )
        .prop_flat_map(|(legs, acc_off, odometer)| {
            let n = fixes_of(&legs, &acc_off, &odometer).len();
            (
                Just(legs),
                Just(acc_off),
                Just(odometer),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                prop::collection::vec(1usize..80, 1..12),
                prop::collection::vec(0u8..3, 12),
            )
        })
}

async fn run_case(db: &TestDb, w: &Writer, device: u32, case: Case) -> Result<(), TestCaseError> {
    let (legs, acc_off, odometer, order, sizes, steps) = case;
    let fixes = fixes_of(&legs, &acc_off, &odometer);
    // the shuffled fixes in batches; whatever the sizes leave over is the last batch
    let mut arrivals: Vec<Fix> = order.iter().map(|&i| fixes[i].clone()).collect();
    let mut batches = Vec::new();
    for size in sizes {
        if arrivals.is_empty() {
            break;
        }
        let rest = arrivals.split_off(size.min(arrivals.len()));
        batches.push(std::mem::replace(&mut arrivals, rest));
    }
    if !arrivals.is_empty() {
        batches.push(arrivals);
    }

    let mut worker = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    for (batch, step) in batches.iter().zip(steps.iter().cycle()) {
        deliver(w, device, batch).await;
        match step {
            0 => {
                worker.pass(|_| {}).await.expect("pass");
                refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
            }
            1 => {
                refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
                worker.pass(|_| {}).await.expect("pass");
            }
            _ => {
                worker.pass(|_| {}).await.expect("pass");
            }
        }
    }
    worker.pass(|_| {}).await.expect("last pass");
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("last kpi step");

    let id = device_id(db, device).await;
    let counted: i64 = sqlx::query_scalar(
        "select coalesce(sum(fixes), 0)::int8 from fleet.kpi_daily where device_id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .expect("fixes");
    prop_assert_eq!(counted, fixes.len() as i64, "every fix counted once");
    let incremental = kpi_rows(db, id).await;
    recompute(db, id).await;
    let scratch = kpi_rows(db, id).await;
    prop_assert_eq!(incremental, scratch);
    Ok(())
}

#[test]
fn kpis_after_any_arrival_order_equal_a_recomputation_from_the_fixes() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (db, w, _stop) = rt.block_on(async {
        let db = TestDb::migrated().await;
        let (w, stop) = writer(&db);
        (db, w, stop)
    });
    let mut runner = TestRunner::new(Config::with_cases(24));
    let device = std::cell::Cell::new(0u32);
    runner
        .run(&case(), |case| {
            // a device of its own per case: the earlier cases' rows stay out of the comparison
            device.set(device.get() + 1);
            rt.block_on(run_case(&db, &w, device.get(), case))
        })
        .expect("property");
}

#[tokio::test]
async fn the_kpi_step_reads_only_fixes_after_the_watermark_until_a_late_fix_arrives() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let fixes = fixes_of(
        &[
            Leg::Park { mins: 30, every: 60 },
            Leg::Drive { mins: 20, kmh: 40.0 },
            Leg::Park { mins: 60, every: 60 },
        ],
        &[false],
        &[true],
    );
    // 19:00-20:50 UTC: all on Monday 2026-03-02 in Nairobi (midnight is 21:00 UTC)
    let (first, rest) = fixes.split_at(40);
    let mut worker = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    deliver(&w, 1, first).await;
    worker.pass(|_| {}).await.expect("pass");
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    let id = device_id(&db, 1).await;
    assert_eq!(fixes_counted(&db, id, "2026-03-02").await, 40);

    // a fix removed behind the step's back (no mark) shows whether the day is recounted
    let removed: DateTime<Utc> = first[5].point.time;
    sqlx::query("delete from fleet.positions where device_id = $1 and gps_time = $2")
        .bind(id)
        .bind(removed)
        .execute(&db.pool)
        .await
        .expect("delete");
    let (middle, last) = rest.split_at(30);
    deliver(&w, 1, middle).await;
    worker.pass(|_| {}).await.expect("pass");
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    assert_eq!(
        fixes_counted(&db, id, "2026-03-02").await,
        70,
        "in order: the 30 new fixes are added to the 40 counted, none re-read"
    );

    // a late fix (before the watermark) makes the step recount the day from the fixes
    let late = Fix {
        point: TripPoint { time: removed + Duration::seconds(1), ..first[5].point },
        odometer_m: None,
    };
    deliver(&w, 1, &[late]).await;
    deliver(&w, 1, last).await;
    worker.pass(|_| {}).await.expect("pass");
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    let total = 40 - 1 + 30 + 1 + last.len() as i32;
    assert_eq!(fixes_counted(&db, id, "2026-03-02").await, total, "recounted: {total}");
    let incremental = kpi_rows(&db, id).await;
    recompute(&db, id).await;
    assert_eq!(incremental, kpi_rows(&db, id).await);
}

#[tokio::test]
async fn fixes_the_trip_pass_has_not_processed_wait_for_it() {
    let db = TestDb::migrated().await;
    let (w, _stop) = writer(&db);
    let fixes = fixes_of(&[Leg::Drive { mins: 30, kmh: 40.0 }], &[false], &[true]);
    let (first, second) = fixes.split_at(60);
    let mut worker = TripWorker::new(db.pool.clone(), TripWorkerConfig::default());
    deliver(&w, 1, first).await;
    worker.pass(|_| {}).await.expect("pass");
    deliver(&w, 1, second).await;
    // the step runs before the pass that processes the second batch: it counts the first only
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    let id = device_id(&db, 1).await;
    assert_eq!(fixes_counted(&db, id, "2026-03-02").await, 60);
    worker.pass(|_| {}).await.expect("pass");
    refresh_kpis(&db.pool, 200, |_| {}).await.expect("kpi step");
    assert_eq!(fixes_counted(&db, id, "2026-03-02").await, 120);
    let incremental = kpi_rows(&db, id).await;
    recompute(&db, id).await;
    assert_eq!(incremental, kpi_rows(&db, id).await);
}
