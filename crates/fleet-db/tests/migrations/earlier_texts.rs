//! Databases that applied an earlier text of a migration edited after it shipped upgrade to
//! exactly the schema a new installation gets; any other changed checksum still fails.

use std::path::{Path, PathBuf};

use fleet_db::migrate::{self, earlier_texts, MIGRATOR};
use fleet_db::DbError;
use fleet_testkit::TestDb;
use sha2::{Digest, Sha384};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::PgPool;

/// The earlier texts, as files named `<version>_<description>.<commit>.sql`.
fn fixtures() -> Vec<(i64, String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/migrations/earlier_texts");
    let mut all: Vec<(i64, String, PathBuf)> = std::fs::read_dir(&dir)
        .expect("earlier texts")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            let version = name[..4].parse().expect("a version prefix");
            let commit = name.rsplit('.').nth(1).expect("a commit suffix").to_owned();
            (version, commit, p)
        })
        .collect();
    all.sort();
    all
}

#[test]
fn each_listed_earlier_text_is_kept_and_each_kept_text_is_listed() {
    let mut kept: Vec<(i64, Vec<u8>, String)> = fixtures()
        .into_iter()
        .map(|(v, commit, p)| (v, Sha384::digest(std::fs::read(p).expect("text")).to_vec(), commit))
        .collect();
    let mut listed: Vec<(i64, Vec<u8>, String)> =
        earlier_texts().map(|(v, sum, commit)| (v, sum, commit.to_owned())).collect();
    kept.sort();
    listed.sort();
    assert_eq!(kept, listed);
    assert_eq!(kept.len(), 5);
}

/// Every table, column, constraint, index, view, function, trigger, comment and grant of the
/// schemas fleetd owns, one line each, in a stable order.
async fn schema_fingerprint(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar!(
        r#"
        select line as "line!" from (
            select format('relation %s %s %s %s', c.oid::regclass, c.relkind,
                          obj_description(c.oid, 'pg_class'), c.relacl) as line
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('fleet', 'reporting')
            union all
            select format('column %s %s %s %s %s %s %s', a.attrelid::regclass, a.attnum, a.attname,
                          format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum))
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where n.nspname in ('fleet', 'reporting') and a.attnum > 0 and not a.attisdropped
            union all
            select format('constraint %s %s %s', r.conrelid::regclass, r.conname,
                          pg_get_constraintdef(r.oid))
            from pg_constraint r join pg_namespace n on n.oid = r.connamespace
            where n.nspname in ('fleet', 'reporting')
            union all
            select format('index %s', pg_get_indexdef(i.indexrelid))
            from pg_index i join pg_class c on c.oid = i.indexrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('fleet', 'reporting')
            union all
            select format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid))
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('fleet', 'reporting') and c.relkind in ('v', 'm')
            union all
            select format('function %s %s %s', pg_get_functiondef(p.oid),
                          obj_description(p.oid, 'pg_proc'), p.proacl)
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname in ('fleet', 'reporting') and p.prokind in ('f', 'p')
            union all
            select format('trigger %s %s', t.tgname, pg_get_triggerdef(t.oid))
            from pg_trigger t join pg_class c on c.oid = t.tgrelid
            join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('fleet', 'reporting') and not t.tgisinternal
        ) all_objects
        order by 1
        "#
    )
    .fetch_all(pool)
    .await
    .expect("catalog")
}

/// A database that applied the current texts before `version` and then `text` as `version`,
/// as an installation that last ran a binary with that text was left.
async fn installed_with(version: i64, text: String) -> TestDb {
    let db = TestDb::empty().await;
    let current = MIGRATOR.iter().find(|m| m.version == version).expect("the edited migration");
    let mut migrations: Vec<Migration> =
        MIGRATOR.iter().filter(|m| m.version < version).cloned().collect();
    migrations.push(Migration::new(
        version,
        current.description.clone(),
        MigrationType::Simple,
        text.into(),
        false,
    ));
    let before = Migrator { migrations: migrations.into(), ..Migrator::DEFAULT };
    before.run(&db.pool).await.expect("migrations with the earlier text");
    db
}

#[tokio::test]
async fn a_database_that_applied_an_earlier_text_upgrades_to_the_current_schema() {
    let fresh = TestDb::migrated().await;
    let expected = schema_fingerprint(&fresh.pool).await;
    for (version, commit, path) in fixtures() {
        let db = installed_with(version, std::fs::read_to_string(&path).expect("text")).await;
        let before = migrate::status(&db.pool).await.expect("status");
        assert!(before.mismatched.is_empty(), "{version} ({commit}) reported as {before:?}");

        let applied = migrate::run(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("upgrading after {version} ({commit}): {e}"));
        assert_eq!(applied, MIGRATOR.iter().filter(|m| m.version > version).count());
        let after = migrate::status(&db.pool).await.expect("status");
        assert!(after.is_current(), "{version} ({commit}): {after:?}");
        let stored: Vec<u8> = sqlx::query_scalar!(
            "select checksum from _sqlx_migrations where version = $1",
            version
        )
        .fetch_one(&db.pool)
        .await
        .expect("history row");
        let current = MIGRATOR.iter().find(|m| m.version == version).expect("migration");
        assert_eq!(stored, current.checksum.as_ref(), "{version} ({commit})");

        let got = schema_fingerprint(&db.pool).await;
        let missing: Vec<&String> = expected.iter().filter(|l| !got.contains(l)).collect();
        let extra: Vec<&String> = got.iter().filter(|l| !expected.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "after {version} ({commit}) the schema differs from a new installation's:\n\
             missing {missing:#?}\nextra {extra:#?}"
        );
        // a second start finds nothing to repair or apply
        assert_eq!(migrate::run(&db.pool).await.expect("second run"), 0);
    }
}

#[tokio::test]
async fn an_unknown_checksum_still_fails_and_is_reported_as_mismatched() {
    let db = TestDb::migrated().await;
    let other_text = Sha384::digest(b"-- a text that never shipped").to_vec();
    sqlx::query!("update _sqlx_migrations set checksum = $1 where version = 14", other_text)
        .execute(&db.pool)
        .await
        .expect("checksum of an unknown text");
    let status = migrate::status(&db.pool).await.expect("status");
    assert_eq!(status.mismatched, [14]);
    match migrate::run(&db.pool).await {
        Err(DbError::Migrate(MigrateError::VersionMismatch(14))) => {}
        other => panic!("expected a version mismatch of 14, got {other:?}"),
    }
    let stored: Vec<u8> =
        sqlx::query_scalar!("select checksum from _sqlx_migrations where version = 14")
            .fetch_one(&db.pool)
            .await
            .expect("history row");
    assert_eq!(stored, other_text, "an unknown checksum is left as it was");
}
