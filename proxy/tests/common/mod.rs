//! Test harness: mock upstreams that record what they receive, and the real `ai-proxy`
//! binary started on a fresh config directory with an OS-chosen port.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub const TOKEN: &str = "client-token-0123456789abcdef";
pub const OPENAI_KEY: &str = "sk-upstream-openai-secret-1234";
pub const ANTHROPIC_KEY: &str = "sk-ant-upstream-secret-5678";

/// What a mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How a mock answers.
#[derive(Clone)]
pub enum Reply {
    /// A JSON body with a status.
    Json(u16, &'static str),
    /// SSE events, one every `interval`; `then_abort` cuts the connection after them.
    Sse {
        chunks: Vec<&'static str>,
        interval: Duration,
        then_abort: bool,
    },
    /// Never answers.
    Hang,
    /// A JSON body with a status and extra response headers.
    WithHeaders(u16, &'static str, Vec<(&'static str, &'static str)>),
}

/// A mock upstream on 127.0.0.1:0.
#[derive(Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Set when a stream's receiver went away before all chunks were sent (the number of
    /// chunks sent), or when a hanging request was abandoned (0).
    pub cancelled: Arc<Mutex<Option<usize>>>,
}

impl Mock {
    pub async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mock = Self {
            addr,
            requests: Arc::default(),
            cancelled: Arc::default(),
        };
        let m = mock.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let m = m.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let m = m.clone();
                        let reply = reply.clone();
                        async move { Ok::<_, std::convert::Infallible>(m.answer(req, reply).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        mock
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        reply: Reply,
    ) -> Response<BoxBody<Bytes, std::io::Error>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        self.requests.lock().unwrap().push(Recorded {
            path: parts
                .uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            headers: parts.headers,
            body,
        });
        match reply {
            Reply::Json(status, body) => json_reply(status, body, &[]),
            Reply::WithHeaders(status, body, headers) => json_reply(status, body, &headers),
            Reply::Hang => {
                // Dropped with the request future when the proxy goes away.
                struct Abandoned(Arc<Mutex<Option<usize>>>);
                impl Drop for Abandoned {
                    fn drop(&mut self) {
                        *self.0.lock().unwrap() = Some(0);
                    }
                }
                let _guard = Abandoned(self.cancelled.clone());
                tokio::time::sleep(Duration::from_hours(1)).await;
                unreachable!()
            }
            Reply::Sse {
                chunks,
                interval,
                then_abort,
            } => {
                let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
                let cancelled = self.cancelled.clone();
                tokio::spawn(async move {
                    for (i, chunk) in chunks.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(interval).await;
                        }
                        if tx
                            .send(Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
                            .await
                            .is_err()
                        {
                            *cancelled.lock().unwrap() = Some(i);
                            return;
                        }
                    }
                    if then_abort {
                        let _ = tx.send(Err(std::io::Error::other("mock abort"))).await;
                    }
                });
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/event-stream")
                    .body(BodyExt::boxed(ChannelBody(rx)))
                    .unwrap()
            }
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn last(&self) -> Recorded {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the mock got no request")
    }
}

fn json_reply(
    status: u16,
    body: &'static str,
    headers: &[(&'static str, &'static str)],
) -> Response<BoxBody<Bytes, std::io::Error>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    )
    .unwrap()
}

/// A response body fed by a bounded channel; dropping it (the client went away) makes the
/// sender fail, which is how the mock notices a cancellation.
struct ChannelBody(mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx)
    }
}

/// An address nothing listens on.
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh config directory.
pub fn config_dir(env: &str, yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ai-proxy-test-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), env).unwrap();
    std::fs::write(dir.join("provider-config.yaml"), yaml).unwrap();
    dir
}

/// The usual `.env`: port chosen by the OS, the test token, both upstream keys.
pub fn default_env(extra: &str) -> String {
    format!(
        "PORT=0\nBIND=127.0.0.1\nAUTH_TOKEN={TOKEN}\nOPENAI_API_KEY={OPENAI_KEY}\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\n{extra}"
    )
}

/// The binary under test: this build's, or `AI_PROXY_TEST_BIN` to measure another build
/// (e.g. the one before a change, for before/after figures).
pub fn bin_path() -> PathBuf {
    std::env::var_os("AI_PROXY_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_ai-proxy")),
        PathBuf::from,
    )
}

