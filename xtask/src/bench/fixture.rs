//! The running fixture: the nginx mock upstream, the hold-open mock, the nginx baseline, the
//! proxy's config directory and wrk scripts; which port and path reach each target, and the
//! check that every target answers what the mock answers before anything is measured.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use super::holdmock::HoldMock;
use super::host::Pins;
use super::plan::{Mode, Plan, TOKEN, Target, request_body};
use super::servers::{self, Launch, Server};
use super::{http, wrk};

/// The running fixture: mock upstreams, the nginx baseline and the proxy's config directory.
pub struct Bench<'a> {
    pub dir: PathBuf,
    pub plan: &'a Plan,
    pub pins: Pins,
    pub clk_tck: u64,
    pub mock: Server,
    pub baseline: Server,
    pub hold: HoldMock,
    pub scripts: [PathBuf; 2],
}

impl<'a> Bench<'a> {
    pub fn setup(dir: &Path, plan: &'a Plan, pins: Pins, clk_tck: u64) -> Result<Self> {
        let mock = servers::start_mock(dir, pins.mock)?;
        let baseline = servers::start_baseline(dir, mock.port, &Launch::pinned(pins.proxies))?;
        let hold = HoldMock::start()?;
        write_proxy_config(dir, mock.port, hold.port)?;
        let scripts = Mode::ALL.map(|m| dir.join(format!("{}.lua", m.name())));
        for (mode, script) in Mode::ALL.iter().zip(&scripts) {
            wrk::write_script(
                script,
                &request_body(mode.model(), *mode == Mode::Stream),
                TOKEN,
                &[],
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

    pub fn start_proxy(&self, name: &str, bin: &Path) -> Result<Server> {
        servers::start_proxy(name, bin, &self.dir, &Launch::pinned(self.pins.proxies))
    }

    pub fn port(&self, target: Target, proxy: &Server) -> u16 {
        match target {
            Target::Direct => self.mock.port,
            Target::Nginx => self.baseline.port,
            Target::Proxy => proxy.port,
        }
    }

    pub fn path(target: Target, mode: Mode) -> &'static str {
        if target == Target::Proxy {
            "/v1/chat/completions"
        } else {
            mode.mock_path()
        }
    }

    /// Before measuring anything: each target answers what the mock answers, and the proxy
    /// refuses a wrong token (so it is really doing its job on the measured path).
    pub fn check_answers(&self, target: Target, proxy: &Server) -> Result<()> {
        let port = self.port(target, proxy);
        let timeout = Duration::from_secs(5);
        for mode in Mode::ALL {
            let body = request_body(mode.model(), mode == Mode::Stream);
            let req = http::post(Self::path(target, mode), Some(TOKEN), &body, false);
            let resp = http::exchange(port, &req, timeout)
                .with_context(|| format!("{} {} request", target.name(), mode.name()))?;
            let text = resp.body_text();
            ensure!(
                is_mock_answer(mode, &resp),
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
}

/// Whether `resp` is the mock's answer for `mode`, relayed whole.
pub fn is_mock_answer(mode: Mode, resp: &http::Response) -> bool {
    let text = resp.body_text();
    resp.status == 200
        && match mode {
            Mode::Json => text.contains(servers::MOCK_JSON_MARKER),
            Mode::Stream => text.contains("chat.completion.chunk") && text.contains("data: [DONE]"),
        }
}

/// Whether `resp` is the mock's answer translated to Anthropic's Messages shape.
pub fn is_translated_answer(mode: Mode, resp: &http::Response) -> bool {
    let text = resp.body_text();
    resp.status == 200
        && match mode {
            Mode::Json => {
                text.contains("\"type\":\"message\"")
                    && text.contains("fixed answer from the benchmark")
            }
            // The answer's text comes in deltas, one per mock event.
            Mode::Stream => {
                text.contains("event: content_block_delta") && text.contains("event: message_stop")
            }
        }
}

/// A self-signed certificate for 127.0.0.1 and its key in `dir` (`openssl`, P-256), for the
/// TLS points: (certificate, key).
pub fn write_tls_cert(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("bench-cert.pem"), dir.join("bench-key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl to make the bench's TLS certificate (apt-get install openssl)")?;
    ensure!(
        out.status.success(),
        "openssl could not make the bench's TLS certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((cert, key))
}

/// The proxy's config from `dir` in `to`, with TLS on (a manual, self-signed certificate);
/// returns the certificate and key files.
pub fn write_tls_config(dir: &Path, to: &Path) -> Result<(PathBuf, PathBuf)> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let (cert, key) = write_tls_cert(to)?;
    let mut env = fs::read_to_string(dir.join(".env")).context("reading the bench .env")?;
    let _ = write!(
        env,
        "TLS_CERT_FILE={}\nTLS_KEY_FILE={}\n",
        cert.display(),
        key.display()
    );
    fs::write(to.join(".env"), env).context("writing the bench TLS .env")?;
    fs::copy(
        dir.join("provider-config.yaml"),
        to.join("provider-config.yaml"),
    )
    .context("copying the bench provider-config.yaml")?;
    Ok((cert, key))
}

/// The proxy's config directory: three openai-kind providers on the mocks.
pub fn write_proxy_config(dir: &Path, mock_port: u16, hold_port: u16) -> Result<()> {
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
