//! Modes of the files on this machine that hold secrets or every row of the database: the
//! backup directory and its dumps (password hashes, the push token, every position), the
//! embedded cluster's server log, and the `.env` file fleetd reads settings from.

use std::path::Path;

use crate::audit::{AuditContext, Check};
use crate::private::loose_mode;
use crate::OpsError;

/// Most files named one by one; the rest are counted.
const LISTED: usize = 10;

pub(super) async fn file_modes(ctx: &AuditContext) -> Result<Check, OpsError> {
    let mut loose: Vec<String> = Vec::new();
    let mut checked = 0usize;
    let mut look = |path: &Path, loose: &mut Vec<String>| {
        checked += 1;
        if let Some(mode) = loose_mode(path) {
            loose.push(format!("{} is {mode:03o}: group or others can read it", path.display()));
        }
    };
    if let Some(dir) = ctx.files.backup_dir.as_deref().filter(|d| d.is_dir()) {
        look(dir, &mut loose);
        let entries = std::fs::read_dir(dir).map_err(crate::io_err("reading", dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                look(&path, &mut loose);
            }
        }
    }
    for path in [ctx.files.embedded_log.as_deref(), ctx.files.env_file.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| p.is_file())
    {
        look(path, &mut loose);
    }
    if loose.is_empty() {
        return Ok(Check::from_findings(
            "file_modes",
            format!("{checked} private files and directories are the owner's only"),
            Vec::new(),
            Vec::new(),
        ));
    }
    let summary = format!(
        "{} of {checked} files or directories with backups or secrets are readable by others (chmod 600 files, 700 directories)",
        loose.len()
    );
    let more = loose.len().saturating_sub(LISTED);
    loose.truncate(LISTED);
    if more > 0 {
        loose.push(format!("… and {more} more"));
    }
    Ok(Check::from_findings("file_modes", summary, Vec::new(), loose))
}
