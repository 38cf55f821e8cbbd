//! Finding the PostgreSQL server binaries: an explicit directory, `pg_config --bindir`, the
//! Debian layout `/usr/lib/postgresql/<major>/bin`, then `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::EmbeddedError;

/// The programs the embedded cluster needs.
const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_binaries(dir: &Path) -> bool {
    REQUIRED.iter().all(|b| dir.join(b).is_file())
}

/// Major version of the binaries in `dir`, from `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.20").
pub fn major_version(dir: &Path) -> Option<u32> {
    let out = Command::new(dir.join("pg_ctl")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().last()?;
    version.split(['.', 'b', 'r']).next()?.parse().ok()
}

/// The directory to run the cluster from. With `explicit`, only that directory is considered.
/// Otherwise a cluster made by major version `prefer_major` gets binaries of that version when
/// they are installed, and a new cluster gets the newest installed.
pub fn locate(
    explicit: Option<&Path>,
    prefer_major: Option<u32>,
) -> Result<PathBuf, EmbeddedError> {
    if let Some(dir) = explicit {
        return if has_server_binaries(dir) {
            Ok(dir.to_owned())
        } else {
            Err(EmbeddedError::NoBinaries { looked: vec![dir.to_owned()] })
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(major) = prefer_major {
        candidates.push(PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !dir.is_empty() {
            candidates.push(PathBuf::from(dir));
        }
    }
    candidates.extend(debian_bindirs());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .iter()
        .find(|d| has_server_binaries(d))
        .cloned()
        .ok_or(EmbeddedError::NoBinaries { looked: candidates })
}

/// The directory holding the PostgreSQL client tool `program` (pg_dump, pg_restore, psql) of
/// the newest major version found: `explicit` alone when given; otherwise
/// `/usr/lib/postgresql/<major>/bin` newest first, `pg_config --bindir`, then `PATH`. pg_dump
/// must be at least as new as the server, hence newest first. `None` when it is nowhere.
pub fn locate_client_tool(explicit: Option<&Path>, program: &str) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        let p = dir.join(program);
        return p.is_file().then_some(p);
    }
    let mut candidates: Vec<PathBuf> = debian_bindirs();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !dir.is_empty() {
            candidates.push(PathBuf::from(dir));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().map(|d| d.join(program)).find(|p| p.is_file())
}

/// Major version of a PostgreSQL program from its `--version` ("pg_dump (PostgreSQL) 15.20").
pub fn tool_major_version(program: &Path) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(2)?;
    version.split(['.', 'b', 'r']).next()?.parse().ok()
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn debian_bindirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut majors: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    majors.sort_by_key(|m| std::cmp::Reverse(m.0));
    majors.into_iter().map(|(_, p)| p).collect()
}
