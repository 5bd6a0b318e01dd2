//! Tells the xtask which rendered templates exist. askama compiles templates into the binary, so a
//! checkout missing one would otherwise not build at all, and no `cargo xtask` command (not even
//! `test`) would run; instead `cargo xtask release` names the missing file and what to do.

use std::path::Path;

/// Rendered templates the xtask still builds without (`templates/Dockerfile` is always needed);
/// the shipped-as-is files in `templates/` are only read at release time.
const RENDERED: [&str; 2] = ["INSTALL.md", "installer.sh"];

fn main() {
    // A directory here makes cargo rerun this script when any file below it changes or appears.
    println!("cargo::rerun-if-changed=../templates");
    println!(
        "cargo::rustc-check-cfg=cfg(missing_template, values(\"{}\"))",
        RENDERED.join("\", \"")
    );
    for name in RENDERED {
        if !Path::new("../templates").join(name).is_file() {
            println!("cargo::rustc-cfg=missing_template=\"{name}\"");
        }
    }
}
