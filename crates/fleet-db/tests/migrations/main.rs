//! The schema migrations against a real PostgreSQL server, the list of landed migrations they
//! must match, and databases that applied an earlier text of an edited migration.

mod append_only;
mod earlier_texts;

use fleet_core::{AnalyticsSettings, FixKind, PositionSource};
use fleet_db::migrate::{self, MIGRATOR};
use fleet_testkit::TestDb;

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerunning_is_a_no_op() {
    let db = TestDb::empty().await;
    let before = migrate::status(&db.pool).await.expect("status");
    assert_eq!(before.pending.len(), MIGRATOR.iter().count());
    assert!(!before.is_current());

    assert_eq!(migrate::run(&db.pool).await.expect("first run"), MIGRATOR.iter().count());
    assert!(migrate::status(&db.pool).await.expect("status").is_current());

    assert_eq!(migrate::run(&db.pool).await.expect("second run"), 0);
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct version) from _sqlx_migrations")
            .fetch_one(&db.pool)
            .await
            .expect("history");
    assert_eq!((rows, distinct), (MIGRATOR.iter().count() as i64, MIGRATOR.iter().count() as i64));
}

#[tokio::test]
async fn two_migrations_started_at_once_both_succeed_and_apply_each_once() {
    let db = TestDb::empty().await;
    let other = db.another_pool().await;
    let (a, b) = tokio::join!(migrate::run(&db.pool), migrate::run(&other));
    let (a, b) = (a.expect("first migrator"), b.expect("second migrator"));
    assert_eq!(a + b, MIGRATOR.iter().count(), "each migration counted as applied by exactly one");
    let rows: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .expect("history");
    assert_eq!(rows, MIGRATOR.iter().count() as i64);
}

#[tokio::test]
async fn every_table_and_view_an_analyst_reads_has_a_comment() {
    let db = TestDb::migrated().await;
    let missing: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname)
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('fleet', 'reporting') and c.relkind in ('r', 'p', 'v', 'm')
           and obj_description(c.oid, 'pg_class') is null
         order by 1",
    )
    .fetch_all(&db.pool)
    .await
    .expect("catalog");
    assert!(missing.is_empty(), "tables without COMMENT ON: {missing:?}");
}

#[tokio::test]
async fn the_seeded_global_settings_are_the_documented_defaults() {
    let db = TestDb::migrated().await;
    let row: (f64, f64, i32, i32, i32, f64, i32, f64, i32) = sqlx::query_as(
        "select speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s, idle_min_s,
                min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m, offline_after_s
         from fleet.analytics_config where scope = 'global'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("global row");
    let rest: (chrono::NaiveTime, chrono::NaiveTime, Vec<i16>, String, f64, f64, String) = sqlx::query_as(
        "select shift_start, shift_end, shift_weekdays, timezone, idle_fuel_l_per_h, fuel_price_per_l, currency
         from fleet.analytics_config where scope = 'global'",
    )
    .fetch_one(&db.pool)
    .await
    .expect("global row");
    let seeded = AnalyticsSettings {
        speed_limit_kmh: row.0,
        moving_speed_kmh: row.1,
        work_stop_min_s: row.2,
        long_gap_s: row.3,
        idle_min_s: row.4,
        min_trip_distance_m: row.5,
        min_trip_duration_s: row.6,
        motion_confirm_distance_m: row.7,
        offline_after_s: row.8,
        shift_start: rest.0,
        shift_end: rest.1,
        shift_weekdays: rest.2,
        timezone: rest.3,
        idle_fuel_l_per_h: rest.4,
        fuel_price_per_l: rest.5,
        currency: rest.6,
    };
    assert_eq!(seeded, AnalyticsSettings::default());
    let tz_known: bool =
        sqlx::query_scalar("select exists (select from pg_timezone_names where name = $1)")
            .bind(&seeded.timezone)
            .fetch_one(&db.pool)
            .await
            .expect("tz");
    assert!(tz_known, "the default time zone is known to PostgreSQL");
}

#[tokio::test]
async fn the_positions_table_accepts_exactly_the_sources_and_fix_kinds_the_domain_knows() {
    let db = TestDb::migrated().await;
    let device: i32 = sqlx::query_scalar(
        "insert into fleet.devices (imei) values ('868120303960873') returning device_id",
    )
    .fetch_one(&db.pool)
    .await
    .expect("device");
    let insert = |minute: i32, source: String, fix: String| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "insert into fleet.positions (device_id, gps_time, lat, lon, source, fix_kind)
                 values ($1, now() - make_interval(mins => $2), -1.28, 36.82, $3, $4)",
            )
            .bind(device)
            .bind(minute)
            .bind(source)
            .bind(fix)
            .execute(&pool)
            .await
        }
    };
    let mut minute = 0;
    for s in PositionSource::ALL {
        for k in FixKind::ALL {
            minute += 1;
            insert(minute, s.to_string(), k.to_string())
                .await
                .unwrap_or_else(|e| panic!("{s}/{k}: {e}"));
        }
    }
    let bad_source = insert(999, "fax".into(), "gps".into()).await.expect_err("unknown source");
    let bad_fix = insert(998, "poll".into(), "psychic".into()).await.expect_err("unknown fix kind");
    for e in [bad_source, bad_fix] {
        assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23514"), "{e}");
    }
}

