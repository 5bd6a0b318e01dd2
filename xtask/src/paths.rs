//! Where things live in the workspace, as named functions so no task spells a path twice.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `pkg/`: the release output for the default target.
pub fn pkg_dir() -> PathBuf {
    project_root().join("pkg")
}

/// `templates/`: every file that ships in the tarball or is rendered into it.
pub fn templates_dir() -> PathBuf {
    project_root().join("templates")
}

/// `docs/`.
pub fn docs_dir() -> PathBuf {
    project_root().join("docs")
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
}

/// The cargo binary that runs us, so nested builds use the same toolchain.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
