//! The rendered templates as typed askama structs: a template naming a variable that is not a
//! field fails to compile, and `escape = "none"` keeps shell and Dockerfile text byte for byte
//! (askama would HTML-escape `&`, `<` and quotes for some file extensions).
//!
//! Syntax (see `xtask/askama.toml`): `{= expr =}`, `{% block %}`, `{~# comment #~}`.

use anyhow::{Context, Result};
use askama::Template;

use super::contents::{CONTENTS, Entry};
use super::exit_codes::{self, EXIT_CODES, ExitCode};

/// The host port published with automatic certificates: ACME CAs validate TLS-ALPN-01 there only.
pub const HTTPS_PORT: u16 = 443;
/// Where the installer mounts the ACME cache in the container (and sets `TLS_CACHE_DIR` to).
pub const TLS_MOUNT: &str = "/app/tls";
/// The installer's default wait for health with automatic certificates: the Dockerfile's start
/// period (room for the first order) plus its retries, with a margin.
pub const ACME_HEALTH_TIMEOUT_SECS: u16 = 180;
/// The Dockerfile HEALTHCHECK's start period: failures in it do not count, so a first ACME order
/// (pebble: under 1 s; Let's Encrypt: seconds, with a retry a minute later) fits.
pub const HEALTH_START_PERIOD_SECS: u16 = 90;

/// The values every template may use.
#[derive(Debug, Clone)]
pub struct Params {
    pub version: String,
    pub target: String,
    pub port: u16,
    pub uid: u32,
    pub gid: u32,
    pub source_url: String,
}

#[derive(Template)]
#[template(path = "Dockerfile", escape = "none")]
struct Dockerfile<'a> {
    version: &'a str,
    target: &'a str,
    port: u16,
    uid: u32,
    gid: u32,
    source_url: &'a str,
    start_period: u16,
    tls_mount: &'a str,
}

#[derive(Template)]
#[template(path = "INSTALL.md", escape = "none")]
struct InstallMd<'a> {
    version: &'a str,
    port: u16,
    uid: u32,
    gid: u32,
    exit_code_table: &'a str,
    https_port: u16,
    tls_mount: &'a str,
}

#[derive(Template)]
#[template(path = "installer.sh", escape = "none")]
struct Installer<'a> {
    version: &'a str,
    target: &'a str,
    port: u16,
    uid: u32,
    gid: u32,
    archive_name: &'a str,
    archive_sha256: &'a str,
    /// The tarball's entries: the installer extracts exactly these, with these modes.
    files: &'a [Entry],
    exit_codes: &'a [ExitCode],
    /// The code of the bash-version refusal, which runs before the `EX_*` constants exist.
    ex_tools: u8,
    https_port: u16,
    tls_mount: &'a str,
    acme_health_timeout: u16,
}

/// `templates/Dockerfile`, rendered.
pub fn dockerfile(p: &Params) -> Result<String> {
    let template = Dockerfile {
        version: &p.version,
        target: &p.target,
        port: p.port,
        uid: p.uid,
        gid: p.gid,
        source_url: &p.source_url,
        start_period: HEALTH_START_PERIOD_SECS,
        tls_mount: TLS_MOUNT,
    };
    render(&template, "Dockerfile")
}

/// `templates/INSTALL.md`, rendered.
pub fn install_md(p: &Params) -> Result<String> {
    let table = exit_codes::markdown_table();
    let template = InstallMd {
        version: &p.version,
        port: p.port,
        uid: p.uid,
        gid: p.gid,
        exit_code_table: &table,
        https_port: HTTPS_PORT,
        tls_mount: TLS_MOUNT,
    };
    render(&template, "INSTALL.md")
}

/// `templates/installer.sh`, rendered with the digest of the tarball it installs.
pub fn installer(p: &Params, archive_name: &str, archive_sha256: &str) -> Result<String> {
    let template = Installer {
        version: &p.version,
        target: &p.target,
        port: p.port,
        uid: p.uid,
        gid: p.gid,
        archive_name,
        archive_sha256,
        files: &CONTENTS,
        exit_codes: &EXIT_CODES,
        ex_tools: exit_codes::code_of("TOOLS"),
        https_port: HTTPS_PORT,
        tls_mount: TLS_MOUNT,
        acme_health_timeout: ACME_HEALTH_TIMEOUT_SECS,
    };
    render(&template, "installer.sh")
}

