//! `cargo xtask bench`: ai-proxy measured side by side with a direct connection to the mock
//! upstream and with nginx as a plain reverse proxy, on loopback, in one run.
//!
//! Method (docs/benchmarks.md explains it for readers): an nginx mock upstream answers fixed
//! JSON and SSE; wrk drives the same POST at each point against direct / nginx / ai-proxy back
//! to back, rounds repeated and medians reported; CPU per request comes from `/proc/PID/stat`
//! before and after each run; memory, cold start and sizes are measured separately.

mod holdmock;
mod http;
mod json;
mod procfs;
mod report;
mod servers;
mod wrk;

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::paths;
use crate::release::binary;
use holdmock::HoldMock;
use servers::Server;

/// Long enough for a valid bench token (the proxy refuses tokens under 16 characters).
const TOKEN: &str = "bench-token-0123456789abcdef";
const REQUEST: &str = include_str!("../bench/request.json");

#[derive(clap::Args)]
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
    /// Regenerate the results section of docs/benchmarks.md and docs/benchmarks.svg.
    #[arg(long)]
    write_docs: bool,
    /// Seconds per load run (default 5; 1 with --quick).
    #[arg(long, value_name = "N")]
    seconds: Option<u32>,
    /// Rounds over every point; medians are reported (default 3; 1 with --quick).
    #[arg(long, value_name = "N")]
    rounds: Option<u32>,
}

/// How much to measure.
pub struct Plan {
    pub quick: bool,
    pub seconds: u32,
    pub rounds: u32,
    pub concurrency: Vec<u32>,
    pub warmup: bool,
    pub ttfb_samples: usize,
    pub streams: usize,
    pub leak_requests: u64,
    pub cold_starts: usize,
    pub image: bool,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let q = args.quick;
        Self {
            quick: q,
            seconds: args.seconds.unwrap_or(if q { 1 } else { 5 }).max(1),
            rounds: args.rounds.unwrap_or(if q { 1 } else { 3 }).max(1),
            concurrency: if q { vec![1, 64] } else { vec![1, 16, 64] },
            warmup: !q,
            ttfb_samples: if q { 20 } else { 300 },
            streams: if q { 50 } else { 1000 },
            leak_requests: if q { 2_000 } else { 100_000 },
            cold_starts: if q { 3 } else { 9 },
            image: !q,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    Direct,
    Nginx,
    Proxy,
}

impl Target {
    pub const ALL: [Self; 3] = [Self::Direct, Self::Nginx, Self::Proxy];

    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Nginx => "nginx",
            Self::Proxy => "ai-proxy",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Json,
    Stream,
}

impl Mode {
    pub const ALL: [Self; 2] = [Self::Json, Self::Stream];

    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Stream => "stream",
        }
    }

    fn model(self) -> &'static str {
        match self {
            Self::Json => "bench-json",
            Self::Stream => "bench-stream",
        }
    }

    /// The mock's path for this mode (the proxy always takes `/v1/chat/completions`).
    fn mock_path(self) -> &'static str {
        match self {
            Self::Json => "/v1/chat/completions",
            Self::Stream => "/stream/v1/chat/completions",
        }
    }
}

/// The request body for `model`, streaming or not; the same bytes go to every target.
fn request_body(model: &str, stream: bool) -> String {
    REQUEST
        .trim_end()
        .replace("@MODEL@", model)
        .replace("@STREAM@", if stream { "true" } else { "false" })
}

/// Which cores run what (`taskset -c`), when pinning is possible.
#[derive(Clone, Copy)]
pub struct Pins {
    pub load: Option<usize>,
    pub mock: Option<usize>,
    pub proxies: Option<usize>,
}

impl Pins {
    fn detect() -> (Self, String) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let taskset = Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
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
    fn wrk_threads(self, connections: u32) -> u32 {
        if self.load.is_some() {
            1
        } else {
            connections.min(2)
        }
    }
}

/// One wrk run against one target.
#[derive(Clone, Debug)]
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
pub struct Ttfb {
    pub target: Target,
    pub samples_us: Vec<f64>,
}

