//! The machine the bench runs on: which cores run what, the open-files limit, what it is
//! (CPU, kernel, memory, tool versions) and the size of a scratch image with the binary.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use super::{Machine, Sizes};

/// Which cores run what (`taskset -c`), when pinning is possible.
#[derive(Clone, Copy)]
pub struct Pins {
    pub load: Option<usize>,
    pub mock: Option<usize>,
    pub proxies: Option<usize>,
}

impl Pins {
    pub fn detect() -> (Self, String) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let taskset = crate::tools::have("taskset");
        let none = Self {
            load: None,
            mock: None,
            proxies: None,
        };
        if !taskset {
            return (
                none,
                "not pinned: taskset (util-linux) is missing".to_owned(),
            );
        }
        match cores {
            0 | 1 => (none, "not pinned: only one core".to_owned()),
            2 => (
                Self {
                    load: Some(0),
                    mock: Some(1),
                    proxies: Some(1),
                },
                "taskset: wrk and probes on CPU 0; mock, nginx and ai-proxy share CPU 1".to_owned(),
            ),
            _ => (
                Self {
                    load: Some(0),
                    mock: Some(1),
                    proxies: Some(2),
                },
                "taskset: wrk on CPU 0, mock on CPU 1, nginx and ai-proxy on CPU 2".to_owned(),
            ),
        }
    }

    /// wrk threads: one per core it may use.
    pub fn wrk_threads(self, connections: u32) -> u32 {
        if self.load.is_some() {
            1
        } else {
            connections.min(2)
        }
    }
}

/// Raises this process's soft open-files limit (children inherit it) for the open-streams test.
pub fn raise_open_files_limit(needed: u64) -> Result<()> {
    let limits = fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("/proc/self/limits has no `Max open files` line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let soft: u64 = words.get(3).and_then(|w| w.parse().ok()).unwrap_or(0);
    let hard: u64 = words
        .get(4)
        .and_then(|w| w.parse().ok())
        .unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        bail!(
            "the bench needs {needed} open files but the hard limit is {hard}: \
             raise it (e.g. `ulimit -Hn {needed}` as root, or LimitNOFILE=)"
        );
    }
    let pid = std::process::id().to_string();
    let status = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={needed}:{hard}")])
        .status()
        .context("running prlimit (util-linux) to raise the open-files limit")?;
    ensure!(
        status.success(),
        "prlimit could not raise the open-files limit to {needed}"
    );
    Ok(())
}

/// Size of a `FROM scratch` image holding only the binary, when docker is there.
pub fn image_size(bin: &Path, wanted: bool) -> Sizes {
    let mut sizes = Sizes {
        binary_bytes: 0,
        image_bytes: None,
        image_note: String::new(),
    };
    if !wanted {
        "not measured with --quick".clone_into(&mut sizes.image_note);
        return sizes;
    }
    match try_image_size(bin) {
        Ok(bytes) => sizes.image_bytes = Some(bytes),
        Err(e) => sizes.image_note = format!("not measured: {e:#}"),
    }
    sizes
}

fn try_image_size(bin: &Path) -> Result<u64> {
    let sh = Shell::new()?;
    cmd!(sh, "docker info")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .context("no running docker engine")?;
    let ctx = std::env::temp_dir().join(format!("ai-proxy-bench-image-{}", std::process::id()));
    fs::create_dir_all(&ctx)?;
    fs::copy(bin, ctx.join("ai-proxy"))?;
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY ai-proxy /app/ai-proxy\nENTRYPOINT [\"/app/ai-proxy\"]\n",
    )?;
    let tag = format!("ai-proxy-bench:{}", std::process::id());
    let built = cmd!(sh, "docker build -q -t {tag} {ctx}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    let _ = fs::remove_dir_all(&ctx);
    built.context("docker build of a FROM scratch image with the binary failed")?;
    let format = "{{.Size}}";
    let size = cmd!(sh, "docker image inspect --format {format} {tag}")
        .quiet()
        .read();
    let _ = cmd!(sh, "docker rmi -f {tag}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    size?.trim().parse().context("parsing docker's image size")
}

pub fn machine_info(bin: &Path, clk_tck: u64) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_mib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    let first_line = |program: &Path, arg: &str| -> String {
        Command::new(program).arg(arg).output().map_or_else(
            |_| "unknown".to_owned(),
            |o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("unknown")
                    .trim()
                    .to_owned()
            },
        )
    };
    Machine {
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        cpu_model,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned()),
        memory_mib,
        nginx: first_line(Path::new("nginx"), "-v"),
        wrk: first_line(Path::new("wrk"), "-v"),
        proxy_version: first_line(bin, "--version"),
        clk_tck,
    }
}