fn render(template: &impl Template, name: &str) -> Result<String> {
    let mut text = template
        .render()
        .with_context(|| format!("rendering templates/{name}"))?;
    // askama drops the template's final newline, as Jinja does; text files end with one.
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
pub(crate) mod tests {
    //! Golden files: each template rendered with fixed inputs must equal `xtask/tests/golden/<file>`.
    //! `UPDATE_GOLDEN=1 cargo test -p xtask` rewrites them after an intended template change.

    use std::path::PathBuf;

    use super::*;

    /// The fixed inputs of every golden file.
    pub(crate) fn fixed() -> Params {
        Params {
            version: "1.2.3".into(),
            target: "x86_64-unknown-linux-musl".into(),
            port: 8080,
            uid: 1001,
            gid: 1001,
            source_url: "https://github.com/ai-proxy/ai-proxy".into(),
        }
    }

    /// The rendered text, or a panic showing the whole error chain (e.g. a missing template).
    fn ok(rendered: Result<String>) -> String {
        rendered.unwrap_or_else(|e| panic!("{e:#}"))
    }

    const FIXED_SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Compares `rendered` with `xtask/tests/golden/<name>` (`name` may have a directory);
    /// `UPDATE_GOLDEN=1` rewrites it instead.
    pub(crate) fn check_golden(name: &str, rendered: &str) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
            .iter()
            .collect();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, rendered).unwrap();
            return;
        }
        let Ok(golden) = std::fs::read_to_string(&path) else {
            panic!(
                "{} does not exist: create it with\n    UPDATE_GOLDEN=1 cargo test -p xtask\nand \
                 review it",
                path.display()
            );
        };
        if golden != rendered {
            // The first differing line, or the end of the shorter text.
            let line = golden
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| golden.lines().count().min(rendered.lines().count()));
            panic!(
                "{} is stale: templates/{name} now renders differently from line {}.\nIf the change \
                 is intended, refresh the golden files with:\n    UPDATE_GOLDEN=1 cargo test -p \
                 xtask\nand review the diff (`git diff xtask/tests/golden`).",
                path.display(),
                line + 1
            );
        }
    }

    const DOCS_TABLE_START: &str = "<!-- exit codes: rendered from xtask/src/release/exit_codes.rs; refresh with UPDATE_GOLDEN=1 cargo test -p xtask -->\n";
    const DOCS_TABLE_END: &str = "<!-- end of exit codes -->\n";

    /// docs/installer.md carries the exit-code table rendered from `EXIT_CODES` between two
    /// markers; `UPDATE_GOLDEN=1` rewrites that region, as it does the golden files.
    #[test]
    fn docs_installer_exit_codes_are_rendered() {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "docs", "installer.md"]
            .iter()
            .collect();
        let docs = std::fs::read_to_string(&path).unwrap();
        let (Some(start), Some(end)) = (docs.find(DOCS_TABLE_START), docs.find(DOCS_TABLE_END))
        else {
            panic!(
                "{} lacks the exit-code markers {DOCS_TABLE_START:?} … {DOCS_TABLE_END:?}",
                path.display()
            );
        };
        let from = start + DOCS_TABLE_START.len();
        let rendered = exit_codes::markdown_table();
        if docs[from..end] == rendered {
            return;
        }
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let updated = format!("{}{rendered}{}", &docs[..from], &docs[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "{}'s exit-code table is stale: refresh it with\n    UPDATE_GOLDEN=1 cargo test -p xtask",
            path.display()
        );
    }

    #[test]
    fn installer_lists_the_tarball_entries_and_every_exit_code() {
        let text = ok(installer(&fixed(), "ai-proxy-release.tar.gz", FIXED_SHA256));
        let names: Vec<&str> = CONTENTS.iter().map(|e| e.name).collect();
        assert!(text.contains(&format!("readonly EXPECTED_FILES=({})\n", names.join(" "))));
        for e in EXIT_CODES.iter().filter(|e| e.code != 0) {
            assert!(text.contains(&format!("readonly EX_{}={}\n", e.name, e.code)));
            // Header comment and --help.
            assert_eq!(
                text.matches(&format!("{}  {}\n", e.padded(), e.meaning))
                    .count(),
                2,
                "{e:?}"
            );
        }
    }

    #[test]
    fn dockerfile_matches_golden() {
        check_golden("Dockerfile", &ok(dockerfile(&fixed())));
    }

    #[test]
    fn install_md_matches_golden() {
        check_golden("INSTALL.md", &ok(install_md(&fixed())));
    }

    #[test]
    fn installer_matches_golden() {
        check_golden(
            "installer.sh",
            &ok(installer(&fixed(), "ai-proxy-release.tar.gz", FIXED_SHA256)),
        );
    }

    #[test]
    fn installer_embeds_the_archive_digest_and_shell_text_is_not_escaped() {
        let text = ok(installer(&fixed(), "ai-proxy-release.tar.gz", FIXED_SHA256));
        assert!(text.contains(FIXED_SHA256));
        for escaped in ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;"] {
            assert!(
                !text.contains(escaped),
                "installer.sh contains HTML escape {escaped}"
            );
        }
    }

    #[test]
    fn dockerfile_carries_the_contract_lines() {
        let text = ok(dockerfile(&fixed()));
        let lines: Vec<&str> = text.lines().collect();
        let count = |line: &str| lines.iter().filter(|l| **l == line).count();
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("FROM ")).count(),
            1,
            "one stage"
        );
        assert_eq!(count("FROM scratch"), 1);
        assert_eq!(count("EXPOSE 8080"), 1);
        assert_eq!(
            count(
                r#"HEALTHCHECK --interval=5s --timeout=3s --start-period=90s --retries=3 CMD ["/app/ai-proxy", "healthcheck", "--port", "8080"]"#
            ),
            1
        );
        assert_eq!(count(r#"ENTRYPOINT ["/app/ai-proxy"]"#), 1);
        assert_eq!(count(r#"CMD ["serve", "--config-dir", "/app/config"]"#), 1);
        assert_eq!(count("USER 1001:1001"), 1);
        assert_eq!(count(r#"RUN ["/app/ai-proxy", "--version"]"#), 1);
        assert!(text.contains("generated by `cargo xtask release`"));
        assert!(text.contains(r#"org.opencontainers.image.version="1.2.3""#));
    }
}
