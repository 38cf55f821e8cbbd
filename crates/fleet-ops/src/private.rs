//! Files that hold every row of the database (backups, with password hashes and the push
//! token among them) or secrets: created owner-only — directories 0700, files 0600 — whatever
//! the process's umask, and the test the audit uses to find ones that are not.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directories fleetd creates for private files.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the private files fleetd writes.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents as 0700. An existing directory is left as it is (an
/// operator may have chosen its mode; the audit warns when others can read it).
pub fn create_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)?;
    // the umask can only take bits away from 0700; set it anyway, so no umask matters
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
}

/// Creates (or truncates) `path` as an empty 0600 file, for a tool that writes into it.
pub fn create_empty(path: &Path) -> std::io::Result<()> {
    write(path, b"")
}

/// Writes `bytes` to `path` as a 0600 file; an existing file is truncated and made 0600.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?;
    // `mode` applies only to a file this call creates
    f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes an existing file 0600 (one a tool created with its own mode).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
}

/// The permission bits of `path` when its group or others may use it, `None` when it is
/// private (or missing).
pub fn loose_mode(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Makes the backups an earlier fleetd left readable by others (`fleetd-*.dump` and their
/// checksum and manifest) owner-only; returns how many it changed. The directory itself keeps
/// the mode its operator chose (the audit warns about it).
pub fn tighten_backups(dir: &Path) -> std::io::Result<usize> {
    let mut changed = 0;
    for entry in fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("fleetd-")
            && [".dump", ".dump.sha256", ".dump.manifest.json"].iter().any(|e| name.ends_with(e));
        if ours && path.is_file() && loose_mode(&path).is_some() {
            restrict(&path)?;
            changed += 1;
        }
    }
    Ok(changed)
}
