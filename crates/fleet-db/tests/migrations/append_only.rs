//! Landed migrations never change: `migrations.sha384` lists the SHA-384 (sqlx's checksum) of
//! every migration file, and a file that changed, disappeared or is missing from the list fails.

use std::collections::BTreeMap;
use std::path::Path;

use fleet_db::migrate::MIGRATOR;
use sha2::{Digest, Sha384};

const LIST: &str = "migrations.sha384";

/// How to list a new migration, printed with every problem about the list.
fn append_hint(file: &str) -> String {
    format!("append its line: (cd crates/fleet-db/migrations && sha384sum {file} >> ../{LIST})")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Problems with `files` (name -> contents) against `list` (sha384sum's output format).
fn check(list: &str, files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed = BTreeMap::new();
    for (n, line) in list.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match line.split_once("  ") {
            Some((sum, file)) if sum.len() == 96 => {
                if listed.insert(file.to_owned(), sum.to_owned()).is_some() {
                    problems.push(format!("{file} is listed twice in {LIST}"));
                }
            }
            _ => problems.push(format!("line {} of {LIST} is not `<sha384>  <file>`", n + 1)),
        }
    }
    for (file, sum) in &listed {
        match files.get(file) {
            None => problems.push(format!(
                "{file} is listed in {LIST} but gone: a landed migration is never removed"
            )),
            Some(text) if hex(&Sha384::digest(text)) != *sum => problems.push(format!(
                "{file} changed after it landed: databases that applied it would refuse to \
                 start. Restore it and put the change in a new migration"
            )),
            Some(_) => {}
        }
    }
    for file in files.keys().filter(|f| !listed.contains_key(*f)) {
        problems.push(format!("{file} is not in {LIST}: {}", append_hint(file)));
    }
    problems
}

fn migration_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("migrations directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().expect("file name").to_string_lossy().into_owned();
            let text = std::fs::read(&p).expect("migration file");
            (name, text)
        })
        .collect()
}

#[test]
fn every_migration_file_is_listed_with_its_checksum_and_none_changed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = std::fs::read_to_string(root.join(LIST)).expect("the checksum list");
    let files = migration_files(&root.join("migrations"));
    let problems = check(&list, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // the list holds what sqlx records: the checksum of each embedded migration
    let listed: Vec<(String, String)> = list
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(s, f)| (f.to_owned(), s.to_owned()))
        .collect();
    assert_eq!(listed.len(), MIGRATOR.iter().count());
    for m in MIGRATOR.iter() {
        let (file, sum) = listed
            .iter()
            .find(|(f, _)| {
                f.split('_').next().and_then(|v| v.parse::<i64>().ok()) == Some(m.version)
            })
            .unwrap_or_else(|| panic!("migration {} is not in {LIST}", m.version));
        assert_eq!(*sum, hex(&m.checksum), "{file}");
    }
}

#[test]
fn a_changed_a_removed_and_an_unlisted_migration_are_each_refused() {
    let files: BTreeMap<String, Vec<u8>> = [
        ("0001_a.sql", b"create table a ();".to_vec()),
        ("0002_b.sql", b"create table b ();".to_vec()),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_owned(), t))
    .collect();
    let line = |f: &str, t: &[u8]| format!("{}  {f}\n", hex(&Sha384::digest(t)));
    let good =
        line("0001_a.sql", b"create table a ();") + &line("0002_b.sql", b"create table b ();");
    assert!(check(&good, &files).is_empty(), "{:?}", check(&good, &files));

    let edited = line("0001_a.sql", b"create table a (id int);")
        + &line("0002_b.sql", b"create table b ();");
    let p = check(&edited, &files);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("0001_a.sql changed after it landed"), "{p:?}");

    let mut fewer = files.clone();
    fewer.remove("0002_b.sql");
    let p = check(&good, &fewer);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("0002_b.sql is listed") && p[0].contains("gone"), "{p:?}");

    let p = check(&line("0001_a.sql", b"create table a ();"), &files);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("0002_b.sql is not in migrations.sha384"), "{p:?}");
    assert!(p[0].contains("sha384sum 0002_b.sql >> ../migrations.sha384"), "{p:?}");

    let p = check("not a checksum line\n", &BTreeMap::new());
    assert_eq!(p, ["line 1 of migrations.sha384 is not `<sha384>  <file>`"]);
}
