//! `cargo xtask bench --instructions`: user-space instructions per request through nginx and
//! ai-proxy, counted by callgrind, and the committed budget `cargo xtask test` holds ai-proxy to.
//!
//! Instruction counts do not move with the machine's load, so they catch a regression that
//! timings on a shared 2-core machine would hide. Method: each server runs under
//! `valgrind --tool=callgrind` (all threads; nginx's master and worker write a file each) for
//! three runs, each on one keep-alive connection with requests one after another:
//! `base` = a warm-up of [`WARMUP`] requests of each mode, `json` = base + [`JSON_REQUESTS`],
//! `stream` = base + [`STREAM_REQUESTS`]. Per request = (run − base) / requests, so start-up,
//! first connections, idle time and shutdown cancel out. The mock runs natively, outside.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::fixture::{is_mock_answer, is_translated_answer, write_proxy_config, write_tls_config};
use super::http::{self, KeepAlive};
use super::plan::{Mode, TOKEN, Target, messages_body, request_body};
use super::servers::{self, Launch, Server};
use crate::paths;

/// Non-streamed requests counted per run.
pub const JSON_REQUESTS: u32 = 4_000;
/// Streamed requests counted per run (each relays the mock's 3.7 KB SSE answer).
pub const STREAM_REQUESTS: u32 = 1_000;
/// Requests of each mode in every run before the counted ones: first connections, lazy
/// initialisation and pool growth happen here, in the base run too, and cancel out.
pub const WARMUP: u32 = 20;
/// How far over its budget ai-proxy may go before `cargo xtask test` fails.
pub const TOLERANCE: f64 = 0.05;
/// The budget file, relative to the project root.
pub const BUDGET_FILE: &str = "xtask/bench/instructions-budget.toml";

/// A server measured under callgrind: the nginx floor, or an ai-proxy variant.
#[derive(Clone, Copy)]
pub struct Subject {
    pub name: &'static str,
    pub target: Target,
    /// Client keys in its `provider-config.yaml`; its requests present the last one. With none,
    /// they present the operator's `AUTH_TOKEN`.
    pub clients: u32,
    pub variant: Variant,
}

/// What an ai-proxy point changes from the plain one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Plain HTTP, `OpenAI` chat completions to an `openai`-kind provider.
    Plain,
    /// The same over TLS between client and proxy (a manual self-signed certificate); the
    /// client side is an nginx run natively in front, so only the proxy's side is counted.
    Tls,
    /// An Anthropic-shaped `POST /v1/messages` to the same `openai`-kind provider: the
    /// request and the answer translated.
    Translated,
}

/// The subjects of `--instructions`, in report order; ai-proxy's plain point is the one the
/// budget holds.
pub const SUBJECTS: [Subject; 5] = [NGINX, PROXY, PROXY_KEYS, PROXY_TLS, PROXY_TRANSLATED];
const NGINX: Subject = Subject {
    name: "nginx",
    target: Target::Nginx,
    clients: 0,
    variant: Variant::Plain,
};
const PROXY: Subject = Subject {
    name: "ai-proxy",
    target: Target::Proxy,
    clients: 0,
    variant: Variant::Plain,
};

/// ai-proxy with 1,000 client keys configured (issue 13), each request presenting the last.
const PROXY_KEYS: Subject = Subject {
    name: "ai-proxy+1k-keys",
    clients: 1_000,
    ..PROXY
};

/// ai-proxy serving HTTPS (issue 10).
const PROXY_TLS: Subject = Subject {
    name: "ai-proxy+tls",
    variant: Variant::Tls,
    ..PROXY
};

/// ai-proxy translating Anthropic's Messages API to `OpenAI`'s (issue 12).
const PROXY_TRANSLATED: Subject = Subject {
    name: "ai-proxy+translated",
    variant: Variant::Translated,
    ..PROXY
};

/// Instructions per request for one subject and mode, one figure per repeat.
pub struct Figure {
    pub subject: &'static str,
    pub mode: Mode,
    pub per_request: Vec<f64>,
}

impl Figure {
    pub fn median(&self) -> f64 {
        let mut sorted = self.per_request.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    /// (max − min) / median: how far the repeats are apart.
    pub fn spread(&self) -> f64 {
        let min = self
            .per_request
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let max = self
            .per_request
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (max - min) / self.median()
    }
}

/// How many requests of each mode one callgrind run sends, warm-up included.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    Base,
    Counted(Mode),
}

