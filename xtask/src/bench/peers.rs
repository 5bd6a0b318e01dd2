//! `cargo xtask bench --peers`: ai-proxy next to nginx and two other AI gateways, LiteLLM and
//! the Portkey gateway, on the same mock and load: CPU per request, added p50/p99 at c=1 and
//! c=64, added time to first byte of a stream, RSS idle and loaded, start time. Each peer is
//! installed at a pinned version from its own registry (PyPI, npm) under `target/bench/peers/`.
//! One gateway runs at a time, pinned like the rest of the bench. Not part of `cargo xtask test`.
#![allow(
    clippy::doc_markdown,
    reason = "product names (LiteLLM, PyPI) are not code"
)]

mod chart;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use super::fixture::{Bench, is_mock_answer, write_proxy_config};
use super::host::Pins;
use super::plan::{Mode, TOKEN, Target, request_body};
use super::servers::{self, Launch, Server};
use super::{http, procfs, wrk};
use crate::paths;

/// LiteLLM's proxy, from PyPI (`litellm[proxy]`), the version issue 14's first measurement used.
pub const LITELLM_VERSION: &str = "1.108.7";
/// The Portkey gateway, from npm (`@portkey-ai/gateway`).
pub const PORTKEY_VERSION: &str = "1.15.2";
/// Its HTTP server adapter, held back by an npm override: with the version npm picks (1.19) and
/// with 1.14.2, every stream fails in Portkey with `TypeError: immutable` when it adds its
/// headers to the response (Portkey-AI/gateway#1389, open); with 1.12.0 streams work.
const HONO_NODE_SERVER_VERSION: &str = "1.12.0";

/// LiteLLM's master key: it refuses to start without one, and checks it on every request as
/// ai-proxy checks its token (a fixed test value, only ever on loopback).
const LITELLM_KEY: &str =
    "sk-bench-8f14e45fceea167a5a36dedd4bea2543c4ca4238a0b923820dcc509a6f75849b";

/// Concurrency of the load points.
const CONCURRENCY: [u32; 2] = [1, 64];
/// Sequential time-to-first-byte probes per gateway.
const TTFB_SAMPLES: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gateway {
    Direct,
    Nginx,
    AiProxy,
    LiteLlm,
    Portkey,
}

impl Gateway {
    const ALL: [Self; 5] = [
        Self::Direct,
        Self::Nginx,
        Self::AiProxy,
        Self::LiteLlm,
        Self::Portkey,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Nginx => "nginx",
            Self::AiProxy => "ai-proxy",
            Self::LiteLlm => "LiteLLM",
            Self::Portkey => "Portkey gateway",
        }
    }

    fn path(self, mode: Mode) -> &'static str {
        match self {
            Self::Direct => Bench::path(Target::Direct, mode),
            Self::Nginx => Bench::path(Target::Nginx, mode),
            Self::AiProxy | Self::LiteLlm | Self::Portkey => "/v1/chat/completions",
        }
    }

    /// The bearer token each expects: Portkey passes it on to the provider (the mock ignores it).
    fn token(self) -> &'static str {
        match self {
            Self::LiteLlm => LITELLM_KEY,
            _ => TOKEN,
        }
    }

    /// Portkey is routed per request: the provider and the custom host (the mock) are headers.
    fn headers(self, mode: Mode, mock_port: u16) -> Vec<(&'static str, String)> {
        if self != Self::Portkey {
            return Vec::new();
        }
        let base = match mode {
            Mode::Json => "/v1",
            Mode::Stream => "/stream/v1",
        };
        vec![
            ("x-portkey-provider", "openai".to_owned()),
            (
                "x-portkey-custom-host",
                format!("http://127.0.0.1:{mock_port}{base}"),
            ),
        ]
    }
}

/// Where each peer is installed.
fn peers_dir() -> PathBuf {
    paths::target_dir().join("bench").join("peers")
}

fn litellm_dir() -> PathBuf {
    peers_dir().join(format!("litellm-{LITELLM_VERSION}"))
}

