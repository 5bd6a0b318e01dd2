//! The bench's output, written where it goes: the Markdown on stdout, `target/bench/` (raw
//! JSON, the chart) and, with `--write-docs`, docs/benchmarks.md's generated section and
//! docs/benchmarks.svg.

mod goals;
mod markdown;
mod stats;
mod svg;

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Results;
use crate::paths;
use goals::Check;
use stats::Point;

pub const DOCS_BEGIN: &str = "<!-- BEGIN cargo xtask bench --write-docs -->";
pub const DOCS_END: &str = "<!-- END cargo xtask bench --write-docs -->";

/// `target/bench/results.json`: every sample and measurement, then the medians and goals.
#[derive(Serialize)]
struct Raw<'a> {
    #[serde(flatten)]
    results: &'a Results,
    points: &'a [Point],
    checks: &'a [Check],
}

/// Prints the tables and writes target/bench/{results.json,benchmarks.svg}; with `write_docs`,
/// also docs/benchmarks.svg and the generated section of docs/benchmarks.md.
pub fn write_all(results: &Results, write_docs: bool) -> Result<()> {
    let points = stats::points(results);
    let checks = goals::checks(results, &points);
    let md = markdown::markdown(results, &points, &checks);
    println!("\n{md}");
    let out_dir = paths::target_dir().join("bench");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let json_path = out_dir.join("results.json");
    let raw = Raw {
        results,
        points: &points,
        checks: &checks,
    };
    let json = serde_json::to_string_pretty(&raw).context("serializing the results")?;
    fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let chart = svg::svg(results, &points);
    let svg_path = out_dir.join("benchmarks.svg");
    fs::write(&svg_path, &chart).with_context(|| format!("writing {}", svg_path.display()))?;
    println!(
        "bench: raw results in {}, chart in {}",
        json_path.display(),
        svg_path.display()
    );
    if write_docs {
        let docs_svg = paths::docs_dir().join("benchmarks.svg");
        fs::write(&docs_svg, &chart).with_context(|| format!("writing {}", docs_svg.display()))?;
        let doc_path = write_docs_section(DOCS_BEGIN, DOCS_END, &md)?;
        println!(
            "bench: updated {} and {}",
            doc_path.display(),
            docs_svg.display()
        );
    }
    Ok(())
}

/// Replaces the text between `begin` and `end` in docs/benchmarks.md with `section`.
pub fn write_docs_section(begin: &str, end: &str, section: &str) -> Result<PathBuf> {
    let doc_path = paths::docs_dir().join("benchmarks.md");
    let doc =
        fs::read_to_string(&doc_path).with_context(|| format!("reading {}", doc_path.display()))?;
    let updated = replace_section(&doc, begin, end, section)
        .with_context(|| format!("{} needs the lines {begin} and {end}", doc_path.display()))?;
    fs::write(&doc_path, updated).with_context(|| format!("writing {}", doc_path.display()))?;
    Ok(doc_path)
}

/// `doc` with the text between the markers replaced by `section`.
fn replace_section(doc: &str, begin: &str, end: &str, section: &str) -> Option<String> {
    let start = doc.find(begin)? + begin.len();
    let end = start + doc[start..].find(end)?;
    Some(format!(
        "{}\n\n{}\n{}",
        &doc[..start],
        section.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn replaces_only_the_generated_section() {
        let doc = format!("intro\n{DOCS_BEGIN}\nold\n{DOCS_END}\noutro\n");
        let new = replace_section(&doc, DOCS_BEGIN, DOCS_END, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("intro\n{DOCS_BEGIN}\n\nnew table\n{DOCS_END}\noutro\n")
        );
        assert!(replace_section("no markers", DOCS_BEGIN, DOCS_END, "x").is_none());
    }
}