impl Run {
    const ALL: [Self; 3] = [
        Self::Base,
        Self::Counted(Mode::Json),
        Self::Counted(Mode::Stream),
    ];

    fn requests(self, mode: Mode) -> u32 {
        match self {
            Self::Counted(m) if m == mode => WARMUP + counted(mode),
            _ => WARMUP,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Counted(mode) => mode.name(),
        }
    }
}

fn counted(mode: Mode) -> u32 {
    match mode {
        Mode::Json => JSON_REQUESTS,
        Mode::Stream => STREAM_REQUESTS,
    }
}

/// The running mock and what each callgrind run needs.
struct Counter<'a> {
    dir: &'a Path,
    bin: &'a Path,
    mock: Server,
    runs: usize,
}

/// Measures `subjects` `repeats` times in `dir` (the mock's and servers' files go there).
pub fn measure(dir: &Path, bin: &Path, subjects: &[Subject], repeats: u32) -> Result<Vec<Figure>> {
    let mock = servers::start_mock(dir, None)?;
    // The hold provider of the config is never asked for here: point it at the mock.
    write_proxy_config(dir, mock.port, mock.port)?;
    for subject in subjects.iter().filter(|s| s.clients > 0) {
        write_clients_config(dir, mock.port, subject.clients)?;
    }
    if subjects.iter().any(|s| s.variant == Variant::Tls) {
        let _ = write_tls_config(dir, &dir.join("tls"))?;
    }
    let mut counter = Counter {
        dir,
        bin,
        mock,
        runs: 0,
    };
    let mut figures: Vec<Figure> = subjects
        .iter()
        .flat_map(|s| {
            Mode::ALL.map(|mode| Figure {
                subject: s.name,
                mode,
                per_request: Vec::new(),
            })
        })
        .collect();
    for repeat in 1..=repeats {
        for subject in subjects {
            let started = Instant::now();
            let mut totals = [0u64; Run::ALL.len()];
            for (total, run) in totals.iter_mut().zip(Run::ALL) {
                *total = counter.count(*subject, run)?;
            }
            for figure in figures.iter_mut().filter(|f| f.subject == subject.name) {
                let index = Run::ALL
                    .iter()
                    .position(|r| *r == Run::Counted(figure.mode))
                    .expect("every mode has a run");
                figure.per_request.push(per_request(
                    totals[0],
                    totals[index],
                    counted(figure.mode),
                )?);
            }
            println!(
                "instructions: {} repeat {repeat}/{repeats} in {:.0} s",
                subject.name,
                started.elapsed().as_secs_f64()
            );
        }
    }
    counter.mock.ensure_running()?;
    Ok(figures)
}

/// The config directory `subject` runs with: the plain one, or its own with client keys or TLS.
fn config_dir(dir: &Path, subject: Subject) -> PathBuf {
    if subject.clients > 0 {
        dir.join(format!("clients-{}", subject.clients))
    } else if subject.variant == Variant::Tls {
        dir.join("tls")
    } else {
        dir.to_path_buf()
    }
}

/// Client key number `i` (1-based) of a bench config.
fn client_key(i: u32) -> String {
    format!("aip_bench_client_{i:05}")
}

/// The plain config plus a `clients:` section of `n` keys, in a directory of its own.
fn write_clients_config(dir: &Path, mock_port: u16, n: u32) -> Result<()> {
    let config = dir.join(format!("clients-{n}"));
    fs::create_dir_all(&config).with_context(|| format!("creating {}", config.display()))?;
    write_proxy_config(&config, mock_port, mock_port)?;
    let path = config.join("provider-config.yaml");
    let mut yaml = fs::read_to_string(&path).context("reading the bench provider-config.yaml")?;
    yaml.push_str("clients:\n");
    for i in 1..=n {
        let digest = crate::release::archive::sha256_hex(client_key(i).as_bytes());
        let _ = writeln!(yaml, "  - name: bench-{i}\n    key_sha256: {digest}");
    }
    fs::write(&path, yaml).context("writing the bench clients")?;
    Ok(())
}

