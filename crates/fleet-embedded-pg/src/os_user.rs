//! Who runs the cluster: fleetd's own user, or `postgres` when fleetd is root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use crate::EmbeddedError;

/// The OS user the cluster's processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// True when fleetd is root and must switch to this user for PostgreSQL's commands.
    pub switch: bool,
}

impl RunAs {
    pub fn detect() -> Result<Self, EmbeddedError> {
        if !Uid::effective().is_root() {
            return Ok(Self {
                uid: Uid::effective().as_raw(),
                gid: Gid::effective().as_raw(),
                switch: false,
            });
        }
        match User::from_name("postgres") {
            Ok(Some(u)) => Ok(Self { uid: u.uid.as_raw(), gid: u.gid.as_raw(), switch: true }),
            _ => Err(EmbeddedError::NoUnprivilegedUser),
        }
    }

    /// Gives `path` to this user (a no-op when not switching users).
    pub fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        if !self.switch {
            return Ok(());
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).map_err(|cause| {
            EmbeddedError::Io { what: "cannot change the owner of", path: path.to_owned(), cause }
        })
    }

    /// Whether this user can reach `dir` (search permission on it and every ancestor).
    pub fn can_traverse(&self, dir: &Path) -> bool {
        if !self.switch {
            return true;
        }
        let mut cur: Option<PathBuf> = Some(dir.to_owned());
        while let Some(p) = cur {
            let Ok(meta) = std::fs::metadata(&p) else { return false };
            let mode = meta.mode();
            let ok = if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !ok {
                return false;
            }
            cur = p.parent().map(Path::to_owned);
        }
        true
    }
}