/// The separate measurements of the proxy.
#[derive(Default)]
pub struct Memory {
    pub idle_rss_kib: u64,
    pub nginx_idle_rss_kib: u64,
    pub streams: usize,
    pub streams_rss_kib: u64,
    pub warm_rss_kib: u64,
    pub leak_requests: u64,
    pub after_rss_kib: u64,
}

pub struct Sizes {
    pub binary_bytes: u64,
    pub image_bytes: Option<u64>,
    pub image_note: String,
}

/// One allocator build measured at concurrency 64.
pub struct AllocatorFigures {
    pub name: String,
    pub binary_bytes: u64,
    pub idle_rss_kib: u64,
    pub samples: Vec<Sample>,
    pub loaded_rss_kib: u64,
    pub streams_rss_kib: u64,
}

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

pub struct Results {
    pub command: String,
    pub plan: Plan,
    pub pinning: String,
    pub machine: Machine,
    pub samples: Vec<Sample>,
    pub ttfb: Vec<Ttfb>,
    pub memory: Memory,
    pub cold_start_ms: Vec<f64>,
    pub sizes: Sizes,
    pub allocators: Vec<AllocatorFigures>,
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
    crate::tools::ensure_for(sh, &["bench"], crate::tools::For::Test)?;
    let plan = Plan::new(args);
    let started = Instant::now();

    let bin = if let Some(path) = &args.bin {
        path.canonicalize()
            .with_context(|| format!("--bin {}: no such file", path.display()))?
    } else {
        let extra = args
            .features
            .iter()
            .flat_map(|f| ["--features".to_owned(), f.clone()])
            .collect::<Vec<_>>();
        build_proxy(sh, &extra, "main")?
    };
    let allocator_bins = if args.compare_allocators {
        allocator_builds(sh)?
    } else {
        Vec::new()
    };

    let streams_needed = plan
        .streams
        .max(if args.compare_allocators { 1000 } else { 0 });
    raise_open_files_limit(4 * streams_needed as u64 + 1024)?;
    let clk_tck = procfs::clock_ticks_per_second()?;
    let (pins, pinning) = Pins::detect();

    let dir = std::env::temp_dir().join(format!("ai-proxy-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let outcome = Bench::setup(&dir, &plan, pins, clk_tck).and_then(|mut bench| {
        bench
            .measure(&bin, &allocator_bins)
            .map(|parts| (bench, parts))
    });
    let (bench, parts) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bench: logs of the servers are kept in {}", dir.display());
            return Err(e);
        }
    };
    drop(bench);
    let _ = fs::remove_dir_all(&dir);

    let machine = machine_info(&bin, clk_tck);
    let results = Results {
        command: command_line(args),
        plan,
        pinning,
        machine,
        samples: parts.samples,
        ttfb: parts.ttfb,
        memory: parts.memory,
        cold_start_ms: parts.cold_start_ms,
        sizes: parts.sizes,
        allocators: parts.allocators,
    };
    report::write_all(&results, args.write_docs)?;
    println!("bench: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
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

/// Builds the release binary as `cargo xtask release` does (same flags, so after a release the
/// default build is a no-op) and copies it to `target/bench/bin/ai-proxy-<label>`, so later
/// builds with other features cannot replace what is being measured.
fn build_proxy(sh: &Shell, extra: &[String], label: &str) -> Result<PathBuf> {
    let target = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let build = |quiet: bool| {
        let _quiet = quiet.then(|| sh.push_env("CARGO_TERM_QUIET", "true"));
        binary::build(sh, binary::Builder::Cargo, &target, extra)
            .with_context(|| format!("building the ai-proxy release binary ({label})"))
    };
    let aside_dir = paths::target_dir().join("bench").join("bin");
    fs::create_dir_all(&aside_dir)?;
    let aside = aside_dir.join(format!("ai-proxy-{label}"));
    // `target/<triple>/release/ai-proxy` is shared: a concurrent build with other features
    // (another `cargo xtask` call) may replace it between our build and the copy. A second,
    // no-op build puts ours back; if the file then equals the copy, the copy is ours.
    for _ in 0..3 {
        let fresh = build(false)?;
        fs::copy(&fresh, &aside)
            .with_context(|| format!("copying {} to {}", fresh.display(), aside.display()))?;
        build(true)?;
        if fs::read(&fresh)? == fs::read(&aside)? {
            return Ok(aside);
        }
    }
    bail!(
        "target/{target}/release/ai-proxy kept changing under concurrent builds with other \
         features: run the bench alone"
    )
}

/// The three allocator builds. `--no-default-features` so that exactly one allocator is on
/// whatever the proxy's defaults become.
fn allocator_builds(sh: &Shell) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (name, features) in [
        ("musl-malloc", None),
        ("mimalloc", Some("mimalloc")),
        ("jemalloc", Some("jemalloc")),
    ] {
        let mut extra = vec!["--no-default-features".to_owned()];
        if let Some(f) = features {
            extra.extend(["--features".to_owned(), f.to_owned()]);
        }
        out.push((name.to_owned(), build_proxy(sh, &extra, name)?));
    }
    Ok(out)
}