#[allow(
    clippy::cast_precision_loss,
    reason = "instruction totals stay far below 2^53"
)]
fn per_request(base: u64, run: u64, requests: u32) -> Result<f64> {
    ensure!(
        run > base,
        "a run with {requests} more requests counted {run} instructions, not more than the \
         base run's {base}: the load did not reach the server"
    );
    Ok((run - base) as f64 / f64::from(requests))
}

impl Counter<'_> {
    /// One callgrind run of `subject` with `run`'s load: the total instructions of every process.
    fn count(&mut self, subject: Subject, run: Run) -> Result<u64> {
        self.runs += 1;
        let out_dir = self
            .dir
            .join(format!("callgrind-{}-{}", self.runs, run.name()));
        fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
        // nginx started as root runs its worker as `nobody`, whose counts must land here too.
        fs::set_permissions(&out_dir, fs::Permissions::from_mode(0o777))
            .with_context(|| format!("opening {} to nginx's worker user", out_dir.display()))?;
        let mut out_file = OsString::from("--callgrind-out-file=");
        out_file.push(out_dir.join("callgrind.out.%p"));
        // `--fair-sched=yes` hands the one lock valgrind runs threads under round-robin: with
        // it, how often tokio's idle workers spin varies less, and the repeats agree within 1%
        // (2-4% without it, at 2,000/200 requests).
        let launch = Launch {
            pin: None,
            wrapper: [
                "valgrind",
                "--tool=callgrind",
                "--quiet",
                "--fair-sched=yes",
            ]
            .map(OsString::from)
            .into_iter()
            .chain([out_file])
            .collect(),
        };
        let server = match subject.target {
            Target::Nginx => servers::start_baseline(self.dir, self.mock.port, &launch)?,
            Target::Proxy => {
                let config = config_dir(self.dir, subject);
                servers::start_proxy(subject.name, self.bin, &config, &launch)?
            }
            Target::Direct => bail!("the direct connection runs no server to count"),
        };
        let sent = if subject.variant == Variant::Tls {
            servers::start_tls_front(self.dir, server.port)
                .and_then(|front| send_load(subject, front.port, run))
        } else {
            send_load(subject, server.port, run)
        };
        // Stopping (SIGTERM) makes valgrind write the counts; a failed load still stops it.
        drop(server);
        sent.with_context(|| format!("{} {} run under callgrind", subject.name, run.name()))?;
        total_instructions(&out_dir)
    }
}

/// Sends `run`'s requests on one keep-alive connection to `port` and checks every answer.
fn send_load(subject: Subject, port: u16, run: Run) -> Result<()> {
    // Under callgrind a request takes milliseconds; a minute means something is stuck.
    let mut conn = KeepAlive::connect(port, Duration::from_mins(1))?;
    for mode in Mode::ALL {
        let stream = mode == Mode::Stream;
        let token = if subject.clients > 0 {
            client_key(subject.clients)
        } else {
            TOKEN.to_owned()
        };
        let (request, answered): (_, fn(Mode, &http::Response) -> bool) =
            if subject.variant == Variant::Translated {
                let body = messages_body(mode.model(), stream);
                let headers = [("anthropic-version", "2023-06-01")];
                let request = http::post_with("/v1/messages", Some(&token), &headers, &body, true);
                (request, is_translated_answer)
            } else {
                let path = super::fixture::Bench::path(subject.target, mode);
                let body = request_body(mode.model(), stream);
                (http::post(path, Some(&token), &body, true), is_mock_answer)
            };
        for i in 0..run.requests(mode) {
            let resp = conn.exchange(&request)?;
            ensure!(
                answered(mode, &resp),
                "{} request {i} was not the mock's answer: status {}\n{}",
                mode.name(),
                resp.status,
                resp.body_text().chars().take(500).collect::<String>()
            );
        }
    }
    Ok(())
}

/// The sum of the `totals:` (or `summary:`) lines of every callgrind output in `dir`.
fn total_instructions(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut files = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        total += parse_total(&text).with_context(|| format!("in {}", path.display()))?;
        files += 1;
    }
    ensure!(
        files > 0,
        "callgrind wrote nothing in {}: did the server exit cleanly on SIGTERM?",
        dir.display()
    );
    Ok(total)
}

fn parse_total(text: &str) -> Result<u64> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("summary:")))
        .context("no `totals:` or `summary:` line in a callgrind output")?;
    line.split_whitespace()
        .next()
        .context("an empty callgrind totals line")?
        .parse()
        .with_context(|| format!("callgrind totals {line:?} is not a number"))
}

