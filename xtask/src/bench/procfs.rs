//! What the kernel says about a process: CPU time from `/proc/PID/stat`, RSS from
//! `/proc/PID/status`, children from every `/proc/*/stat`.

use std::fs;

use anyhow::{Context, Result, bail};

/// Clock ticks per second for `/proc/PID/stat` times (`getconf CLK_TCK`, almost always 100).
pub fn clock_ticks_per_second() -> Result<u64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running `getconf CLK_TCK` (part of libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ticks: u64 = text
        .trim()
        .parse()
        .with_context(|| format!("parsing `getconf CLK_TCK` output {text:?}"))?;
    if ticks == 0 {
        bail!("`getconf CLK_TCK` returned 0");
    }
    Ok(ticks)
}

/// The fields of `/proc/PID/stat` after the `(comm)` field, which may itself hold spaces.
fn stat_fields(pid: u32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/stat");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let rest = text
        .rsplit_once(')')
        .with_context(|| format!("{path} has no `(comm)` field: {text:?}"))?
        .1;
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// User plus system CPU time of the whole process (every thread, live or exited), in ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let fields = stat_fields(pid)?;
    // After `(comm)`: state is field 3 of stat(5), so utime (14) and stime (15) sit at 11 and 12.
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("/proc/{pid}/stat is too short"))?
            .parse()
            .with_context(|| format!("/proc/{pid}/stat field {} is not a number", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Resident set size in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .with_context(|| format!("{path} has no VmRSS line (is the process a zombie?)"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing VmRSS {line:?} in {path}"))
}

/// The direct children of `pid` (nginx's workers under its master).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            // A process may exit between listing and reading: skip it.
            stat_fields(child)
                .ok()
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}
