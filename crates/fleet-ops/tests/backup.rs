//! Backups: take, verify, restore into a fresh database; the counts come out identical. A
//! damaged file is refused; a restore needs an empty target or a clean.

use std::collections::BTreeMap;

use fleet_ops::backup::{self, BackupRequest};
use fleet_ops::verify::{self, RestoreRequest};
use fleet_testkit::TestDb;
use sqlx::PgPool;

/// Three vehicles, a day of fixes each a minute apart (4,320 positions), trips and alarms.
async fn seed(pool: &PgPool) {
    sqlx::raw_sql(
        "insert into fleet.devices (imei, name)
             select '35933907501234' || n, 'Van ' || n from generate_series(1, 3) n;
         insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, ignition, source)
             select d.device_id, date_trunc('day', now()) - interval '1 day' + m * interval '1 minute',
                    -1.28 + m * 0.0001, 36.82, (m % 60)::real, true, 'track'
             from fleet.devices d cross join generate_series(0, 1439) m;
         insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
                                  end_lon, distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
             select device_id, date_trunc('day', now()) - interval '1 day', date_trunc('day', now()) - interval '23 hours',
                    -1.28, 36.82, -1.2, 36.82, 9000, 3600, 3600, 0, 60, 'work_stop'
             from fleet.devices;
         insert into fleet.alarms (device_id, alarm_time, alarm_type, source)
             select device_id, now() - interval '2 hours', '1', 'push' from fleet.devices;",
    )
    .execute(pool)
    .await
    .expect("seed");
}

/// A backup of `db` into `dir` as `fleetd backup` takes it (not scheduled, the machine's tools).
async fn take(db: &TestDb, dir: &std::path::Path) -> backup::Backup {
    backup::take(
        BackupRequest { pool: &db.pool, url: db.url(), dir, bindir: None, scheduled: false },
        &mut |_: &str| {},
    )
    .await
    .expect("backup")
}

async fn counts(pool: &PgPool) -> BTreeMap<String, i64> {
    let mut conn = pool.acquire().await.expect("conn");
    backup::snapshot_counts(&mut conn).await.expect("counts").0
}

#[tokio::test]
async fn backup_verify_restore_round_trip_gives_identical_counts() {
    let source = TestDb::migrated().await;
    seed(&source.pool).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = Vec::new();
    let b = backup::take(
        BackupRequest {
            pool: &source.pool,
            url: source.url(),
            dir: dir.path(),
            bindir: None,
            scheduled: false,
        },
        &mut |l: &str| lines.push(l.to_owned()),
    )
    .await
    .expect("backup");
    assert!(b.path.is_file());
    assert!(b
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(&format!("fleetd-{}-", source.name())));
    assert!(lines.iter().any(|l| l.contains("fleet")), "pg_dump's progress was passed on");
    assert_eq!(b.manifest.tables["fleet.positions"], 4320);
    assert_eq!(b.manifest.tables["fleet.devices"], 3);
    let source_counts = counts(&source.pool).await;
    // the backup's own row is written after the snapshot
    let mut expected = source_counts.clone();
    *expected.get_mut("fleet.backups").expect("backups table") -= 1;
    assert_eq!(b.manifest.tables, expected, "the manifest holds the snapshot's counts");

    let v = verify::verify(&source.pool, source.url(), &b.path, None, &mut |_: &str| {})
        .await
        .expect("verify");
    assert!(v.comparison.matches(), "{}", v.comparison);
    let (ok, verified): (Option<bool>, bool) = sqlx::query_as(
        "select verify_ok, verified_at is not null from fleet.backups where file_name = $1",
    )
    .bind(b.path.file_name().unwrap().to_string_lossy().as_ref())
    .fetch_one(&source.pool)
    .await
    .expect("backup row");
    assert_eq!((ok, verified), (Some(true), true));
    let left: i64 =
        sqlx::query_scalar("select count(*) from pg_database where datname like 'fleetd_verify_%'")
            .fetch_one(&source.pool)
            .await
            .expect("scratch");
    assert_eq!(left, 0, "the scratch database is dropped");

    let target = TestDb::empty().await;
    let c = verify::restore(
        RestoreRequest { dump: &b.path, url: target.url(), clean: false, bindir: None },
        &mut |_: &str| {},
    )
    .await
    .expect("restore");
    assert!(c.matches(), "{c}");
    assert_eq!(
        counts(&target.pool).await,
        b.manifest.tables,
        "identical counts in the restored database"
    );
    let newest = |pool: PgPool| async move {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "select max(gps_time) from fleet.positions",
        )
        .fetch_one(&pool)
        .await
        .expect("newest")
    };
    assert_eq!(newest(target.pool.clone()).await, newest(source.pool.clone()).await);
    assert!(b.manifest.newest_gps_time.is_some());
    let st = fleet_db::migrate::status(&target.pool).await.expect("status");
    assert!(st.is_current(), "the restored schema is current");

    // a second restore into the now populated target is refused without --clean, done with it
    let refused = verify::restore(
        RestoreRequest { dump: &b.path, url: target.url(), clean: false, bindir: None },
        &mut |_: &str| {},
    )
    .await
    .expect_err("target not empty");
    assert!(refused.to_string().contains("already holds fleetd's schema"), "{refused}");
    sqlx::query("delete from fleet.alarms").execute(&target.pool).await.expect("change the target");
    let c = verify::restore(
        RestoreRequest { dump: &b.path, url: target.url(), clean: true, bindir: None },
        &mut |_: &str| {},
    )
    .await
    .expect("clean restore");
    assert!(c.matches(), "{c}");
    assert_eq!(counts(&target.pool).await, b.manifest.tables);
}