/// Raises this process's soft open-files limit (children inherit it) for the open-streams test.
fn raise_open_files_limit(needed: u64) -> Result<()> {
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

/// Everything `Bench::measure` produced.
struct Parts {
    samples: Vec<Sample>,
    ttfb: Vec<Ttfb>,
    memory: Memory,
    cold_start_ms: Vec<f64>,
    sizes: Sizes,
    allocators: Vec<AllocatorFigures>,
}

/// The running fixture: mock upstreams, the nginx baseline and the proxy's config directory.
struct Bench<'a> {
    dir: PathBuf,
    plan: &'a Plan,
    pins: Pins,
    clk_tck: u64,
    mock: Server,
    baseline: Server,
    hold: HoldMock,
    scripts: [PathBuf; 2],
}

impl<'a> Bench<'a> {
    fn setup(dir: &Path, plan: &'a Plan, pins: Pins, clk_tck: u64) -> Result<Self> {
        let mock = servers::start_mock(dir, pins.mock)?;
        let baseline = servers::start_baseline(dir, mock.port, pins.proxies)?;
        let hold = HoldMock::start()?;
        write_proxy_config(dir, mock.port, hold.port)?;
        let scripts = Mode::ALL.map(|m| dir.join(format!("{}.lua", m.name())));
        for (mode, script) in Mode::ALL.iter().zip(&scripts) {
            wrk::write_script(
                script,
                &request_body(mode.model(), *mode == Mode::Stream),
                TOKEN,
            )?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            plan,
            pins,
            clk_tck,
            mock,
            baseline,
            hold,
            scripts,
        })
    }

    fn start_proxy(&self, name: &str, bin: &Path) -> Result<Server> {
        servers::start_proxy(name, bin, &self.dir, self.pins.proxies)
    }

    fn measure(&mut self, bin: &Path, allocator_bins: &[(String, PathBuf)]) -> Result<Parts> {
        let binary_bytes = fs::metadata(bin)?.len();
        let mut proxy = self.start_proxy("ai-proxy", bin)?;
        let mut memory = Memory {
            idle_rss_kib: proxy.rss_kib()?,
            nginx_idle_rss_kib: self.baseline.rss_kib()?,
            ..Memory::default()
        };
        for target in Target::ALL {
            self.check_answers(target, &proxy)?;
        }
        if self.plan.warmup {
            for mode in Mode::ALL {
                for target in Target::ALL {
                    self.load(target, &proxy, mode, 16, 1, 0)?;
                }
            }
        }
        let samples = self.load_points(&proxy)?;
        let ttfb = self.ttfb(&proxy)?;
        self.leak_check(&proxy, &mut memory)?;
        memory.streams = self.plan.streams;
        memory.streams_rss_kib = self.open_streams(&mut proxy, self.plan.streams)?;
        drop(proxy);
        let cold_start_ms = self.cold_starts(bin)?;
        let sizes = Sizes {
            binary_bytes,
            ..image_size(bin, self.plan.image)
        };
        let allocators = self.compare_allocators(allocator_bins)?;
        self.mock.ensure_running()?;
        self.baseline.ensure_running()?;
        Ok(Parts {
            samples,
            ttfb,
            memory,
            cold_start_ms,
            sizes,
            allocators,
        })
    }

    fn port(&self, target: Target, proxy: &Server) -> u16 {
        match target {
            Target::Direct => self.mock.port,
            Target::Nginx => self.baseline.port,
            Target::Proxy => proxy.port,
        }
    }

    fn path(target: Target, mode: Mode) -> &'static str {
        if target == Target::Proxy {
            "/v1/chat/completions"
        } else {
            mode.mock_path()
        }
    }

    /// Before measuring anything: each target answers what the mock answers, and the proxy
    /// refuses a wrong token (so it is really doing its job on the measured path).
    fn check_answers(&self, target: Target, proxy: &Server) -> Result<()> {
        let port = self.port(target, proxy);
        let timeout = Duration::from_secs(5);
        for mode in Mode::ALL {
            let body = request_body(mode.model(), mode == Mode::Stream);
            let req = http::post(Self::path(target, mode), Some(TOKEN), &body, false);
            let resp = http::exchange(port, &req, timeout)
                .with_context(|| format!("{} {} request", target.name(), mode.name()))?;
            let text = resp.body_text();
            let ok = resp.status == 200
                && match mode {
                    Mode::Json => text.contains(servers::MOCK_JSON_MARKER),
                    Mode::Stream => {
                        text.contains("chat.completion.chunk") && text.contains("data: [DONE]")
                    }
                };
            ensure!(
                ok,
                "{} did not relay the mock's {} answer: status {}\n{}{}",
                target.name(),
                mode.name(),
                resp.status,
                resp.head,
                text.chars().take(500).collect::<String>()
            );
        }
        if target == Target::Proxy {
            let body = request_body(Mode::Json.model(), false);
            let req = http::post(
                "/v1/chat/completions",
                Some("wrong-token-0123456789"),
                &body,
                false,
            );
            let resp =
                http::exchange(port, &req, timeout).context("ai-proxy wrong-token request")?;
            ensure!(
                resp.status == 401,
                "ai-proxy answered {} to a wrong token, not 401",
                resp.status
            );
        }
        Ok(())
    }

    /// One wrk run with CPU and RSS read around it.
    fn load(
        &self,
        target: Target,
        proxy: &Server,
        mode: Mode,
        connections: u32,
        seconds: u32,
        round: u32,
    ) -> Result<Sample> {
        let server = match target {
            Target::Direct => None,
            Target::Nginx => Some(&self.baseline),
            Target::Proxy => Some(proxy),
        };
        let port = self.port(target, proxy);
        let url = format!("http://127.0.0.1:{port}{}", Self::path(target, mode));
        let script = &self.scripts[usize::from(mode == Mode::Stream)];
        let before = server.map(Server::cpu_ticks).transpose()?;
        let mock_before = self.mock.cpu_ticks()?;
        let wrk = wrk::run(&wrk::Load {
            script,
            url: &url,
            connections,
            threads: self.pins.wrk_threads(connections),
            seconds,
            pin: self.pins.load,
        })?;
        let after = server.map(Server::cpu_ticks).transpose()?;
        let mock_after = self.mock.cpu_ticks()?;
        let what = format!("{} {} c={connections}", target.name(), mode.name());
        ensure!(wrk.requests > 0, "{what}: wrk completed no requests");
        ensure!(
            wrk.non_2xx == 0,
            "{what}: {} of {} responses were not 2xx",
            wrk.non_2xx,
            wrk.requests
        );
        ensure!(
            wrk.socket_errors == 0,
            "{what}: wrk reported {} socket errors",
            wrk.socket_errors
        );
        #[allow(
            clippy::cast_precision_loss,
            reason = "tick counts stay far below 2^53"
        )]
        let seconds_of = |ticks: u64| ticks as f64 / self.clk_tck as f64;
        Ok(Sample {
            round,
            target,
            mode,
            connections,
            wrk,
            cpu_s: before.zip(after).map(|(b, a)| seconds_of(a - b)),
            mock_cpu_s: seconds_of(mock_after - mock_before),
            rss_kib: server.map(Server::rss_kib).transpose()?,
        })
    }

    /// Every point, targets back to back, target order rotated each round.
    fn load_points(&self, proxy: &Server) -> Result<Vec<Sample>> {
        let mut samples = Vec::new();
        for round in 0..self.plan.rounds {
            for mode in Mode::ALL {
                for &c in &self.plan.concurrency {
                    for i in 0..3 {
                        let target = Target::ALL[(i + round as usize) % 3];
                        let s = self.load(target, proxy, mode, c, self.plan.seconds, round)?;
                        println!(
                            "bench: round {} {:<6} c={c:<3} {:<8} {:>8.0} req/s  p50 {:>7.0} µs{}",
                            round + 1,
                            mode.name(),
                            target.name(),
                            s.wrk.rps,
                            s.wrk.p50_us,
                            s.cpu_us_per_request()
                                .map_or_else(String::new, |c| format!("  CPU {c:.1} µs/req")),
                        );
                        samples.push(s);
                    }
                }
            }
        }
        Ok(samples)
    }

    /// Sequential first-event probes, targets interleaved sample by sample.
    fn ttfb(&self, proxy: &Server) -> Result<Vec<Ttfb>> {
        let mut out: Vec<Ttfb> = Target::ALL
            .iter()
            .map(|&target| Ttfb {
                target,
                samples_us: Vec::new(),
            })
            .collect();
        let body = request_body(Mode::Stream.model(), true);
        let reqs =
            Target::ALL.map(|t| http::post(Self::path(t, Mode::Stream), Some(TOKEN), &body, false));
        for _ in 0..self.plan.ttfb_samples {
            for (i, &target) in Target::ALL.iter().enumerate() {
                let d = http::time_to_first_event(self.port(target, proxy), &reqs[i])
                    .with_context(|| format!("time to first byte via {}", target.name()))?;
                out[i].samples_us.push(d.as_secs_f64() * 1e6);
            }
        }
        Ok(out)
    }

    /// RSS after warm-up against RSS after `leak_requests` more requests, half streaming.
    fn leak_check(&self, proxy: &Server, memory: &mut Memory) -> Result<()> {
        memory.warm_rss_kib = proxy.rss_kib()?;
        let mut done = 0;
        let mut mode = Mode::Json;
        while done < self.plan.leak_requests {
            done += self
                .load(
                    Target::Proxy,
                    proxy,
                    mode,
                    64,
                    if self.plan.quick { 1 } else { 2 },
                    0,
                )?
                .wrk
                .requests;
            mode = if mode == Mode::Json {
                Mode::Stream
            } else {
                Mode::Json
            };
        }
        memory.leak_requests = done;
        memory.after_rss_kib = proxy.rss_kib()?;
        println!(
            "bench: RSS {} KiB after warm-up, {} KiB after {done} more requests",
            memory.warm_rss_kib, memory.after_rss_kib
        );
        Ok(())
    }

    /// Opens `n` streams through the proxy to the hold-open mock, waits for each first event,
    /// and returns the proxy's RSS with all of them open.
    fn open_streams(&self, proxy: &mut Server, n: usize) -> Result<u64> {
        let body = request_body("bench-hold", true);
        let req = http::post("/v1/chat/completions", Some(TOKEN), &body, true);
        let held_before = self.hold.held.load(std::sync::atomic::Ordering::SeqCst);
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = TcpStream::connect(http::addr(proxy.port))
                .with_context(|| format!("opening stream {} of {n} to ai-proxy", i + 1))?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            s.write_all(&req)
                .with_context(|| format!("sending stream request {}", i + 1))?;
            clients.push(s);
        }
        let mut buf = Vec::new();
        for (i, s) in clients.iter_mut().enumerate() {
            buf.clear();
            http::read_until_first_event(s, &mut buf)
                .with_context(|| format!("stream {} of {n} through ai-proxy", i + 1))?;
        }
        std::thread::sleep(Duration::from_millis(200));
        proxy.ensure_running()?;
        let rss = proxy.rss_kib()?;
        let held = self.hold.held.load(std::sync::atomic::Ordering::SeqCst) - held_before;
        ensure!(held >= n, "only {held} of {n} streams reached the upstream");
        println!("bench: RSS {rss} KiB with {n} open streams");
        drop(clients);
        self.hold.release();
        Ok(rss)
    }

    /// Spawn to the first `/ping` 200, several times; returns milliseconds.
    fn cold_starts(&self, bin: &Path) -> Result<Vec<f64>> {
        let mut out = Vec::new();
        for _ in 0..self.plan.cold_starts {
            let start = Instant::now();
            let mut server =
                servers::spawn_proxy("ai-proxy (cold start)", bin, &self.dir, self.pins.proxies)?;
            while !http::ping_ok(server.port) {
                server.ensure_running()?;
                ensure!(
                    start.elapsed() < Duration::from_secs(10),
                    "ai-proxy did not answer /ping within 10 s"
                );
                std::thread::sleep(Duration::from_micros(100));
            }
            out.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(out)
    }

    /// Each allocator build side by side at concurrency 64, interleaved per round.
    fn compare_allocators(&self, bins: &[(String, PathBuf)]) -> Result<Vec<AllocatorFigures>> {
        if bins.is_empty() {
            return Ok(Vec::new());
        }
        let mut proxies = Vec::new();
        let mut figures = Vec::new();
        for (name, bin) in bins {
            let proxy = self.start_proxy(name, bin)?;
            self.check_answers(Target::Proxy, &proxy)?;
            figures.push(AllocatorFigures {
                name: name.clone(),
                binary_bytes: fs::metadata(bin)?.len(),
                idle_rss_kib: proxy.rss_kib()?,
                samples: Vec::new(),
                loaded_rss_kib: 0,
                streams_rss_kib: 0,
            });
            proxies.push(proxy);
        }
        for proxy in &proxies {
            for mode in Mode::ALL {
                self.load(Target::Proxy, proxy, mode, 64, 1, 0)?;
            }
        }
        for round in 0..self.plan.rounds {
            for mode in Mode::ALL {
                for (proxy, fig) in proxies.iter().zip(&mut figures) {
                    let s = self.load(Target::Proxy, proxy, mode, 64, self.plan.seconds, round)?;
                    println!(
                        "bench: allocator {:<12} {:<6} c=64 {:>8.0} req/s  CPU {:.1} µs/req",
                        fig.name,
                        mode.name(),
                        s.wrk.rps,
                        s.cpu_us_per_request().unwrap_or(f64::NAN)
                    );
                    fig.samples.push(s);
                }
            }
        }
        for (proxy, fig) in proxies.iter_mut().zip(&mut figures) {
            fig.loaded_rss_kib = proxy.rss_kib()?;
            fig.streams_rss_kib = self.open_streams(proxy, 1000.max(self.plan.streams))?;
        }
        Ok(figures)
    }
}

