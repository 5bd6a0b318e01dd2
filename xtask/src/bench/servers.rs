//! The processes under test: the nginx mock upstream, the nginx baseline and ai-proxy, each
//! started in the bench's temporary directory, optionally pinned to a core, and stopped by PID.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::{http, procfs};

const MOCK_CONF: &str = include_str!("../../bench/mock.nginx.conf");
const BASELINE_CONF: &str = include_str!("../../bench/baseline.nginx.conf");
const TLS_FRONT_CONF: &str = include_str!("../../bench/tls-front.nginx.conf");
const CHAT_JSON: &str = include_str!("../../bench/chat-completion.json");
const CHAT_SSE: &str = include_str!("../../bench/chat-stream.sse");

/// The fixed non-streaming answer of the mock, so checks can recognise it after a proxy hop.
pub const MOCK_JSON_MARKER: &str = "\"id\":\"chatcmpl-bench\"";

/// A spawned server. Dropping it stops it.
pub struct Server {
    pub name: String,
    pub port: u16,
    child: Child,
    stderr_log: PathBuf,
    /// nginx: count the workers under the master too.
    with_children: bool,
    /// How long a stop may take before the process is killed.
    stop_within: Duration,
}

/// How a server is launched: pinned to a core or not, and under a wrapper such as valgrind
/// (`--instructions`), which slows start and stop many times over.
#[derive(Clone, Default)]
pub struct Launch {
    pub pin: Option<usize>,
    /// The wrapper's program and arguments, before the server's program.
    pub wrapper: Vec<OsString>,
}

impl Launch {
    pub fn pinned(pin: Option<usize>) -> Self {
        Self {
            pin,
            wrapper: Vec::new(),
        }
    }

    fn command(&self, program: &Path) -> Command {
        match self.wrapper.split_first() {
            None => command(program, self.pin),
            Some((wrapper, args)) => {
                let mut cmd = command(Path::new(wrapper), self.pin);
                cmd.args(args).arg(program);
                cmd
            }
        }
    }

    /// How long start-up and a clean stop may take.
    fn patience(&self) -> Duration {
        if self.wrapper.is_empty() {
            Duration::from_secs(5)
        } else {
            Duration::from_mins(2)
        }
    }
}

