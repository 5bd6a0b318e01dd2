//! The module maps in docs/architecture.md match the source trees: every `.rs` file is named
//! once with its job, and every named file exists.

use std::collections::BTreeSet;
use std::path::Path;

/// The trees whose map is checked, each under its `## Module map: <tree>` heading.
const MAPPED_TREES: &[&str] = &["proxy/src", "xtask/src"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The `.rs` files under `tree`, as paths from the workspace root.
fn files(tree: &str) -> BTreeSet<String> {
    walkdir::WalkDir::new(root().join(tree))
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().strip_prefix(root()).unwrap().display().to_string())
        .collect()
}

/// The files a map section names: its lines ``- `path` — job``, with an empty job refused.
fn mapped(doc: &str, tree: &str) -> Vec<String> {
    let heading = format!("## Module map: {tree}");
    let section = format!("\n{doc}")
        .split("\n## ")
        .find(|s| s.starts_with(heading.trim_start_matches("## ")))
        .unwrap_or_else(|| panic!("docs/architecture.md has no `{heading}` section"))
        .to_owned();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .map(|l| {
            let (path, job) = l.split_once('`').unwrap();
            let job = job.trim_start_matches([' ', '—']).trim();
            assert!(!job.is_empty(), "{path}: the map line says no job");
            path.to_owned()
        })
        .collect()
}

/// What is wrong with one tree's map: files named twice, named but absent, present but unnamed.
fn problems(doc: &str, tree: &str, on_disk: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for path in mapped(doc, tree) {
        if !on_disk.contains(&path) {
            problems.push(format!("{path} is in the map but does not exist"));
        }
        if !seen.insert(path.clone()) {
            problems.push(format!("{path} is named twice"));
        }
    }
    for path in on_disk.iter().filter(|p| !seen.contains(*p)) {
        problems.push(format!("{path} is missing from the map"));
    }
    problems
}

#[test]
fn module_map_names_every_source_file_and_nothing_else() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let problems: Vec<String> = MAPPED_TREES
        .iter()
        .flat_map(|tree| problems(&doc, tree, &files(tree)))
        .collect();
    assert!(
        problems.is_empty(),
        "docs/architecture.md's module maps are out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_check_names_a_missing_an_extra_and_a_repeated_file() {
    let doc = "intro\n\n## Module map: t\n\n- `t/a.rs` — a\n- `t/gone.rs` — old\n- `t/a.rs` — again\n\n## Next\n- `t/b.rs` — elsewhere\n";
    let on_disk: BTreeSet<String> = ["t/a.rs", "t/b.rs"].map(String::from).into();
    assert_eq!(
        problems(doc, "t", &on_disk),
        [
            "t/gone.rs is in the map but does not exist",
            "t/a.rs is named twice",
            "t/b.rs is missing from the map"
        ]
    );
}