/// The committed figures: ai-proxy's instructions per request for each mode.
#[derive(Debug, PartialEq)]
pub struct Budget {
    pub json: u64,
    pub stream: u64,
}

impl Budget {
    pub fn path() -> PathBuf {
        paths::project_root().join(BUDGET_FILE)
    }

    pub fn load() -> Result<Self> {
        let path = Self::path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    /// The file's `mode = N` lines (TOML, read without a TOML crate: comments, blank lines
    /// and integers with `_` separators are all it holds).
    fn parse(text: &str) -> Result<Self> {
        let (mut json, mut stream) = (None, None);
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = || format!("{BUDGET_FILE}:{}", number + 1);
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{}: expected `mode = instructions`", at()))?;
            let value: u64 =
                value.trim().replace('_', "").parse().with_context(|| {
                    format!("{}: {:?} is not a whole number", at(), value.trim())
                })?;
            let slot = match key.trim() {
                "json" => &mut json,
                "stream" => &mut stream,
                other => bail!("{}: unknown key {other:?} (json and stream)", at()),
            };
            ensure!(slot.replace(value).is_none(), "{}: {key} set twice", at());
        }
        Ok(Self {
            json: json.with_context(|| format!("{BUDGET_FILE} has no `json = N` line"))?,
            stream: stream.with_context(|| format!("{BUDGET_FILE} has no `stream = N` line"))?,
        })
    }

    fn figure(&self, mode: Mode) -> u64 {
        match mode {
            Mode::Json => self.json,
            Mode::Stream => self.stream,
        }
    }
}

/// Compares ai-proxy's measured instructions per request with the budget: an error naming every
/// mode over it by more than [`TOLERANCE`] and the line to commit if the cost is meant; else a
/// line per mode, which also suggests lowering a budget the code now beats by as much.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "instruction counts are positive and far below 2^53"
)]
pub fn judge(budget: &Budget, measured: &[(Mode, f64)]) -> Result<String> {
    let mut report = String::new();
    let mut over = String::new();
    for &(mode, value) in measured {
        let allowed = budget.figure(mode) as f64;
        let change = value / allowed - 1.0;
        let line = format!("{} = {}", mode.name(), value.round() as u64);
        let _ = writeln!(
            report,
            "ai-proxy {:<6} {:>9.0} instructions per request, budget {:>9.0} ({:+.1}%)",
            mode.name(),
            value,
            allowed,
            change * 100.0
        );
        if change > TOLERANCE {
            let _ = writeln!(
                over,
                "ai-proxy {} requests cost {value:.0} instructions each, {:.1}% over the budget \
                 of {allowed:.0} (tolerance {:.0}%); if the cost is intended, say why in the \
                 commit and set the line in {BUDGET_FILE} to\n    {line}",
                mode.name(),
                change * 100.0,
                TOLERANCE * 100.0
            );
        } else if change < -TOLERANCE {
            let _ = writeln!(
                report,
                "    {:.1}% under budget: lock the gain in with `{line}` in {BUDGET_FILE}",
                -change * 100.0
            );
        }
    }
    if !over.is_empty() {
        bail!("{report}{over}(measured by `cargo xtask bench --instructions`)");
    }
    Ok(report)
}

/// The report: instructions per request, spread over repeats, and ai-proxy / nginx.
pub fn table(figures: &[Figure], repeats: u32) -> String {
    let mut out = format!(
        "user-space instructions per request (callgrind; {JSON_REQUESTS} json and \
         {STREAM_REQUESTS} stream requests, one connection, median of {repeats}; spread is \
         (max-min)/median)\n"
    );
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>8} {:>10} {:>8}",
        "", "json", "spread", "stream", "spread"
    );
    let find = |subject: &str, mode| {
        figures
            .iter()
            .find(|f| f.subject == subject && f.mode == mode)
    };
    for subject in SUBJECTS {
        let (Some(json), Some(stream)) = (
            find(subject.name, Mode::Json),
            find(subject.name, Mode::Stream),
        ) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{:<24} {:>10.0} {:>7.2}% {:>10.0} {:>7.2}%",
            subject.name,
            json.median(),
            json.spread() * 100.0,
            stream.median(),
            stream.spread() * 100.0
        );
    }
    for subject in SUBJECTS.iter().filter(|s| s.target == Target::Proxy) {
        let ratio = |mode| Some(find(subject.name, mode)?.median() / find("nginx", mode)?.median());
        if let (Some(json), Some(stream)) = (ratio(Mode::Json), ratio(Mode::Stream)) {
            let _ = writeln!(
                out,
                "{:<24} {:>9.2}× {:>8} {:>9.2}×",
                format!("{}/nginx", subject.name),
                json,
                "",
                stream
            );
        }
    }
    out
}

