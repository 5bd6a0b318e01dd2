//! Small file-system helpers every task shares: short paths for log lines, scratch directories
//! under `target/`, and atomic writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::paths;

/// A path relative to the workspace root when it is inside it, for short log lines.
pub fn display_relative(path: &Path) -> String {
    path.strip_prefix(paths::project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fresh directory under the cargo target directory for tests and checks; never inside
/// `pkg/` or the source tree.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = paths::target_dir()
        .join("xtask-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory under target/");
    dir
}

/// Writes `bytes` to `path` with `mode` through a temporary file in the same directory, so a
/// reader never sees a half-written artifact.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().context("artifact path has no file name")?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("moving {} to {}", tmp.display(), path.display()))
}
