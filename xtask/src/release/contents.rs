//! The release tarball's entries: the one list the archive builder, the tests and the rendered
//! installer all read, so the seven files are named in exactly one place.

/// Where an entry's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `ai-proxy` binary cargo built for the target.
    Binary,
    /// A template rendered by `cargo xtask release` (file name under `templates/`).
    Rendered,
    /// A file copied unchanged from `templates/`.
    Template,
    /// A file copied unchanged from the project root.
    Root,
}

/// One file of the tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub mode: u32,
    pub origin: Origin,
}

const fn entry(name: &'static str, mode: u32, origin: Origin) -> Entry {
    Entry { name, mode, origin }
}

/// Every file of `ai-proxy-release.tar.gz`, in the order the archive lists them after sorting.
pub const CONTENTS: [Entry; 7] = [
    entry("ai-proxy", 0o755, Origin::Binary),
    entry("Dockerfile", 0o644, Origin::Rendered),
    entry("INSTALL.md", 0o644, Origin::Rendered),
    entry(".env.example", 0o644, Origin::Template),
    entry("provider-config.yaml", 0o644, Origin::Template),
    entry("README.md", 0o644, Origin::Root),
    entry("LICENSE", 0o644, Origin::Root),
];