fn portkey_dir() -> PathBuf {
    peers_dir().join(format!("portkey-{PORTKEY_VERSION}"))
}

fn portkey_server() -> PathBuf {
    portkey_dir().join("node_modules/@portkey-ai/gateway/build/start-server.js")
}

/// Installs the pinned peers that are not there yet: a private venv for LiteLLM, an npm prefix
/// for Portkey; nothing outside `target/bench/peers/`, nothing but the two registries.
fn install(sh: &Shell) -> Result<()> {
    for program in ["python3", "node", "npm"] {
        ensure!(
            crate::tools::have(program),
            "{program} is missing: `cargo xtask setup --for test` installs it (the sdk and \
             actionlint steps use it too)"
        );
    }
    let venv = litellm_dir();
    if !venv.join("bin/litellm").is_file() {
        println!(
            "peers: installing litellm[proxy]=={LITELLM_VERSION} in {}",
            venv.display()
        );
        let spec = format!("litellm[proxy]=={LITELLM_VERSION}");
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .context("creating LiteLLM's venv (Debian: apt-get install python3-venv)")?;
        let pip = venv.join("bin/pip");
        cmd!(
            sh,
            "{pip} install --quiet --disable-pip-version-check {spec}"
        )
        .run()
        .with_context(|| format!("pip install {spec}"))?;
    }
    let prefix = portkey_dir();
    let manifest = format!(
        "{{\"private\":true,\"dependencies\":{{\"@portkey-ai/gateway\":\"{PORTKEY_VERSION}\"}},\
         \"overrides\":{{\"@hono/node-server\":\"{HONO_NODE_SERVER_VERSION}\"}}}}\n"
    );
    let manifest_path = prefix.join("package.json");
    // A changed pin rewrites the manifest, and that reinstalls.
    if !portkey_server().is_file()
        || fs::read_to_string(&manifest_path).ok().as_deref() != Some(manifest.as_str())
    {
        println!(
            "peers: installing @portkey-ai/gateway@{PORTKEY_VERSION} in {}",
            prefix.display()
        );
        fs::create_dir_all(&prefix)?;
        fs::write(&manifest_path, &manifest)
            .with_context(|| format!("writing {}", manifest_path.display()))?;
        cmd!(sh, "npm install --prefix {prefix} --no-audit --no-fund")
            .run()
            .context("npm install of the Portkey gateway")?;
    }
    Ok(())
}

/// LiteLLM's config: the bench's two models on the mock, as `openai/` models with a base URL,
/// and the master key; no database.
fn litellm_config(dir: &Path, mock_port: u16) -> Result<PathBuf> {
    let path = dir.join("litellm.yaml");
    let yaml = format!(
        "# written by `cargo xtask bench --peers`
model_list:
  - model_name: bench-json
    litellm_params:
      model: openai/bench-upstream
      api_base: http://127.0.0.1:{mock_port}/v1
      api_key: mock-upstream-key
  - model_name: bench-stream
    litellm_params:
      model: openai/bench-upstream
      api_base: http://127.0.0.1:{mock_port}/stream/v1
      api_key: mock-upstream-key
general_settings:
  master_key: {LITELLM_KEY}
"
    );
    fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What one gateway measured.
struct Row {
    gateway: Gateway,
    version: String,
    command: String,
    start_ms: Option<f64>,
    idle_rss_kib: Option<u64>,
    loaded_rss_kib: Option<u64>,
    /// Per concurrency: CPU µs per request (none for direct), p50 µs, p99 µs.
    points: Vec<(u32, Option<f64>, f64, f64)>,
    ttfb_us: f64,
}

struct Peers<'a> {
    dir: &'a Path,
    bin: &'a Path,
    pins: Pins,
    clk_tck: u64,
    seconds: u32,
    mock: Server,
}

