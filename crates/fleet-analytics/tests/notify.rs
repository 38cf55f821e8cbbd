//! Notifications the trip pass derives: geofence crossings and after-hours trips, routed in the
//! chunk's transaction, each told once however often the pass re-derives.

#[allow(dead_code)]
mod support;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use fleet_analytics::{mark_rebuild, TripWorker, TripWorkerConfig};
use fleet_testkit::TestDb;
use serde_json::json;
use support::{day, deliver, writer, Leg};

fn worker(db: &TestDb) -> TripWorker {
    TripWorker::new(db.pool.clone(), TripWorkerConfig::default())
}

/// A working day that started three hours ago (UTC timezone, so local = UTC).
fn recent_day() -> (DateTime<Utc>, Vec<fleet_core::TripPoint>) {
    let start =
        (Utc::now() - TimeDelta::hours(3)).duration_trunc(TimeDelta::minutes(1)).expect("t");
    let points = day(
        start,
        &[
            Leg::Park { mins: 20, every: 60 },
            Leg::Drive { mins: 15, kmh: 40.0 },
            Leg::Park { mins: 40, every: 60 },
            Leg::Drive { mins: 10, kmh: 50.0 },
            Leg::Park { mins: 30, every: 60 },
        ],
    );
    (start, points)
}

async fn exec(db: &TestDb, sql: &str) {
    sqlx::query(sql).execute(&db.pool).await.expect(sql);
}

async fn user(db: &TestDb, name: &str) -> i32 {
    let id: i32 = sqlx::query_scalar(
        "insert into fleet.users (username, password_hash, role) values ($1, 'x', 'viewer')
         returning user_id",
    )
    .bind(name)
    .fetch_one(&db.pool)
    .await
    .expect("user");
    sqlx::query(
        "insert into fleet.notify_contacts (user_id, channel, address) values ($1, 'email', $2)",
    )
    .bind(id)
    .bind(format!("{name}@example.com"))
    .execute(&db.pool)
    .await
    .expect("contact");
    id
}

async fn rule(db: &TestDb, kinds: &[&str], user: i32, schedule: Option<serde_json::Value>) {
    sqlx::query(
        "insert into fleet.notify_rules (name, kinds, user_ids, channels, schedule)
         values ('r', $1, $2, '{email,in_app}', $3)",
    )
    .bind(kinds)
    .bind(vec![user])
    .bind(schedule)
    .execute(&db.pool)
    .await
    .expect("rule");
}

fn hour_window(h: u32) -> serde_json::Value {
    json!({"days": [1,2,3,4,5,6,7], "from": format!("{:02}:00:00", h % 24),
           "to": format!("{:02}:00:00", (h + 1) % 24)})
}

#[tokio::test]
async fn a_geofence_exit_is_told_by_the_rule_whose_schedule_holds_and_only_once() {
    let db = TestDb::migrated().await;
    exec(&db, "update fleet.analytics_config set timezone = 'UTC' where scope = 'global'").await;
    sqlx::query(
        "insert into fleet.geofences (name, kind, center_lat, center_lon, radius_m)
         values ('Depot', 'circle', $1, $2, 150)",
    )
    .bind(support::HOME.0)
    .bind(support::HOME.1)
    .execute(&db.pool)
    .await
    .expect("geofence");
    let (start, points) = recent_day();
    // the depot is left when the first drive starts, 20 minutes in
    let exit_hour = (start + TimeDelta::minutes(20)).hour();
    let night = user(&db, "night").await;
    let day_shift = user(&db, "day").await;
    rule(&db, &["geofence.exit"], night, Some(hour_window(exit_hour))).await;
    rule(&db, &["geofence.exit"], day_shift, Some(hour_window(exit_hour + 12))).await;

    let (w, _stop) = writer(&db);
    deliver(&w, 1, &points).await;
    worker(&db).pass(|_| {}).await.expect("pass");

    let rows: Vec<(i32, String, String)> = sqlx::query_as(
        "select o.user_id, e.kind, e.facts->>'geofence_name' from fleet.notify_outbox o
         join fleet.notify_events e using (event_id)",
    )
    .fetch_all(&db.pool)
    .await
    .expect("outbox");
    assert_eq!(rows, [(night, "geofence.exit".to_owned(), "Depot".to_owned())]);
    let inbox: i64 = sqlx::query_scalar("select count(*) from fleet.notify_inbox")
        .fetch_one(&db.pool)
        .await
        .expect("inbox");
    assert_eq!(inbox, 1);

    // late data re-derives the day: the crossing keeps its key, nothing new is told
    let late = support::records(
        1,
        &day(start - TimeDelta::minutes(5), &[Leg::Park { mins: 2, every: 60 }]),
    );
    w.write("push.test", late).await.expect("late");
    let mut builder = worker(&db);
    builder.pass(|_| {}).await.expect("pass");
    mark_rebuild(&db.pool, None, None).await.expect("rebuild");
    builder.pass(|_| {}).await.expect("rebuild pass");
    let outbox: i64 = sqlx::query_scalar("select count(*) from fleet.notify_outbox")
        .fetch_one(&db.pool)
        .await
        .expect("outbox");
    assert_eq!(outbox, 1);
}

