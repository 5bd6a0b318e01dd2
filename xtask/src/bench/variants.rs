//! The variant points of the timing bench: TLS between client and proxy, and a translated
//! request, each next to its plain counterpart at concurrency 64 (non-streamed), in the same
//! rounds. TLS is measured for nginx too (the same reverse proxy behind `listen ... ssl`), so
//! the cost of TLS can be compared; the translated point sends the same conversation in
//! Anthropic's Messages shape to the same `openai`-kind mock provider.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use serde::Serialize;

use super::fixture::{Bench, is_translated_answer, write_tls_config};
use super::plan::{Mode, TOKEN, messages_body};
use super::servers::{self, Launch, Server};
use super::{http, wrk};

/// Concurrency of the variant points: the one the CPU target is set at.
pub const CONNECTIONS: u32 = 64;

/// One of the variant points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Nginx,
    NginxTls,
    Proxy,
    ProxyTls,
    ProxyTranslated,
}

impl Variant {
    pub const ALL: [Self; 5] = [
        Self::Nginx,
        Self::NginxTls,
        Self::Proxy,
        Self::ProxyTls,
        Self::ProxyTranslated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::NginxTls => "nginx + TLS",
            Self::Proxy => "ai-proxy",
            Self::ProxyTls => "ai-proxy + TLS",
            Self::ProxyTranslated => "ai-proxy translated",
        }
    }

    /// The plain point this one is compared with.
    pub fn plain(self) -> Self {
        match self {
            Self::Nginx | Self::NginxTls => Self::Nginx,
            _ => Self::Proxy,
        }
    }
}

/// One wrk run of a variant point.
#[derive(Clone, Debug, Serialize)]
pub struct VariantSample {
    pub round: u32,
    pub variant: Variant,
    pub wrk: wrk::Outcome,
    pub cpu_s: f64,
}

impl VariantSample {
    #[allow(
        clippy::cast_precision_loss,
        reason = "request counts stay far below 2^53"
    )]
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu_s * 1e6 / self.wrk.requests as f64
    }
}

/// The servers the variants need besides the fixture's: nginx and ai-proxy with TLS on.
struct TlsServers {
    nginx: Server,
    proxy: Server,
}

impl Bench<'_> {
    /// Every variant point, `plan.rounds` times, the order rotating each round.
    pub fn variants(&self, bin: &Path, proxy: &Server) -> Result<Vec<VariantSample>> {
        let tls_dir = self.dir.join("tls");
        let (cert, key) = write_tls_config(&self.dir, &tls_dir)?;
        let launch = Launch::pinned(self.pins.proxies);
        let tls = TlsServers {
            nginx: servers::start_baseline_tls(&self.dir, self.mock.port, (&cert, &key), &launch)?,
            proxy: servers::spawn_proxy("ai-proxy-tls", bin, &tls_dir, &launch)?,
        };
        http::wait_listening(tls.proxy.port, Duration::from_secs(5))?;
        check_translated(proxy)?;
        let messages = self.dir.join("messages.lua");
        let headers = [("anthropic-version", "2023-06-01")];
        let body = messages_body(Mode::Json.model(), false);
        wrk::write_script(&messages, &body, TOKEN, &headers)?;
        let chat = &self.scripts[0];
        let mut samples = Vec::new();
        for round in 0..self.plan.rounds {
            for i in 0..Variant::ALL.len() {
                let variant = Variant::ALL[(i + round as usize) % Variant::ALL.len()];
                let (server, scheme, path, script) = match variant {
                    Variant::Nginx => (&self.baseline, "http", Mode::Json.mock_path(), chat),
                    Variant::NginxTls => (&tls.nginx, "https", Mode::Json.mock_path(), chat),
                    Variant::Proxy => (proxy, "http", "/v1/chat/completions", chat),
                    Variant::ProxyTls => (&tls.proxy, "https", "/v1/chat/completions", chat),
                    Variant::ProxyTranslated => (proxy, "http", "/v1/messages", &messages),
                };
                let url = format!("{scheme}://127.0.0.1:{}{path}", server.port);
                let sample = self.variant_load(variant, server, &url, script, round)?;
                println!(
                    "bench: round {} json   c={CONNECTIONS:<3} {:<20} {:>8.0} req/s  p50 {:>7.0} µs  \
                     CPU {:.1} µs/req",
                    round + 1,
                    variant.name(),
                    sample.wrk.rps,
                    sample.wrk.p50_us,
                    sample.cpu_us_per_request()
                );
                samples.push(sample);
            }
        }
        Ok(samples)
    }

    fn variant_load(
        &self,
        variant: Variant,
        server: &Server,
        url: &str,
        script: &Path,
        round: u32,
    ) -> Result<VariantSample> {
        let before = server.cpu_ticks()?;
        let wrk = wrk::run(&wrk::Load {
            script,
            url,
            connections: CONNECTIONS,
            threads: self.pins.wrk_threads(CONNECTIONS),
            seconds: self.plan.seconds,
            pin: self.pins.load,
        })?;
        let after = server.cpu_ticks()?;
        let what = variant.name();
        ensure!(wrk.requests > 0, "{what}: wrk completed no requests");
        ensure!(
            wrk.non_2xx == 0 && wrk.socket_errors == 0,
            "{what}: {} non-2xx answers and {} socket errors in {} requests",
            wrk.non_2xx,
            wrk.socket_errors,
            wrk.requests
        );
        #[allow(
            clippy::cast_precision_loss,
            reason = "tick counts stay far below 2^53"
        )]
        let cpu_s = (after - before) as f64 / self.clk_tck as f64;
        Ok(VariantSample {
            round,
            variant,
            wrk,
            cpu_s,
        })
    }
}

/// The translated request answers with the mock's answer in Anthropic's shape.
fn check_translated(proxy: &Server) -> Result<()> {
    let body = messages_body(Mode::Json.model(), false);
    let req = http::post_with(
        "/v1/messages",
        Some(TOKEN),
        &[("anthropic-version", "2023-06-01")],
        &body,
        false,
    );
    let resp = http::exchange(proxy.port, &req, Duration::from_secs(5))?;
    ensure!(
        is_translated_answer(Mode::Json, &resp),
        "ai-proxy did not answer a translated request with the mock's answer: status {}\n{}",
        resp.status,
        resp.body_text().chars().take(500).collect::<String>()
    );
    Ok(())
}