/// Runs the binary with `args` and `--config-dir dir`: exit code, stdout, stderr.
pub fn run(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = bin()
        .args(args)
        .arg("--config-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary under test.
pub fn bin() -> Command {
    let mut cmd = Command::new(bin_path());
    // Nothing from the developer's shell (a real OPENAI_API_KEY, PORT…) may leak in.
    cmd.env_clear();
    cmd
}

/// How to start the proxy.
pub struct Launch {
    /// Run it under `prlimit --nofile=N:N`.
    pub nofile: Option<u64>,
    /// Read its stdout (false: stop reading after the `listening` line).
    pub drain_stdout: bool,
    /// Extra process environment.
    pub env: Vec<(String, String)>,
}

impl Default for Launch {
    fn default() -> Self {
        Self {
            nofile: None,
            drain_stdout: true,
            env: Vec::new(),
        }
    }
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A running proxy.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Proxy {
    /// Starts `ai-proxy serve` on a new config directory and waits for it to listen.
    pub fn start(env: &str, yaml: &str) -> Self {
        let dir = config_dir(env, yaml);
        Self::start_in(dir)
    }

    pub fn start_in(dir: PathBuf) -> Self {
        Self::launch(dir, &Launch::default())
    }

    /// Starts the proxy as `how` says.
    pub fn launch(dir: PathBuf, how: &Launch) -> Self {
        let mut cmd = match how.nofile {
            // prlimit execs the proxy: the pid stays the proxy's.
            Some(n) => {
                let mut cmd = Command::new("prlimit");
                cmd.env_clear()
                    .arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(bin_path());
                cmd
            }
            None => bin(),
        };
        cmd.envs(how.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .args(["serve", "--config-dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = how.drain_stdout;
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let text = line.trim_end().to_owned();
                line.clear();
                let listening = text.contains("\"msg\":\"listening\"");
                if listening {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let _ = tx.send(v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                }
                l.lock().unwrap().push(text);
                if listening && !drain {
                    // Hold the pipe open and read no more: stdout is now stuck.
                    let _keep = reader;
                    loop {
                        std::thread::park();
                    }
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!(
                "the proxy did not start; stderr: {}",
                stderr.lock().unwrap()
            );
        };
        Self {
            child,
            addr,
            dir,
            lines,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn logs(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Request log lines as JSON.
    pub fn request_logs(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("\"msg\":\"request\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.1 client.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new())
}

/// Sends a request; `headers` are (name, value) pairs.
pub async fn send(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Incoming> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client()
        .request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap()
}

/// POSTs JSON with the Bearer token and returns status, headers and body text.
pub async fn post(url: &str, body: &str) -> (u16, HeaderMap, String) {
    let auth = format!("Bearer {TOKEN}");
    let resp = send(
        url,
        "POST",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Reads a response body frame by frame, with the time each frame arrived.
pub async fn frames(resp: Response<Incoming>) -> (Vec<(Instant, Bytes)>, Option<String>) {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.push((Instant::now(), data));
                }
            }
            Some(Err(e)) => return (out, Some(e.to_string())),
            None => return (out, None),
        }
    }
}

/// YAML for one openai provider per (name, base) plus extra provider fields.
pub fn yaml(providers: &[(&str, &str, &str, &str)], models: &str) -> String {
    let mut s = String::from("providers:\n");
    for (name, kind, base, extra) in providers {
        let key = if *kind == "anthropic" {
            "ANTHROPIC_API_KEY"
        } else {
            "OPENAI_API_KEY"
        };
        let _ = write!(
            s,
            "  - name: {name}\n    kind: {kind}\n    base_url: {base}\n    api_key: ${{{key}}}\n"
        );
        for line in extra.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
    s.push_str("models:\n");
    s.push_str(models);
    s
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn header_map_values(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// `GET /metrics` as text; empty when it does not answer within 5 s (so a test against a
/// stuck proxy fails on its assertion instead of hanging).
pub async fn metrics_text(proxy: &Proxy) -> String {
    let fetch = async {
        let resp = send(&proxy.url("/metrics"), "GET", &[("x-api-key", TOKEN)], "").await;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .unwrap_or_default()
}

/// The value of the metric line starting with `series` (name and labels), or `None`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
