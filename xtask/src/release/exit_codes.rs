//! The installer's exit codes: the one table that `render` writes into the installer (its
//! `EX_*` constants, header comment and `--help`), into INSTALL.md and into docs/installer.md.

/// One exit code of `installer.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode {
    pub code: u8,
    /// The shell constant's suffix: `EX_<name>`; empty for success, which has no constant.
    pub name: &'static str,
    /// One line: the failure class, a colon, what causes it.
    pub meaning: &'static str,
}

impl ExitCode {
    /// The code right-aligned in two columns, as the installer's header and `--help` print it.
    #[must_use]
    pub fn padded(&self) -> String {
        format!("{:>2}", self.code)
    }
}

const fn code(code: u8, name: &'static str, meaning: &'static str) -> ExitCode {
    ExitCode {
        code,
        name,
        meaning,
    }
}

/// Every exit code, in order. Codes are never renumbered: scripts of admins test them.
pub const EXIT_CODES: [ExitCode; 17] = [
    code(0, "", "success"),
    code(
        1,
        "USAGE",
        "usage: unknown option, missing value, bad --engine/--bind/name, relative path",
    ),
    code(
        2,
        "PRIVILEGE",
        "privileges: not root and no passwordless sudo",
    ),
    code(
        3,
        "TOOLS",
        "tools: a required command is missing, or bash is older than 4.2",
    ),
    code(
        4,
        "ENGINE",
        "engine: docker/podman missing or its daemon unreachable",
    ),
    code(
        5,
        "ARCHIVE",
        "archive: missing, unreadable, or built for another platform",
    ),
    code(
        6,
        "INPUT",
        "input: no valid port, end of input, or a confirmation declined",
    ),
    code(
        7,
        "INTEGRITY",
        "integrity: the archive's sha256 does not match",
    ),
    code(
        8,
        "EXTRACT",
        "extract: the archive holds other than the expected regular files, or the build directory is not ours",
    ),
    code(
        9,
        "CONFIG",
        "config: unsafe owner/mode/link, cannot write the configuration, or the proxy rejects it",
    ),
    code(
        10,
        "DOCKERFILE",
        "dockerfile: EXPOSE/HEALTHCHECK ports cannot be rewritten and verified",
    ),
    code(11, "BUILD", "build: the image build failed"),
    code(
        12,
        "DEPLOY",
        "deploy: the container could not be created, swapped in, removed, or recovered",
    ),
    code(
        13,
        "HEALTH",
        "health: the container did not become healthy and answer /ping",
    ),
    code(
        14,
        "LOCK",
        "lock: another run for the same AI_PROXY_NAME holds the lock",
    ),
    code(
        15,
        "FOREIGN",
        "foreign: a container or image with our name lacks our ownership label",
    ),
    code(
        16,
        "TLS",
        "tls: the --domain name does not resolve to this host, host port 443 is taken, or a --tls-cert/--tls-key/--acme-ca-file file is missing or not PEM",
    ),
];

/// The code named `name` (`EX_<name>`); panics on a name not in the table, which the golden
/// test turns into a failing build.
#[must_use]
pub fn code_of(name: &str) -> u8 {
    EXIT_CODES
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no exit code named {name}"))
        .code
}

/// The table as Markdown, for INSTALL.md and docs/installer.md.
#[must_use]
pub fn markdown_table() -> String {
    use std::fmt::Write as _;
    let mut text = String::from("| Code | Meaning |\n| ---- | ------- |\n");
    for e in &EXIT_CODES {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "| {} | {} |", e.code, e.meaning);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_consecutive_and_named_once() {
        for (i, e) in EXIT_CODES.iter().enumerate() {
            assert_eq!(usize::from(e.code), i, "{e:?} out of order");
            assert_eq!(
                e.name.is_empty(),
                e.code == 0,
                "{e:?}: only success has no name"
            );
            assert!(
                !e.meaning.contains('|'),
                "{e:?}: a '|' would split the Markdown row"
            );
        }
        let mut names: Vec<_> = EXIT_CODES.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EXIT_CODES.len());
    }
}