/// The proxy's config directory: three openai-kind providers on the mocks.
fn write_proxy_config(dir: &Path, mock_port: u16, hold_port: u16) -> Result<()> {
    let env = format!(
        "# written by `cargo xtask bench`\nPORT=8080\nBIND=127.0.0.1\nAUTH_TOKEN={TOKEN}\nMOCK_API_KEY=mock-upstream-key\n"
    );
    let yaml = format!(
        "# written by `cargo xtask bench`
providers:
  - name: mock-json
    kind: openai
    base_url: http://127.0.0.1:{mock_port}/v1
    api_key: ${{MOCK_API_KEY}}
  - name: mock-stream
    kind: openai
    base_url: http://127.0.0.1:{mock_port}/stream/v1
    api_key: ${{MOCK_API_KEY}}
  - name: hold
    kind: openai
    base_url: http://127.0.0.1:{hold_port}/v1
    api_key: ${{MOCK_API_KEY}}
models:
  - name: bench-json
    targets:
      - provider: mock-json
        model: bench-upstream
  - name: bench-stream
    targets:
      - provider: mock-stream
        model: bench-upstream
  - name: bench-hold
    targets:
      - provider: hold
        model: bench-upstream
"
    );
    fs::write(dir.join(".env"), env).context("writing the bench .env")?;
    fs::write(dir.join("provider-config.yaml"), yaml)
        .context("writing the bench provider-config.yaml")?;
    Ok(())
}

/// Size of a `FROM scratch` image holding only the binary, when docker is there.
fn image_size(bin: &Path, wanted: bool) -> Sizes {
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

fn machine_info(bin: &Path, clk_tck: u64) -> Machine {
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
