//! `cargo xtask bench`: ai-proxy measured side by side with a direct connection to the mock
//! upstream and with nginx as a plain reverse proxy, on loopback, in one run.
//!
//! Method (docs/benchmarks.md explains it for readers): an nginx mock upstream answers fixed
//! JSON and SSE; wrk drives the same POST at each point against direct / nginx / ai-proxy back
//! to back, rounds repeated and medians reported; CPU per request comes from `/proc/PID/stat`
//! before and after each run; memory, cold start and sizes are measured separately.
mod build;
mod fixture;
mod holdmock;
mod host;
mod http;
mod instructions;
mod measure;
mod peers;
mod plan;
mod procfs;
mod report;
mod servers;
mod variants;
mod wrk;

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use xshell::Shell;

use fixture::Bench;
use plan::{Mode, Plan, Target};

#[derive(clap::Args)]
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
pub struct Args {
    /// A few seconds: fewer and shorter points, 50 streams instead of 1,000, 2,000 requests
    /// instead of 100,000, no image. Checks that every measurement can be taken, not timings.
    #[arg(long)]
    quick: bool,
    /// Measure this ai-proxy binary instead of building the release binary.
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Cargo features for the ai-proxy build (comma-separated), e.g. `mimalloc`.
    #[arg(long, value_name = "LIST")]
    features: Option<String>,
    /// Also build ai-proxy with musl's malloc, mimalloc and jemalloc and compare CPU per request
    /// at concurrency 64 and RSS side by side.
    #[arg(long)]
    compare_allocators: bool,
    /// Regenerate the results section of docs/benchmarks.md and docs/benchmarks.svg (with
    /// --peers: the peer table in docs/benchmarks.md).
    #[arg(long)]
    write_docs: bool,
    /// Seconds per load run (default 5; 1 with --quick).
    #[arg(long, value_name = "N")]
    seconds: Option<u32>,
    /// Rounds over every point; medians are reported (default 3; 1 with --quick).
    #[arg(long, value_name = "N")]
    rounds: Option<u32>,
    /// Instead of timings: user-space instructions per request through nginx and ai-proxy,
    /// counted by callgrind over a fixed sequential load (4,000 json, 1,000 stream requests).
    #[arg(long)]
    instructions: bool,
    /// With --instructions: measure ai-proxy only and fail when it exceeds the committed budget
    /// (xtask/bench/instructions-budget.toml) by more than 5%; `cargo xtask test` runs this.
    #[arg(long, requires = "instructions")]
    check_budget: bool,
    /// Instead of the full run: ai-proxy, nginx, `litellm` and the Portkey gateway side by side
    /// on the same mock and load (installs the pinned peers under target/bench/peers/).
    #[arg(long, conflicts_with = "instructions")]
    peers: bool,
    /// With --instructions: how many times to measure; the median is reported with the spread
    /// (default 3).
    #[arg(long, value_name = "N", requires = "instructions")]
    repeats: Option<u32>,
}

/// One wrk run against one target.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub round: u32,
    pub target: Target,
    pub mode: Mode,
    pub connections: u32,
    pub wrk: wrk::Outcome,
    /// CPU seconds the proxy (nginx: master and worker) used during the run; none for direct.
    pub cpu_s: Option<f64>,
    pub mock_cpu_s: f64,
    pub rss_kib: Option<u64>,
}

impl Sample {
    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts stay far below 2^53"
    )]
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        self.cpu_s.map(|s| s * 1e6 / self.wrk.requests as f64)
    }
}

/// Time to first SSE event for one target.
#[derive(Serialize)]
pub struct Ttfb {
    pub target: Target,
    pub samples_us: Vec<f64>,
}

/// The separate measurements of the proxy.
#[derive(Default, Serialize)]
pub struct Memory {
    pub idle_rss_kib: u64,
    pub nginx_idle_rss_kib: u64,
    pub streams: usize,
    pub streams_rss_kib: u64,
    pub warm_rss_kib: u64,
    pub leak_requests: u64,
    pub after_rss_kib: u64,
    /// Seconds without requests after the leak check's load, and the RSS then.
    pub idle_seconds: u64,
    pub after_idle_rss_kib: u64,
}

#[derive(Serialize)]
pub struct Sizes {
    pub binary_bytes: u64,
    pub image_bytes: Option<u64>,
    pub image_note: String,
}