/// The generated part of docs/benchmarks.md's peer section.
const DOCS_BEGIN: &str = "<!-- BEGIN cargo xtask bench --peers --write-docs -->";
const DOCS_END: &str = "<!-- END cargo xtask bench --peers --write-docs -->";

/// `cargo xtask bench --peers [--write-docs]`.
pub fn run(sh: &Shell, bin: &Path, seconds: u32, write_docs: bool) -> Result<()> {
    let started = Instant::now();
    install(sh)?;
    // Other work on the machine moves these figures: the table says how busy it was.
    let load_before = load_average();
    let (pins, pinning) = super::host::Pins::detect();
    let clk_tck = procfs::clock_ticks_per_second()?;
    let dir = std::env::temp_dir().join(format!("ai-proxy-peers-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mock = servers::start_mock(&dir, pins.mock)?;
    write_proxy_config(&dir, mock.port, mock.port)?;
    let peers = Peers {
        dir: &dir,
        bin,
        pins,
        clk_tck,
        seconds,
        mock,
    };
    let mut rows = Vec::new();
    for gateway in Gateway::ALL {
        let row = peers
            .measure(gateway)
            .with_context(|| format!("{} (logs in {})", gateway.name(), dir.display()))?;
        rows.push(row);
    }
    drop(peers);
    let _ = fs::remove_dir_all(&dir);
    let pinning = format!(
        "{pinning}; 1-minute load average {load_before} at the start, {} at the end",
        load_average()
    );
    let report = table(&rows, seconds, &pinning);
    print!("{report}");
    let out = paths::target_dir().join("bench").join("peers.md");
    fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    let svg = chart::svg(&panels(&rows));
    let svg_path = out.with_extension("svg");
    fs::write(&svg_path, &svg).with_context(|| format!("writing {}", svg_path.display()))?;
    if write_docs {
        let doc = super::report::write_docs_section(DOCS_BEGIN, DOCS_END, &report)?;
        let docs_svg = paths::docs_dir().join("peers.svg");
        fs::write(&docs_svg, &svg).with_context(|| format!("writing {}", docs_svg.display()))?;
        println!(
            "peers: updated {} and {}",
            doc.display(),
            docs_svg.display()
        );
    }
    println!(
        "peers: written to {}; done in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl Peers<'_> {
    fn request(&self, gateway: Gateway, mode: Mode, keep_alive: bool) -> Vec<u8> {
        let headers = gateway.headers(mode, self.mock.port);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = request_body(mode.model(), mode == Mode::Stream);
        http::post_with(
            gateway.path(mode),
            Some(gateway.token()),
            &headers,
            &body,
            keep_alive,
        )
    }

    fn answers(&self, gateway: Gateway, port: u16, mode: Mode) -> Result<http::Response> {
        http::exchange(
            port,
            &self.request(gateway, mode, false),
            Duration::from_secs(10),
        )
    }

    /// Runs a peer's `cmd` until it relays the mock's JSON answer on `port`.
    fn start_peer(
        &self,
        gateway: Gateway,
        cmd: Command,
        port: u16,
        patience: Duration,
    ) -> Result<Server> {
        let ready = || {
            self.answers(gateway, port, Mode::Json)
                .is_ok_and(|r| r.status == 200)
        };
        servers::start_program(gateway.name(), cmd, port, self.dir, ready, patience)
    }

    /// Starts `gateway` (none for direct) and times spawn to its first relayed JSON answer.
    fn start(&self, gateway: Gateway) -> Result<(Option<Server>, u16, Option<f64>, String)> {
        let started = Instant::now();
        let pinned = Launch::pinned(self.pins.proxies);
        let taskset = self
            .pins
            .proxies
            .map_or_else(String::new, |cpu| format!("taskset -c {cpu} "));
        let (server, command) = match gateway {
            Gateway::Direct => return Ok((None, self.mock.port, None, String::new())),
            Gateway::Nginx => (
                servers::start_baseline(self.dir, self.mock.port, &pinned)?,
                format!("{taskset}nginx -c baseline.nginx.conf (xtask/bench/)"),
            ),
            Gateway::AiProxy => (
                servers::start_proxy("ai-proxy", self.bin, self.dir, &pinned)?,
                format!("{taskset}ai-proxy serve --config-dir DIR"),
            ),
            Gateway::LiteLlm => {
                let port = http::free_port()?;
                let config = litellm_config(self.dir, self.mock.port)?;
                let litellm = litellm_dir().join("bin/litellm");
                let mut cmd = servers::command(&litellm, self.pins.proxies);
                cmd.arg("--config")
                    .arg(&config)
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--num_workers", "1"])
                    // The model price list ships in the package: no download at start.
                    .env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
                let server = self.start_peer(gateway, cmd, port, Duration::from_mins(3))?;
                (
                    server,
                    format!(
                        "pip install litellm[proxy]=={LITELLM_VERSION}; \
                         LITELLM_LOCAL_MODEL_COST_MAP=True {taskset}litellm --config litellm.yaml \
                         --host 127.0.0.1 --port PORT --num_workers 1"
                    ),
                )
            }
            Gateway::Portkey => {
                let port = http::free_port()?;
                let mut cmd = servers::command(Path::new("node"), self.pins.proxies);
                cmd.arg(portkey_server())
                    .arg(format!("--port={port}"))
                    .arg("--headless");
                let server = self.start_peer(gateway, cmd, port, Duration::from_mins(1))?;
                (
                    server,
                    format!(
                        "npm install @portkey-ai/gateway@{PORTKEY_VERSION} (override \
                         @hono/node-server {HONO_NODE_SERVER_VERSION}); {taskset}node \
                         node_modules/@portkey-ai/gateway/build/start-server.js --port=PORT \
                         --headless; headers x-portkey-provider: openai, x-portkey-custom-host: \
                         http://127.0.0.1:MOCK/v1"
                    ),
                )
            }
        };
        let port = server.port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .answers(gateway, port, Mode::Json)
            .is_ok_and(|r| r.status == 200)
        {
            ensure!(
                Instant::now() < deadline,
                "{} does not relay the mock's answer",
                gateway.name()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let start_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok((Some(server), port, Some(start_ms), command))
    }

    fn measure(&self, gateway: Gateway) -> Result<Row> {
        let (server, port, start_ms, command) = self.start(gateway)?;
        let idle_rss_kib = server.as_ref().map(Server::rss_kib).transpose()?;
        for mode in Mode::ALL {
            let resp = self.answers(gateway, port, mode)?;
            ensure!(
                is_mock_answer(mode, &resp),
                "{} did not relay the mock's {} answer: status {}\n{}{}",
                gateway.name(),
                mode.name(),
                resp.status,
                resp.head,
                resp.body_text().chars().take(500).collect::<String>()
            );
        }
        let script = self.dir.join(format!("peer-{port}.lua"));
        let headers = gateway.headers(Mode::Json, self.mock.port);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        wrk::write_script(
            &script,
            &request_body(Mode::Json.model(), false),
            gateway.token(),
            &headers,
        )?;
        let url = format!("http://127.0.0.1:{port}{}", gateway.path(Mode::Json));
        // Warm-up: connections, pools, caches and (for the interpreted peers) their JIT.
        self.wrk(&script, &url, 16, 2)?;
        let mut points = Vec::new();
        for connections in CONCURRENCY {
            let before = server.as_ref().map(Server::cpu_ticks).transpose()?;
            let outcome = self.wrk(&script, &url, connections, self.seconds)?;
            let after = server.as_ref().map(Server::cpu_ticks).transpose()?;
            #[allow(
                clippy::cast_precision_loss,
                reason = "tick and request counts stay far below 2^53"
            )]
            let cpu_us = before
                .zip(after)
                .map(|(b, a)| (a - b) as f64 / self.clk_tck as f64 * 1e6 / outcome.requests as f64);
            println!(
                "peers: {:<16} c={connections:<3} {:>8.0} req/s  p50 {:>8.0} µs  p99 {:>8.0} µs{}",
                gateway.name(),
                outcome.rps,
                outcome.p50_us,
                outcome.p99_us,
                cpu_us.map_or_else(String::new, |c| format!("  CPU {c:.1} µs/req"))
            );
            points.push((connections, cpu_us, outcome.p50_us, outcome.p99_us));
        }
        let loaded_rss_kib = server.as_ref().map(Server::rss_kib).transpose()?;
        let stream = self.request(gateway, Mode::Stream, false);
        let mut ttfb = Vec::with_capacity(TTFB_SAMPLES);
        for _ in 0..TTFB_SAMPLES {
            ttfb.push(http::time_to_first_event(port, &stream)?.as_secs_f64() * 1e6);
        }
        ttfb.sort_by(f64::total_cmp);
        let version = match gateway {
            Gateway::Direct => String::new(),
            Gateway::Nginx => super::host::machine_info(self.bin, self.clk_tck)
                .nginx
                .trim_start_matches("nginx version: ")
                .to_owned(),
            Gateway::AiProxy => version_line(self.bin),
            Gateway::LiteLlm => LITELLM_VERSION.to_owned(),
            Gateway::Portkey => PORTKEY_VERSION.to_owned(),
        };
        Ok(Row {
            gateway,
            version,
            command,
            start_ms,
            idle_rss_kib,
            loaded_rss_kib,
            points,
            ttfb_us: ttfb[ttfb.len() / 2],
        })
    }

    fn wrk(
        &self,
        script: &Path,
        url: &str,
        connections: u32,
        seconds: u32,
    ) -> Result<wrk::Outcome> {
        let outcome = wrk::run(&wrk::Load {
            script,
            url,
            connections,
            threads: self.pins.wrk_threads(connections),
            seconds,
            pin: self.pins.load,
        })?;
        ensure!(
            outcome.requests > 0,
            "{url} c={connections}: no requests completed"
        );
        if outcome.non_2xx > 0 || outcome.socket_errors > 0 {
            bail!(
                "{url} c={connections}: {} non-2xx answers and {} socket errors in {} requests",
                outcome.non_2xx,
                outcome.socket_errors,
                outcome.requests
            );
        }
        Ok(outcome)
    }
}

/// The first field of `/proc/loadavg`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn version_line(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
        .trim_start_matches("ai-proxy ")
        .to_owned()
}

/// The chart's panels: CPU per request, added time to first byte, RSS under load.
#[allow(clippy::cast_precision_loss, reason = "KiB counts stay far below 2^53")]
fn panels(rows: &[Row]) -> Vec<chart::Panel> {
    let direct_ttfb = rows
        .iter()
        .find(|r| r.gateway == Gateway::Direct)
        .map(|r| r.ttfb_us);
    let peers: Vec<&Row> = rows
        .iter()
        .filter(|r| r.gateway != Gateway::Direct)
        .collect();
    let panel = |title: &str, unit, value: &dyn Fn(&Row) -> Option<f64>| chart::Panel {
        title: title.to_owned(),
        unit,
        values: peers.iter().map(|r| (r.gateway.name(), value(r))).collect(),
    };
    vec![
        panel("CPU per request at c=64", "µs", &|r| {
            r.points.iter().find(|p| p.0 == 64).and_then(|p| p.1)
        }),
        panel("Time to first byte of a stream, added", "ms", &|r| {
            direct_ttfb.map(|d| (r.ttfb_us - d) / 1e3)
        }),
        panel("RSS after the c=64 load", "MiB", &|r| {
            r.loaded_rss_kib.map(|k| k as f64 / 1024.0)
        }),
    ]
}

/// The Markdown table (and the commands) for docs/benchmarks.md.
#[allow(clippy::cast_precision_loss, reason = "KiB counts stay far below 2^53")]
fn table(rows: &[Row], seconds: u32, pinning: &str) -> String {
    let direct = rows.iter().find(|r| r.gateway == Gateway::Direct);
    let added = |row: &Row, c: u32, p99: bool| -> String {
        let pick = |r: &Row| {
            r.points
                .iter()
                .find(|p| p.0 == c)
                .map(|p| if p99 { p.3 } else { p.2 })
        };
        match (pick(row), direct.and_then(pick)) {
            (Some(v), Some(d)) => format!("{:.2}", (v - d) / 1e3),
            _ => "–".to_owned(),
        }
    };
    let mib =
        |k: Option<u64>| k.map_or_else(|| "–".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    let mut out = format!(
        "JSON requests by wrk for {seconds} s per point, one gateway at a time ({pinning}; the \
         peers run where ai-proxy does); \
         added = the gateway's latency minus direct's; TTFB = median of {TTFB_SAMPLES} fresh \
         streams, minus direct's; start = spawn to the first relayed answer.\n\n\
         | gateway | version | CPU µs/req c=64 | added p50 c=1 ms | added p99 c=1 ms | added p50 c=64 ms | added p99 c=64 ms | TTFB added ms | RSS idle MiB | RSS loaded MiB | start ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for row in rows.iter().filter(|r| r.gateway != Gateway::Direct) {
        let cpu = row
            .points
            .iter()
            .find(|p| p.0 == 64)
            .and_then(|p| p.1)
            .map_or_else(|| "–".to_owned(), |c| format!("{c:.1}"));
        let ttfb = direct.map_or_else(
            || "–".to_owned(),
            |d| format!("{:.2}", (row.ttfb_us - d.ttfb_us) / 1e3),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {cpu} | {} | {} | {} | {} | {ttfb} | {} | {} | {} |",
            row.gateway.name(),
            row.version,
            added(row, 1, false),
            added(row, 1, true),
            added(row, 64, false),
            added(row, 64, true),
            mib(row.idle_rss_kib),
            mib(row.loaded_rss_kib),
            row.start_ms
                .map_or_else(|| "–".to_owned(), |s| format!("{s:.0}")),
        );
    }
    let _ = write!(
        out,
        "\nCommand: `cargo xtask bench --peers --seconds {seconds}`. What it ran (ports and \
         paths are the bench's):\n\n"
    );
    for row in rows.iter().filter(|r| !r.command.is_empty()) {
        let _ = writeln!(out, "- {}: `{}`", row.gateway.name(), row.command);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(gateway: Gateway, p50_c1: f64, ttfb_us: f64) -> Row {
        Row {
            gateway,
            version: "1".to_owned(),
            command: String::new(),
            start_ms: Some(5.0),
            idle_rss_kib: Some(2048),
            loaded_rss_kib: None,
            points: vec![
                (1, Some(40.0), p50_c1, 900.0),
                (64, Some(20.0), 700.0, 800.0),
            ],
            ttfb_us,
        }
    }

    #[test]
    fn the_table_shows_each_gateway_minus_direct_and_no_row_for_direct() {
        let rows = [
            row(Gateway::Direct, 50.0, 100.0),
            row(Gateway::LiteLlm, 2_050.0, 5_100.0),
        ];
        let text = table(&rows, 5, "not pinned");
        assert!(!text.contains("| direct |"), "{text}");
        // p50 at c=1: 2,050 − 50 µs = 2.00 ms; TTFB: 5.00 ms; CPU at c=64: 20.0; idle 2.0 MiB.
        assert!(
            text.contains(
                "| LiteLLM | 1 | 20.0 | 2.00 | 0.00 | 0.00 | 0.00 | 5.00 | 2.0 | – | 5 |"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_portkey_is_routed_by_headers() {
        assert!(Gateway::LiteLlm.headers(Mode::Json, 1).is_empty());
        let headers = Gateway::Portkey.headers(Mode::Stream, 8080);
        assert!(headers.contains(&(
            "x-portkey-custom-host",
            "http://127.0.0.1:8080/stream/v1".to_owned()
        )));
    }
}
