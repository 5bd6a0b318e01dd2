//! The measurements on the running fixture: load points, time to first event, the leak
//! check, open streams, cold starts and the allocator comparison.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use super::fixture::Bench;
use super::host;
use super::plan::{Mode, TOKEN, Target, request_body};
use super::servers::{self, Server};
use super::{AllocatorFigures, Measured, Memory, Sample, Sizes, Ttfb, http, wrk};

/// The leak check's quiet time after its load: longer than jemalloc's `dirty_decay_ms` (10 s),
/// after which its background thread (proxy/src/allocator.rs) has purged the pages freed
/// during the load.
const LEAK_IDLE: Duration = Duration::from_secs(15);

impl Bench<'_> {
    pub fn measure(
        &mut self,
        bin: &Path,
        allocator_bins: &[(String, PathBuf)],
    ) -> Result<Measured> {
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
        let variants = self.variants(bin, &proxy)?;
        let ttfb = self.ttfb(&proxy)?;
        self.leak_check(&proxy, &mut memory)?;
        memory.streams = self.plan.streams;
        memory.streams_rss_kib = self.open_streams(&mut proxy, self.plan.streams)?;
        drop(proxy);
        let cold_start_ms = self.cold_starts(bin)?;
        let sizes = Sizes {
            binary_bytes,
            ..host::image_size(bin, self.plan.image)
        };
        let allocators = self.compare_allocators(allocator_bins)?;
        self.mock.ensure_running()?;
        self.baseline.ensure_running()?;
        Ok(Measured {
            samples,
            ttfb,
            memory,
            cold_start_ms,
            sizes,
            allocators,
            variants,
        })
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

    /// RSS after warm-up against RSS after `leak_requests` more requests, half streaming, and
    /// again after `LEAK_IDLE` without requests: growth that the allocator hands back while idle
    /// is retention (dirty pages awaiting their purge), growth that stays is a leak.
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
        std::thread::sleep(LEAK_IDLE);
        memory.idle_seconds = LEAK_IDLE.as_secs();
        memory.after_idle_rss_kib = proxy.rss_kib()?;
        println!(
            "bench: RSS {} KiB after warm-up, {} KiB after {done} more requests, {} KiB after {} s idle",
            memory.warm_rss_kib,
            memory.after_rss_kib,
            memory.after_idle_rss_kib,
            memory.idle_seconds
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
            let mut server = servers::spawn_proxy(
                "ai-proxy (cold start)",
                bin,
                &self.dir,
                &servers::Launch::pinned(self.pins.proxies),
            )?;
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