/// One allocator build measured at concurrency 64.
#[derive(Serialize)]
pub struct AllocatorFigures {
    pub name: String,
    pub binary_bytes: u64,
    pub idle_rss_kib: u64,
    pub samples: Vec<Sample>,
    pub loaded_rss_kib: u64,
    pub streams_rss_kib: u64,
}

#[derive(Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_mib: u64,
    pub nginx: String,
    pub wrk: String,
    pub proxy_version: String,
    pub clk_tck: u64,
}

#[derive(Serialize)]
pub struct Results {
    pub command: String,
    pub plan: Plan,
    pub pinning: String,
    pub machine: Machine,
    #[serde(flatten)]
    pub measured: Measured,
}

/// Everything `Bench::measure` produced.
#[derive(Serialize)]
pub struct Measured {
    pub samples: Vec<Sample>,
    pub ttfb: Vec<Ttfb>,
    pub memory: Memory,
    pub cold_start_ms: Vec<f64>,
    pub sizes: Sizes,
    pub allocators: Vec<AllocatorFigures>,
    /// TLS and translated points next to their plain ones (c=64, json).
    pub variants: Vec<variants::VariantSample>,
}

impl Args {
    pub fn run(&self, sh: &Shell) -> Result<()> {
        run(sh, self)
    }
}

fn run(sh: &Shell, args: &Args) -> Result<()> {
    if args.write_docs && args.quick {
        bail!("--write-docs records full-run figures in docs/: drop --quick");
    }
    if args.instructions {
        crate::tools::ensure_for(sh, &["instructions"], crate::tools::For::Test)?;
        let bin = proxy_binary(sh, args)?;
        let repeats = args.repeats.unwrap_or(3).max(1);
        return instructions::run(&bin, args.check_budget, repeats);
    }
    crate::tools::ensure_for(sh, &["bench"], crate::tools::For::Test)?;
    if args.peers {
        let bin = proxy_binary(sh, args)?;
        return peers::run(sh, &bin, args.seconds.unwrap_or(5).max(1), args.write_docs);
    }
    let plan = Plan::new(args);
    let started = Instant::now();

    let bin = proxy_binary(sh, args)?;
    let allocator_bins = if args.compare_allocators {
        build::allocator_builds(sh)?
    } else {
        Vec::new()
    };

    let streams_needed = plan
        .streams
        .max(if args.compare_allocators { 1000 } else { 0 });
    host::raise_open_files_limit(4 * streams_needed as u64 + 1024)?;
    let clk_tck = procfs::clock_ticks_per_second()?;
    let (pins, pinning) = host::Pins::detect();

    let dir = std::env::temp_dir().join(format!("ai-proxy-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let outcome = Bench::setup(&dir, &plan, pins, clk_tck).and_then(|mut bench| {
        bench
            .measure(&bin, &allocator_bins)
            .map(|measured| (bench, measured))
    });
    let (bench, measured) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bench: logs of the servers are kept in {}", dir.display());
            return Err(e);
        }
    };
    drop(bench);
    let _ = fs::remove_dir_all(&dir);

    let machine = host::machine_info(&bin, clk_tck);
    let results = Results {
        command: command_line(args),
        plan,
        pinning,
        machine,
        measured,
    };
    report::write_all(&results, args.write_docs)?;
    println!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `--bin`, or the release binary with `--features`, built as `cargo xtask release` builds it
/// (stripped, fat LTO): callgrind counts a stripped binary's instructions as well, and the
/// count must be the shipped code's.
fn proxy_binary(sh: &Shell, args: &Args) -> Result<PathBuf> {
    if let Some(path) = &args.bin {
        return path
            .canonicalize()
            .with_context(|| format!("--bin {}: no such file", path.display()));
    }
    let extra = args
        .features
        .iter()
        .flat_map(|f| ["--features".to_owned(), f.clone()])
        .collect::<Vec<_>>();
    build::build_proxy(sh, &extra, "main")
}

fn command_line(args: &Args) -> String {
    let mut cmd = "cargo xtask bench".to_owned();
    if args.quick {
        cmd.push_str(" --quick");
    }
    if let Some(f) = &args.features {
        let _ = write!(cmd, " --features {f}");
    }
    if args.compare_allocators {
        cmd.push_str(" --compare-allocators");
    }
    if let Some(s) = args.seconds {
        let _ = write!(cmd, " --seconds {s}");
    }
    if let Some(r) = args.rounds {
        let _ = write!(cmd, " --rounds {r}");
    }
    if args.write_docs {
        cmd.push_str(" --write-docs");
    }
    cmd
}
