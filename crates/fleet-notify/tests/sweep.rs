//! The notify sweep against a real database: trackers silent past a rule's limit and vehicles
//! not moved by a rule's time of day are told once, each threshold and day on its own.

use chrono::{TimeDelta, Utc};
use fleet_db::notify::NotifyKey;
use fleet_notify::sweep::{sweep, SweepReport};
use fleet_testkit::TestDb;

async fn exec(db: &TestDb, sql: &str) {
    sqlx::query(sql).execute(&db.pool).await.expect(sql);
}

/// A vehicle whose latest fix is `silent_min` minutes old; returns its id.
async fn vehicle(db: &TestDb, imei: &str, silent_min: i64) -> i32 {
    let id: i32 = sqlx::query_scalar(
        "insert into fleet.devices (imei, name) values ($1, 'Van') returning device_id",
    )
    .bind(imei)
    .fetch_one(&db.pool)
    .await
    .expect("device");
    let t = Utc::now() - TimeDelta::minutes(silent_min);
    sqlx::query(
        "insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, source,
             motion_state, state_since)
         values ($1, $2, $2, -1.28, 36.82, 'push', 'parked', $2)",
    )
    .bind(id)
    .bind(t)
    .execute(&db.pool)
    .await
    .expect("latest");
    id
}

async fn user(db: &TestDb) -> i32 {
    sqlx::query_scalar(
        "insert into fleet.users (username, password_hash, role) values ('ann', 'x', 'admin')
         returning user_id",
    )
    .fetch_one(&db.pool)
    .await
    .expect("user")
}

async fn rule(db: &TestDb, kind: &str, user: i32, params: serde_json::Value) {
    sqlx::query(
        "insert into fleet.notify_rules (name, kinds, user_ids, channels, params)
         values ('r', array[$1], array[$2], '{in_app}', $3)",
    )
    .bind(kind)
    .bind(user)
    .bind(params)
    .execute(&db.pool)
    .await
    .expect("rule");
}

async fn keys(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("select e.event_key from fleet.notify_inbox i join fleet.notify_events e using (event_id) order by 1")
        .fetch_all(&db.pool)
        .await
        .expect("keys")
}

#[tokio::test]
async fn a_silent_tracker_is_told_once_per_offline_threshold() {
    let db = TestDb::migrated().await;
    let key = NotifyKey::load(&db.pool).await.expect("key");
    let ann = user(&db).await;
    let silent = vehicle(&db, "861234567800001", 45).await;
    vehicle(&db, "861234567800002", 5).await;
    rule(&db, "offline", ann, serde_json::json!({"offline_min": 30})).await;
    rule(&db, "offline", ann, serde_json::json!({"offline_min": 60})).await;

    let first = sweep(&db.pool, &key).await.expect("sweep");
    assert_eq!(first, SweepReport { events: 1, outbox: 0 });
    let told = keys(&db).await;
    assert_eq!(told.len(), 1);
    assert!(
        told[0].starts_with(&format!("offline:{silent}:")) && told[0].ends_with(":1800"),
        "{told:?}"
    );
    assert_eq!(sweep(&db.pool, &key).await.expect("again"), SweepReport::default(), "told once");

    // an hour of silence reaches the second rule's threshold
    sqlx::query(
        "update fleet.device_latest set gps_time = gps_time - interval '30 minutes'
         where device_id = $1",
    )
    .bind(silent)
    .execute(&db.pool)
    .await
    .expect("older fix");
    // (the fix moved, as if the first silence ended and a longer one began)
    let later = sweep(&db.pool, &key).await.expect("later");
    assert_eq!(later.events, 2, "a new silence: both thresholds");
    let thresholds: Vec<i32> = sqlx::query_scalar(
        "select unnest(offline_thresholds) from fleet.notify_device_state
         where device_id = $1 order by 1",
    )
    .bind(silent)
    .fetch_all(&db.pool)
    .await
    .expect("state");
    assert_eq!(thresholds, [1800, 3600]);
}

#[tokio::test]
async fn a_vehicle_not_moved_by_the_deadline_is_told_once_a_day() {
    let db = TestDb::migrated().await;
    exec(&db, "update fleet.analytics_config set timezone = 'UTC' where scope = 'global'").await;
    let key = NotifyKey::load(&db.pool).await.expect("key");
    let ann = user(&db).await;
    let idle = vehicle(&db, "861234567800001", 1).await;
    let busy = vehicle(&db, "861234567800002", 1).await;
    // the busy one drove today
    let t = Utc::now() - TimeDelta::seconds(30);
    sqlx::query(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, moving_s, idle_s, max_speed_kmh, avg_speed_kmh,
             overspeed_count, overspeed_s, point_count, gap_s, end_reason)
         values ($1, $2, $3, 0, 0, 0, 0, 1000, 10, 10, 0, 40, 30, 0, 0, 5, 0, 'work_stop')",
    )
    .bind(busy)
    .bind(t - TimeDelta::seconds(10))
    .bind(t)
    .execute(&db.pool)
    .await
    .expect("trip");
    // a deadline of midnight has always passed
    rule(&db, "not_moved", ann, serde_json::json!({"not_moved_by": "00:00:00"})).await;

    assert_eq!(sweep(&db.pool, &key).await.expect("sweep").events, 1);
    let today: String = sqlx::query_scalar("select (now() at time zone 'UTC')::date::text")
        .fetch_one(&db.pool)
        .await
        .expect("today");
    assert_eq!(keys(&db).await, [format!("not_moved:{idle}:{today}:0")]);
    assert_eq!(sweep(&db.pool, &key).await.expect("again").events, 0, "once a day");
}

#[tokio::test]
async fn a_rule_wanting_only_online_is_told_when_a_silent_tracker_comes_back() {
    let db = TestDb::migrated().await;
    let key = NotifyKey::load(&db.pool).await.expect("key");
    let ann = user(&db).await;
    let silent = vehicle(&db, "861234567800001", 45).await;
    rule(&db, "online", ann, serde_json::json!({})).await;

    // no offline rule, yet the sweep marks the vehicle offline at the default 30 min, so that
    // its return can be told (the offline event itself is stored for nobody)
    let swept = sweep(&db.pool, &key).await.expect("sweep");
    assert_eq!(swept, SweepReport::default());
    assert!(keys(&db).await.is_empty(), "nobody asked to hear of offline");
    let offline_since: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "select offline_since from fleet.notify_device_state where device_id = $1",
    )
    .bind(silent)
    .fetch_optional(&db.pool)
    .await
    .expect("state")
    .flatten();
    assert!(offline_since.is_some());

    // the tracker reports again; the writer's flush tells it back online
    exec(&db, "update fleet.device_latest set gps_time = now()").await;
    let mut tx = db.pool.begin().await.expect("tx");
    let back = fleet_db::notifications::derive::back_online(&mut tx, &[silent])
        .await
        .expect("back online");
    fleet_db::notifications::events::record_now(&mut tx, &back).await.expect("recorded");
    tx.commit().await.expect("commit");
    let told = keys(&db).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].starts_with(&format!("online:{silent}:")), "{told:?}");
}