/// `program` run through `taskset -c CPU` when a core is given.
pub fn command(program: &Path, pin: Option<usize>) -> Command {
    match pin {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid()];
        if self.with_children {
            pids.extend(procfs::children(self.pid()));
        }
        pids
    }

    /// CPU ticks of the process (and, for nginx, its workers).
    pub fn cpu_ticks(&self) -> Result<u64> {
        self.pids().into_iter().map(procfs::cpu_ticks).sum()
    }

    /// RSS in KiB of the process (and, for nginx, master plus workers: shared pages count twice,
    /// which favours ai-proxy slightly less than nginx's own accounting would).
    pub fn rss_kib(&self) -> Result<u64> {
        self.pids().into_iter().map(procfs::rss_kib).sum()
    }

    /// Fails, with the end of the server's stderr, if it has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its stderr:\n{}",
                self.name,
                self.stderr_tail()
            );
        }
        Ok(())
    }

    pub fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SIGTERM first: nginx's master then stops its workers, ai-proxy shuts down cleanly.
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < self.stop_within {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Escapes text for a single-quoted nginx string.
fn nginx_quote(text: &str) -> Result<String> {
    if text.contains('$') {
        bail!("bench fixture contains `$`, which nginx would read as a variable");
    }
    Ok(text
        .replace('\\', "\\\\")
        .replace('\'', "\\'")
        .replace('\n', "\\n"))
}

fn start_nginx(name: &str, dir: &Path, conf: &str, port: u16, launch: &Launch) -> Result<Server> {
    let conf_path = dir.join(format!("{name}.conf"));
    fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;
    let stderr_log = dir.join(format!("{name}-stderr.log"));
    let stderr = File::create(&stderr_log)?;
    let child = launch
        .command(Path::new("nginx"))
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join(format!("{name}-error.log")))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .context("starting nginx (install it with `apt-get install nginx wrk`)")?;
    let mut server = Server {
        name: name.to_owned(),
        port,
        child,
        stderr_log,
        with_children: true,
        stop_within: launch.patience(),
    };
    if let Err(e) = http::wait_listening(port, launch.patience()) {
        server.ensure_running()?;
        return Err(e.context(format!("{name} nginx did not start")));
    }
    // The master listens before its worker exists; a CPU count without the worker is wrong.
    let start = Instant::now();
    while procfs::children(server.pid()).is_empty() {
        server.ensure_running()?;
        if start.elapsed() > launch.patience() {
            bail!(
                "{name} nginx has no worker process after {:?}",
                launch.patience()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}

/// The mock upstream: fixed chat.completion JSON and a fixed SSE stream.
pub fn start_mock(dir: &Path, pin: Option<usize>) -> Result<Server> {
    let port = http::free_port()?;
    let conf = MOCK_CONF
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@CHAT_JSON@", &nginx_quote(CHAT_JSON.trim_end())?)
        .replace("@CHAT_SSE@", &nginx_quote(CHAT_SSE)?);
    start_nginx("mock", dir, &conf, port, &Launch::pinned(pin))
}

/// nginx as a plain keepalive reverse proxy to the mock.
pub fn start_baseline(dir: &Path, mock_port: u16, launch: &Launch) -> Result<Server> {
    let port = http::free_port()?;
    let conf = BASELINE_CONF
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@MOCK_PORT@", &mock_port.to_string());
    start_nginx("baseline", dir, &conf, port, launch)
}

/// The nginx baseline serving HTTPS with `cert` and `key` (PEM files): the same reverse
/// proxy, its listener with `ssl`.
pub fn start_baseline_tls(
    dir: &Path,
    mock_port: u16,
    (cert, key): (&Path, &Path),
    launch: &Launch,
) -> Result<Server> {
    const LISTEN: &str = "listen 127.0.0.1:@PORT@ backlog=4096;";
    ensure!(
        BASELINE_CONF.contains(LISTEN),
        "baseline.nginx.conf has no `{LISTEN}` line for the TLS baseline to add `ssl` to"
    );
    let port = http::free_port()?;
    let listen = format!(
        "listen 127.0.0.1:@PORT@ ssl backlog=4096;\n        ssl_certificate {};\n        \
         ssl_certificate_key {};",
        cert.display(),
        key.display()
    );
    let conf = BASELINE_CONF
        .replace(LISTEN, &listen)
        .replace("@PREFIX@/baseline", "@PREFIX@/baseline-tls")
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@MOCK_PORT@", &mock_port.to_string());
    start_nginx("baseline-tls", dir, &conf, port, launch)
}

/// nginx taking plain requests and sending them over TLS to ai-proxy on `proxy_port`: the
/// client side of the instructions' TLS point, run natively so it is not counted.
pub fn start_tls_front(dir: &Path, proxy_port: u16) -> Result<Server> {
    let port = http::free_port()?;
    let conf = TLS_FRONT_CONF
        .replace("@PREFIX@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@PROXY_PORT@", &proxy_port.to_string());
    start_nginx("tls-front", dir, &conf, port, &Launch::default())
}

/// Spawns ai-proxy on a fresh port without waiting for it.
pub fn spawn_proxy(name: &str, bin: &Path, config_dir: &Path, launch: &Launch) -> Result<Server> {
    let port = http::free_port()?;
    let stderr_log = config_dir.join(format!("{name}-{port}-stderr.log"));
    let child = launch
        .command(bin)
        .arg("serve")
        .arg("--config-dir")
        .arg(config_dir)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        // One JSON log line per request is part of the proxy's cost; the bytes go nowhere.
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_log)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Server {
        name: name.to_owned(),
        port,
        child,
        stderr_log,
        with_children: false,
        stop_within: launch.patience(),
    })
}

/// Starts ai-proxy and waits for `/ping` to answer 200 (wrapped: for its listening socket).
pub fn start_proxy(name: &str, bin: &Path, config_dir: &Path, launch: &Launch) -> Result<Server> {
    let mut server = spawn_proxy(name, bin, config_dir, launch)?;
    // Under a wrapper (callgrind) every probe would be counted, and their number varies:
    // there, listening is enough, as a request sent now waits in the backlog.
    let ready = |port| {
        if launch.wrapper.is_empty() {
            http::ping_ok(port)
        } else {
            http::listening(port)
        }
    };
    let start = Instant::now();
    while !ready(server.port) {
        server.ensure_running()?;
        if start.elapsed() > 2 * launch.patience() {
            bail!(
                "{name} does not answer GET /ping with 200 on port {} after {:?}; its stderr:\n{}",
                server.port,
                2 * launch.patience(),
                server.stderr_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}

/// Starts another gateway (a peer, e.g. `litellm`) from `cmd`, which must make it listen on
/// `port`, and waits until `ready` (its first relayed answer) holds, up to `patience`. Counts
/// its children too, in case it forks workers.
pub fn start_program(
    name: &str,
    mut cmd: Command,
    port: u16,
    dir: &Path,
    ready: impl Fn() -> bool,
    patience: Duration,
) -> Result<Server> {
    let stderr_log = dir.join(format!("{name}-{port}-stderr.log"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{name}-{port}-stdout.log")))?)
        .stderr(File::create(&stderr_log)?)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut server = Server {
        name: name.to_owned(),
        port,
        child,
        stderr_log,
        with_children: true,
        stop_within: Duration::from_secs(10),
    };
    let start = Instant::now();
    while !ready() {
        server.ensure_running()?;
        if start.elapsed() > patience {
            bail!(
                "{name} did not relay the mock's answer on port {port} within {patience:?}; its \
                 stderr:\n{}",
                server.stderr_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}