#[tokio::test]
async fn trips_starting_outside_shift_hours_are_told_as_after_hours_movement() {
    let db = TestDb::migrated().await;
    // no shift day at all: every trip is after hours
    exec(&db, "update fleet.analytics_config set timezone = 'UTC', shift_weekdays = '{}' where scope = 'global'").await;
    let ann = user(&db, "ann").await;
    rule(&db, &["after_hours"], ann, None).await;
    let (_, points) = recent_day();
    let (w, _stop) = writer(&db);
    deliver(&w, 1, &points).await;
    worker(&db).pass(|_| {}).await.expect("pass");
    let trips: i64 = sqlx::query_scalar("select count(*) from fleet.trips")
        .fetch_one(&db.pool)
        .await
        .expect("trips");
    let told: Vec<String> = sqlx::query_scalar(
        "select e.event_key from fleet.notify_events e where e.kind = 'after_hours' order by 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("events");
    assert_eq!(told.len() as i64, trips, "{told:?}");
    assert!(trips >= 2);

    // within the shift (every day, all day): a new trip is not after hours
    exec(&db, "update fleet.analytics_config set shift_weekdays = '{1,2,3,4,5,6,7}', shift_start = '00:00', shift_end = '23:59:59' where scope = 'global'").await;
    let start = points.last().expect("fix").time + TimeDelta::minutes(1);
    let more = day(start, &[Leg::Drive { mins: 10, kmh: 50.0 }, Leg::Park { mins: 30, every: 60 }]);
    deliver(&w, 1, &more).await;
    worker(&db).pass(|_| {}).await.expect("pass");
    let after: i64 = sqlx::query_scalar("select count(*) from fleet.notify_events")
        .fetch_one(&db.pool)
        .await
        .expect("events");
    assert_eq!(after, trips);
}

#[tokio::test]
async fn sustained_overspeed_and_long_idling_are_told_once_per_rule_threshold() {
    let db = TestDb::migrated().await;
    exec(&db, "update fleet.analytics_config set timezone = 'UTC', speed_limit_kmh = 80 where scope = 'global'").await;
    let fast = user(&db, "fast").await;
    let slow = user(&db, "slow").await;
    let idle = user(&db, "idle").await;
    let with_params = |kinds: &'static str, user: i32, params: serde_json::Value| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "insert into fleet.notify_rules (name, kinds, user_ids, channels, params)
                 values ('r', array[$1], array[$2], '{email}', $3)",
            )
            .bind(kinds)
            .bind(user)
            .bind(params)
            .execute(&pool)
            .await
            .expect("rule");
        }
    };
    with_params("overspeed", fast, json!({"overspeed_for_s": 30})).await;
    with_params("overspeed", slow, json!({"overspeed_for_s": 600})).await;
    with_params("idling", idle, json!({"idle_min": 5})).await;
    let start =
        (Utc::now() - TimeDelta::hours(2)).duration_trunc(TimeDelta::minutes(1)).expect("t");
    let points = day(
        start,
        &[
            Leg::Park { mins: 10, every: 60 },
            Leg::Drive { mins: 3, kmh: 100.0 },
            Leg::Drive { mins: 2, kmh: 40.0 },
            Leg::Idle { mins: 12 },
            Leg::Park { mins: 30, every: 60 },
        ],
    );
    let (w, _stop) = writer(&db);
    // delivered in two halves, so the speeding run and the idle stop span passes
    let half = points.len() / 2;
    deliver(&w, 1, &points[..half]).await;
    let mut builder = worker(&db);
    builder.pass(|_| {}).await.expect("pass");
    deliver(&w, 1, &points[half..]).await;
    builder.pass(|_| {}).await.expect("pass");

    let told: Vec<(String, i32)> = sqlx::query_as(
        "select e.kind, o.user_id from fleet.notify_outbox o join fleet.notify_events e using (event_id)
         order by 1, 2",
    )
    .fetch_all(&db.pool)
    .await
    .expect("outbox");
    assert_eq!(told, [("idling".to_owned(), idle), ("overspeed".to_owned(), fast)]);
    let (duration, top): (i64, f64) = sqlx::query_as(
        "select (facts->>'duration_s')::int8, (facts->>'max_speed_kmh')::float8
         from fleet.notify_events where kind = 'overspeed'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("facts");
    assert!((30..45).contains(&duration), "{duration}");
    assert!((top - 100.0).abs() < 0.5, "{top}");
}