/// `cargo xtask bench --instructions [--check-budget]`.
pub fn run(bin: &Path, check_budget: bool, repeats: u32) -> Result<()> {
    let started = Instant::now();
    // Read before measuring: a broken budget file should not cost a measurement.
    let budget = check_budget.then(Budget::load).transpose()?;
    let subjects: &[Subject] = if check_budget { &[PROXY] } else { &SUBJECTS };
    let dir = std::env::temp_dir().join(format!("ai-proxy-instructions-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let figures = match measure(&dir, bin, subjects, repeats) {
        Ok(figures) => figures,
        Err(e) => {
            eprintln!(
                "instructions: the servers' logs are kept in {}",
                dir.display()
            );
            return Err(e);
        }
    };
    let _ = fs::remove_dir_all(&dir);
    print!("{}", table(&figures, repeats));
    if let Some(budget) = budget {
        let measured: Vec<(Mode, f64)> = figures
            .iter()
            .filter(|f| f.subject == PROXY.name)
            .map(|f| (f.mode, f.median()))
            .collect();
        print!("{}", judge(&budget, &measured)?);
    }
    println!(
        "instructions: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_budget_parses() {
        let budget = Budget::load().unwrap();
        assert!(budget.json > 0 && budget.stream > 0, "{budget:?}");
    }

    #[test]
    fn a_budget_file_names_the_line_it_cannot_read() {
        let budget = Budget::parse("# c\njson = 1_000 # now\n\nstream=2000\n").unwrap();
        assert_eq!(
            budget,
            Budget {
                json: 1000,
                stream: 2000
            }
        );
        let err = Budget::parse("json = 1\nstream = lots\n").unwrap_err();
        assert!(format!("{err:#}").contains(":2:"), "{err:#}");
        assert!(Budget::parse("json = 1\n").is_err());
        assert!(Budget::parse("json = 1\nstream = 2\nhttps = 3\n").is_err());
    }

    #[test]
    fn over_budget_by_more_than_the_tolerance_fails_and_says_what_to_commit() {
        let budget = Budget {
            json: 100_000,
            stream: 500_000,
        };
        let err = judge(
            &budget,
            &[(Mode::Json, 105_100.0), (Mode::Stream, 500_000.0)],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("json = 105100"), "{err}");
        assert!(err.contains(BUDGET_FILE), "{err}");
        assert!(!err.contains("stream requests cost"), "{err}");
    }

    #[test]
    fn within_the_tolerance_passes_and_a_large_gain_is_pointed_out() {
        let budget = Budget {
            json: 100_000,
            stream: 500_000,
        };
        let report = judge(
            &budget,
            &[(Mode::Json, 104_900.0), (Mode::Stream, 400_000.0)],
        )
        .unwrap();
        assert!(report.contains("+4.9%"), "{report}");
        assert!(report.contains("`stream = 400000`"), "{report}");
    }

    #[test]
    fn callgrind_totals_are_read_and_per_request_subtracts_the_base() {
        let text = "version: 1\ncmd: nginx\nevents: Ir\nsummary: 1234\nfn=main\ntotals: 1234\n";
        assert_eq!(parse_total(text).unwrap(), 1234);
        assert!(parse_total("events: Ir\n").is_err());
        assert!((per_request(1_000, 21_000, 2_000).unwrap() - 10.0).abs() < f64::EPSILON);
        assert!(per_request(1_000, 900, 2_000).is_err());
    }

    #[test]
    fn each_run_adds_its_counted_requests_to_the_same_warm_up() {
        assert_eq!(Run::Base.requests(Mode::Json), WARMUP);
        assert_eq!(
            Run::Counted(Mode::Json).requests(Mode::Json),
            WARMUP + JSON_REQUESTS
        );
        assert_eq!(Run::Counted(Mode::Json).requests(Mode::Stream), WARMUP);
    }
}