#[tokio::test]
async fn a_damaged_backup_fails_verification_with_a_clear_error() {
    let source = TestDb::migrated().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = take(&source, dir.path()).await;
    let mut bytes = std::fs::read(&b.path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&b.path, bytes).expect("damage");
    let err = verify::verify(&source.pool, source.url(), &b.path, None, &mut |_: &str| {})
        .await
        .expect_err("damaged");
    assert!(err.to_string().contains("does not match its checksum"), "{err}");

    let missing = dir.path().join("nothing.dump");
    let err = verify::verify(&source.pool, source.url(), &missing, None, &mut |_: &str| {})
        .await
        .expect_err("missing");
    assert!(err.to_string().contains("is not a file"), "{err}");
}

#[tokio::test]
async fn a_missing_pg_dump_is_a_clear_error() {
    let source = TestDb::migrated().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = backup::take(
        BackupRequest {
            pool: &source.pool,
            url: source.url(),
            dir: dir.path(),
            bindir: Some(dir.path()),
            scheduled: false,
        },
        &mut |_: &str| {},
    )
    .await
    .expect_err("no pg_dump there");
    assert!(err.to_string().contains("pg_dump not found"), "{err}");
    assert!(err.to_string().contains("postgresql-client"), "{err}");
}

#[tokio::test]
async fn a_failed_clean_restore_puts_the_old_schemas_back() {
    let source = TestDb::migrated().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = take(&source, dir.path()).await;
    // a file with a valid checksum and manifest that pg_restore cannot read
    let broken = dir.path().join("fleetd-broken-20260101T000000Z.dump");
    std::fs::write(&broken, b"not a pg_dump archive").expect("write");
    let (sum, manifest) = backup::sidecars(&broken);
    let (_, good_manifest) = backup::sidecars(&b.path);
    std::fs::copy(good_manifest, manifest).expect("manifest");
    let hash = backup::sha256_file(&broken).expect("hash");
    std::fs::write(sum, format!("{hash}  fleetd-broken-20260101T000000Z.dump\n")).expect("sum");

    let target = TestDb::migrated().await;
    seed(&target.pool).await;
    let before = counts(&target.pool).await;
    let err = verify::restore(
        RestoreRequest { dump: &broken, url: target.url(), clean: true, bindir: None },
        &mut |_: &str| {},
    )
    .await
    .expect_err("pg_restore fails");
    assert!(err.to_string().contains("pg_restore failed"), "{err}");
    assert_eq!(counts(&target.pool).await, before, "the target is as it was");
    let aside: i64 = sqlx::query_scalar(
        "select count(*) from pg_namespace where nspname like '%before_restore%'",
    )
    .fetch_one(&target.pool)
    .await
    .expect("schemas");
    assert_eq!(aside, 0, "nothing left set aside");
}

#[tokio::test]
async fn backup_files_are_the_owners_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let source = TestDb::migrated().await;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("new").join("backups");
    // the most permissive umask: every file and directory would be world-readable
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let b = take(&source, &dir).await;
    nix::sys::stat::umask(old);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the backup directory");
    assert_eq!(mode(&parent.path().join("new")), 0o700, "its parents fleetd created");
    let files: Vec<_> =
        std::fs::read_dir(&dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 3, "dump, checksum and manifest: {files:?}");
    assert!(files.contains(&b.path));
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // a directory an earlier version filled with world-readable backups: they are tightened,
    // a file that is not a backup is left alone
    let earlier_dir = parent.path().join("earlier");
    std::fs::create_dir(&earlier_dir).expect("dir");
    let earlier = earlier_dir.join("fleetd-x-20260101T000000Z.dump");
    let notes = earlier_dir.join("notes.txt");
    for f in [&earlier, &earlier_dir.join("fleetd-x-20260101T000000Z.dump.sha256"), &notes] {
        std::fs::write(f, "x").expect("write");
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    take(&source, &earlier_dir).await;
    assert_eq!(mode(&earlier), 0o600);
    assert_eq!(mode(&earlier_dir.join("fleetd-x-20260101T000000Z.dump.sha256")), 0o600);
    assert_eq!(mode(&notes), 0o644, "not a backup");
}