#[tokio::test]
async fn the_same_fix_twice_is_one_row() {
    let db = TestDb::migrated().await;
    let device: i32 = sqlx::query_scalar(
        "insert into fleet.devices (imei) values ('868120303960874') returning device_id",
    )
    .fetch_one(&db.pool)
    .await
    .expect("device");
    for _ in 0..2 {
        sqlx::query(
            "insert into fleet.positions (device_id, gps_time, lat, lon, source)
             values ($1, '2026-11-20 10:00:00+00', -1.28, 36.82, 'poll') on conflict do nothing",
        )
        .bind(device)
        .execute(&db.pool)
        .await
        .expect("insert");
    }
    let n: i64 = sqlx::query_scalar("select count(*) from fleet.positions")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn migrating_with_a_pool_of_one_connection_does_not_deadlock() {
    let db = TestDb::empty().await;
    let cfg = fleet_config::DbConfig { max_connections: 1, ..fleet_testkit::db_config() };
    let pool = fleet_db::connect(db.url(), &cfg).await.expect("pool of one");
    let applied = tokio::time::timeout(std::time::Duration::from_secs(60), migrate::run(&pool))
        .await
        .expect("finishes")
        .expect("migrates");
    assert_eq!(applied, MIGRATOR.iter().count());
}

#[tokio::test]
async fn old_rejects_are_pruned_and_recent_ones_kept() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "insert into fleet.ingest_rejects (received_at, channel, reason, raw)
         values (now() - interval '40 days', 'push.gps', 'old', '{}'), (now(), 'push.gps', 'new', '{}')",
    )
    .execute(&db.pool)
    .await
    .expect("rejects");
    assert_eq!(fleet_db::housekeeping::prune_rejects(&db.pool).await.expect("prune"), 1);
    let left: Vec<String> = sqlx::query_scalar("select reason from fleet.ingest_rejects")
        .fetch_all(&db.pool)
        .await
        .expect("left");
    assert_eq!(left, vec!["new".to_owned()]);
}

#[tokio::test]
async fn push_tokens_kept_in_rejects_before_the_fix_are_scrubbed_on_upgrade() {
    let db = TestDb::empty().await;
    // an installation that stopped at the migration before the scrub
    let before = sqlx::migrate::Migrator {
        migrations: MIGRATOR.iter().filter(|m| m.version < 24).cloned().collect(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&db.pool).await.expect("migrations up to 0023");
    sqlx::query(
        "insert into fleet.ingest_rejects (channel, reason, raw) values
            ('push.gps', 'no data_list field', 'token=s3cret-push&msgType=x&'),
            ('push.gps', 'no data_list field', 'a=1&token=s3cret-push&token=again&'),
            ('push.notify', 'bad data', 'msgType=jimi.push.device.alarm&data={\"mytoken=1\"}')",
    )
    .execute(&db.pool)
    .await
    .expect("rejects as stored before");
    migrate::run(&db.pool).await.expect("upgrade");
    let raws: Vec<String> =
        sqlx::query_scalar("select raw from fleet.ingest_rejects order by reject_id")
            .fetch_all(&db.pool)
            .await
            .expect("rejects");
    assert_eq!(
        raws,
        [
            "token=[removed]&msgType=x&",
            "a=1&token=[removed]&token=[removed]&",
            "msgType=jimi.push.device.alarm&data={\"mytoken=1\"}",
        ]
    );
}
