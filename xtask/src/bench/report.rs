//! The bench's output: medians per point, targets checked against nginx from the same run,
//! Markdown tables (stdout and docs/benchmarks.md), raw JSON and a hand-drawn SVG chart.

use std::fmt::Write as _;
use std::fs;

use anyhow::{Context, Result};

use super::json::Json;
use super::{Mode, Results, Sample, Target};
use crate::paths;

pub const DOCS_BEGIN: &str = "<!-- BEGIN cargo xtask bench --write-docs -->";
pub const DOCS_END: &str = "<!-- END cargo xtask bench --write-docs -->";

const MIB: f64 = 1024.0 * 1024.0;

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile; NaN for no values.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[allow(clippy::cast_precision_loss, reason = "KiB counts stay far below 2^53")]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Medians over rounds for one (mode, concurrency, target).
pub struct Point {
    pub mode: Mode,
    pub connections: u32,
    pub target: Target,
    pub rps: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    /// Median over rounds of this target's p50 minus direct's p50 in the same round.
    pub added_p50_us: Option<f64>,
    pub cpu_us: Option<f64>,
    pub mock_cpu_us: f64,
    pub rss_kib: Option<u64>,
}

pub fn points(results: &Results) -> Vec<Point> {
    let mut out = Vec::new();
    for mode in Mode::ALL {
        for &c in &results.plan.concurrency {
            for target in Target::ALL {
                let of = |t: Target| -> Vec<&Sample> {
                    results
                        .samples
                        .iter()
                        .filter(|s| s.mode == mode && s.connections == c && s.target == t)
                        .collect()
                };
                let mine = of(target);
                if mine.is_empty() {
                    continue;
                }
                let direct = of(Target::Direct);
                let col = |f: &dyn Fn(&Sample) -> f64| {
                    median(&mine.iter().map(|s| f(s)).collect::<Vec<_>>())
                };
                let added: Vec<f64> = mine
                    .iter()
                    .filter_map(|s| {
                        direct
                            .iter()
                            .find(|d| d.round == s.round)
                            .map(|d| s.wrk.p50_us - d.wrk.p50_us)
                    })
                    .collect();
                #[allow(
                    clippy::cast_precision_loss,
                    reason = "request counts stay far below 2^53"
                )]
                let mock_cpu = col(&|s| s.mock_cpu_s * 1e6 / s.wrk.requests as f64);
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "a median of KiB counts, far below 2^53"
                )]
                let rss = (target != Target::Direct)
                    .then(|| col(&|s| s.rss_kib.map_or(f64::NAN, |r| r as f64)) as u64);
                out.push(Point {
                    mode,
                    connections: c,
                    target,
                    rps: col(&|s| s.wrk.rps),
                    p50_us: col(&|s| s.wrk.p50_us),
                    p90_us: col(&|s| s.wrk.p90_us),
                    p99_us: col(&|s| s.wrk.p99_us),
                    added_p50_us: (target != Target::Direct).then(|| median(&added)),
                    cpu_us: (target != Target::Direct)
                        .then(|| col(&|s| s.cpu_us_per_request().unwrap_or(f64::NAN))),
                    mock_cpu_us: mock_cpu,
                    rss_kib: rss,
                });
            }
        }
    }
    out
}

fn find(points: &[Point], mode: Mode, c: u32, target: Target) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.mode == mode && p.connections == c && p.target == target)
}

/// One performance target from the issue, checked against the same run.
pub struct Check {
    pub name: String,
    pub measured: String,
    pub goal: String,
    pub pass: bool,
}

/// Ratio of the proxy's added cost to nginx's; nginx's is floored at 1 µs so a baseline that
/// adds nothing measurable does not divide by zero.
fn ratio(proxy: f64, nginx: f64) -> f64 {
    proxy / nginx.max(1.0)
}

#[allow(
    clippy::too_many_lines,
    reason = "one table or document, top to bottom"
)]
pub fn checks(results: &Results, points: &[Point]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |name: &str, measured: String, goal: &str, pass: bool| {
        out.push(Check {
            name: name.to_owned(),
            measured,
            goal: goal.to_owned(),
            pass,
        });
    };
    let top = results.plan.concurrency.iter().copied().max().unwrap_or(64);
    if let (Some(p), Some(n)) = (
        find(points, Mode::Json, top, Target::Proxy),
        find(points, Mode::Json, top, Target::Nginx),
    ) {
        let (pc, nc) = (p.cpu_us.unwrap_or(f64::NAN), n.cpu_us.unwrap_or(f64::NAN));
        let r = pc / nc;
        add(
            &format!("CPU per non-streaming request, c={top}"),
            format!("{pc:.1} µs vs nginx {nc:.1} µs = {r:.2}×"),
            "≤ 1.5× nginx",
            r <= 1.5,
        );
    }
    if let (Some(p), Some(n)) = (
        find(points, Mode::Json, 1, Target::Proxy),
        find(points, Mode::Json, 1, Target::Nginx),
    ) {
        let (pa, na) = (
            p.added_p50_us.unwrap_or(f64::NAN),
            n.added_p50_us.unwrap_or(f64::NAN),
        );
        let r = ratio(pa, na);
        add(
            "added p50 latency, c=1",
            format!("+{pa:.0} µs vs nginx +{na:.0} µs = {r:.2}×"),
            "≤ 2× nginx",
            r <= 2.0,
        );
    }
    let ttfb = |t: Target| {
        results
            .ttfb
            .iter()
            .find(|x| x.target == t)
            .map(|x| median(&x.samples_us))
    };
    if let (Some(d), Some(n), Some(p)) = (
        ttfb(Target::Direct),
        ttfb(Target::Nginx),
        ttfb(Target::Proxy),
    ) {
        let (pa, na) = (p - d, n - d);
        let r = ratio(pa, na);
        add(
            "streaming time to first byte, added",
            format!("+{pa:.0} µs vs nginx +{na:.0} µs = {r:.2}×"),
            "≤ 2× nginx",
            r <= 2.0,
        );
    }
    let m = &results.memory;
    let idle = kib_to_mib(m.idle_rss_kib);
    add(
        "idle RSS",
        format!("{idle:.1} MiB"),
        "≤ 10 MiB",
        idle <= 10.0,
    );
    let streams = kib_to_mib(m.streams_rss_kib);
    add(
        &format!("RSS with {} open streams", m.streams),
        format!("{streams:.1} MiB"),
        "≤ 64 MiB (1,000 streams)",
        streams <= 64.0,
    );
    #[allow(clippy::cast_precision_loss, reason = "KiB counts stay far below 2^53")]
    let growth = (m.after_rss_kib as f64 / m.warm_rss_kib as f64 - 1.0) * 100.0;
    add(
        &format!("RSS growth over {} requests", m.leak_requests),
        format!(
            "{:.1} → {:.1} MiB ({growth:+.1}%)",
            kib_to_mib(m.warm_rss_kib),
            kib_to_mib(m.after_rss_kib)
        ),
        "≤ +10%",
        growth <= 10.0,
    );
    #[allow(clippy::cast_precision_loss, reason = "a file size")]
    let size = results.sizes.binary_bytes as f64 / MIB;
    add(
        "stripped binary",
        format!("{size:.2} MiB"),
        "≤ 8 MiB",
        size <= 8.0,
    );
    let cold = median(&results.cold_start_ms);
    add(
        "cold start to first /ping 200",
        format!("{cold:.1} ms (median)"),
        "≤ 20 ms",
        cold <= 20.0,
    );
    out
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "–".to_owned(),
    }
}

/// The results section in Markdown: printed to stdout and written into docs/benchmarks.md.
#[allow(
    clippy::too_many_lines,
    reason = "one table or document, top to bottom"
)]
pub fn markdown(results: &Results, points: &[Point], checks: &[Check]) -> String {
    let mut s = String::new();
    let m = &results.machine;
    let plan = &results.plan;
    let _ = writeln!(s, "Command: `{}`\n", results.command);
    let _ = writeln!(
        s,
        "Machine: {}, {} cores visible, {} MiB RAM, Linux {}; {}; {}; {}.\n",
        m.cpu_model, m.cores, m.memory_mib, m.kernel, m.nginx, m.wrk, m.proxy_version
    );
    let _ = writeln!(
        s,
        "Load: wrk, {} s per run, {} round(s), targets back to back and rotated each round; medians \
         over rounds. Pinning: {}. CPU from /proc/PID/stat at {} ticks/s.\n",
        plan.seconds, plan.rounds, results.pinning, m.clk_tck
    );
    s.push_str("| mode | conns | target | req/s | p50 µs | p90 µs | p99 µs | added p50 µs | CPU µs/req | RSS MiB |\n");
    s.push_str("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in points {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            p.mode.name(),
            p.connections,
            p.target.name(),
            p.rps,
            p.p50_us,
            p.p90_us,
            p.p99_us,
            opt(p.added_p50_us, 0),
            opt(p.cpu_us, 1),
            opt(p.rss_kib.map(kib_to_mib), 1),
        );
    }
    let _ = writeln!(
        s,
        "\nTime to first SSE event ({} sequential samples per target, fresh connection, from sending \
         the request to the first `data:` byte):\n",
        plan.ttfb_samples
    );
    s.push_str("| target | median µs | p90 µs | added median µs |\n|---|---:|---:|---:|\n");
    let direct = results
        .ttfb
        .iter()
        .find(|t| t.target == Target::Direct)
        .map(|t| median(&t.samples_us));
    for t in &results.ttfb {
        let med = median(&t.samples_us);
        let added = (t.target != Target::Direct).then(|| direct.map_or(f64::NAN, |d| med - d));
        let _ = writeln!(
            s,
            "| {} | {med:.0} | {:.0} | {} |",
            t.target.name(),
            percentile(&t.samples_us, 90.0),
            opt(added, 0)
        );
    }
    let mem = &results.memory;
    let cold = &results.cold_start_ms;
    let _ = writeln!(s, "\nMemory, start-up and size (ai-proxy):\n");
    s.push_str("| measure | value |\n|---|---:|\n");
    let _ = writeln!(
        s,
        "| idle RSS (nginx baseline: master + worker) | {:.1} MiB ({:.1} MiB) |",
        kib_to_mib(mem.idle_rss_kib),
        kib_to_mib(mem.nginx_idle_rss_kib)
    );
    let _ = writeln!(
        s,
        "| RSS with {} open streams | {:.1} MiB |",
        mem.streams,
        kib_to_mib(mem.streams_rss_kib)
    );
    let _ = writeln!(
        s,
        "| RSS after warm-up → after {} more requests | {:.1} → {:.1} MiB |",
        mem.leak_requests,
        kib_to_mib(mem.warm_rss_kib),
        kib_to_mib(mem.after_rss_kib)
    );
    let _ = writeln!(
        s,
        "| cold start to first /ping 200 (median, min–max of {}) | {:.1} ms ({:.1}–{:.1}) |",
        cold.len(),
        median(cold),
        percentile(cold, 0.0),
        percentile(cold, 100.0)
    );
    #[allow(clippy::cast_precision_loss, reason = "file sizes")]
    {
        let _ = writeln!(
            s,
            "| stripped static binary | {:.2} MiB |",
            results.sizes.binary_bytes as f64 / MIB
        );
        let image = results.sizes.image_bytes.map_or_else(
            || results.sizes.image_note.clone(),
            |b| format!("{:.2} MiB", b as f64 / MIB),
        );
        let _ = writeln!(s, "| `FROM scratch` image with the binary | {image} |");
    }
    s.push_str("\nTargets (informational; the bench does not fail on a miss):\n\n");
    s.push_str("| target | measured | goal | result |\n|---|---|---|---|\n");
    for c in checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.name,
            c.measured,
            c.goal,
            if c.pass { "PASS" } else { "MISS" }
        );
    }
    if !results.allocators.is_empty() {
        let _ = writeln!(
            s,
            "\nAllocators (`--no-default-features` plus the feature; c=64, {} s × {} round(s), medians; \
             RSS with 1,000 open streams through the hold-open mock):\n",
            plan.seconds, plan.rounds
        );
        s.push_str(
            "| build | binary MiB | CPU µs/req json | CPU µs/req stream | req/s json | req/s stream | idle RSS MiB | RSS after load MiB | RSS 1,000 streams MiB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for a in &results.allocators {
            let col = |mode: Mode, f: &dyn Fn(&Sample) -> f64| {
                median(
                    &a.samples
                        .iter()
                        .filter(|s| s.mode == mode)
                        .map(f)
                        .collect::<Vec<_>>(),
                )
            };
            let cpu = |s: &Sample| s.cpu_us_per_request().unwrap_or(f64::NAN);
            #[allow(clippy::cast_precision_loss, reason = "file sizes")]
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
                a.name,
                a.binary_bytes as f64 / MIB,
                col(Mode::Json, &cpu),
                col(Mode::Stream, &cpu),
                col(Mode::Json, &|s| s.wrk.rps),
                col(Mode::Stream, &|s| s.wrk.rps),
                kib_to_mib(a.idle_rss_kib),
                kib_to_mib(a.loaded_rss_kib),
                kib_to_mib(a.streams_rss_kib),
            );
        }
    }
    s
}

fn sample_json(s: &Sample) -> Json {
    Json::Obj(vec![
        ("round", u64::from(s.round).into()),
        ("target", s.target.name().into()),
        ("mode", s.mode.name().into()),
        ("connections", u64::from(s.connections).into()),
        ("requests", s.wrk.requests.into()),
        ("seconds", s.wrk.seconds.into()),
        ("rps", s.wrk.rps.into()),
        ("p50_us", s.wrk.p50_us.into()),
        ("p90_us", s.wrk.p90_us.into()),
        ("p99_us", s.wrk.p99_us.into()),
        ("cpu_s", s.cpu_s.into()),
        ("cpu_us_per_request", s.cpu_us_per_request().into()),
        ("mock_cpu_s", s.mock_cpu_s.into()),
        ("rss_kib", s.rss_kib.into()),
    ])
}

#[allow(
    clippy::too_many_lines,
    reason = "one table or document, top to bottom"
)]
pub fn json(results: &Results, points: &[Point], checks: &[Check]) -> Json {
    let m = &results.machine;
    let plan = &results.plan;
    let nums = |v: &[f64]| Json::Arr(v.iter().map(|&x| x.into()).collect());
    Json::Obj(vec![
        ("command", results.command.as_str().into()),
        (
            "machine",
            Json::Obj(vec![
                ("cores", (m.cores as u64).into()),
                ("cpu_model", m.cpu_model.as_str().into()),
                ("kernel", m.kernel.as_str().into()),
                ("memory_mib", m.memory_mib.into()),
                ("nginx", m.nginx.as_str().into()),
                ("wrk", m.wrk.as_str().into()),
                ("ai_proxy", m.proxy_version.as_str().into()),
                ("clk_tck", m.clk_tck.into()),
            ]),
        ),
        (
            "plan",
            Json::Obj(vec![
                ("quick", plan.quick.into()),
                ("seconds", u64::from(plan.seconds).into()),
                ("rounds", u64::from(plan.rounds).into()),
                (
                    "concurrency",
                    Json::Arr(
                        plan.concurrency
                            .iter()
                            .map(|&c| u64::from(c).into())
                            .collect(),
                    ),
                ),
                ("pinning", results.pinning.as_str().into()),
            ]),
        ),
        (
            "points",
            Json::Arr(
                points
                    .iter()
                    .map(|p| {
                        Json::Obj(vec![
                            ("mode", p.mode.name().into()),
                            ("connections", u64::from(p.connections).into()),
                            ("target", p.target.name().into()),
                            ("rps", p.rps.into()),
                            ("p50_us", p.p50_us.into()),
                            ("p90_us", p.p90_us.into()),
                            ("p99_us", p.p99_us.into()),
                            ("added_p50_us", p.added_p50_us.into()),
                            ("cpu_us_per_request", p.cpu_us.into()),
                            ("mock_cpu_us_per_request", p.mock_cpu_us.into()),
                            ("rss_kib", p.rss_kib.into()),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "samples",
            Json::Arr(results.samples.iter().map(sample_json).collect()),
        ),
        (
            "ttfb",
            Json::Arr(
                results
                    .ttfb
                    .iter()
                    .map(|t| {
                        Json::Obj(vec![
                            ("target", t.target.name().into()),
                            ("median_us", median(&t.samples_us).into()),
                            ("p90_us", percentile(&t.samples_us, 90.0).into()),
                            ("samples_us", nums(&t.samples_us)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "memory",
            Json::Obj(vec![
                ("idle_rss_kib", results.memory.idle_rss_kib.into()),
                (
                    "nginx_idle_rss_kib",
                    results.memory.nginx_idle_rss_kib.into(),
                ),
                ("open_streams", (results.memory.streams as u64).into()),
                (
                    "open_streams_rss_kib",
                    results.memory.streams_rss_kib.into(),
                ),
                ("warm_rss_kib", results.memory.warm_rss_kib.into()),
                ("leak_check_requests", results.memory.leak_requests.into()),
                (
                    "after_leak_check_rss_kib",
                    results.memory.after_rss_kib.into(),
                ),
            ]),
        ),
        ("cold_start_ms", nums(&results.cold_start_ms)),
        (
            "sizes",
            Json::Obj(vec![
                ("binary_bytes", results.sizes.binary_bytes.into()),
                ("image_bytes", results.sizes.image_bytes.into()),
                ("image_note", results.sizes.image_note.as_str().into()),
            ]),
        ),
        (
            "checks",
            Json::Arr(
                checks
                    .iter()
                    .map(|c| {
                        Json::Obj(vec![
                            ("name", c.name.as_str().into()),
                            ("measured", c.measured.as_str().into()),
                            ("goal", c.goal.as_str().into()),
                            ("pass", c.pass.into()),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "allocators",
            Json::Arr(
                results
                    .allocators
                    .iter()
                    .map(|a| {
                        Json::Obj(vec![
                            ("name", a.name.as_str().into()),
                            ("binary_bytes", a.binary_bytes.into()),
                            ("idle_rss_kib", a.idle_rss_kib.into()),
                            ("loaded_rss_kib", a.loaded_rss_kib.into()),
                            ("streams_rss_kib", a.streams_rss_kib.into()),
                            (
                                "samples",
                                Json::Arr(a.samples.iter().map(sample_json).collect()),
                            ),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

const COLORS: [(&str, Target); 3] = [
    ("#9e9e9e", Target::Direct),
    ("#2e7d32", Target::Nginx),
    ("#1565c0", Target::Proxy),
];

fn color(target: Target) -> &'static str {
    COLORS
        .iter()
        .find(|(_, t)| *t == target)
        .map_or("#000", |(c, _)| c)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", us / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// Two panels drawn by hand: latency (log scale; bar = p50, ticks = p90 and p99) and CPU per
/// request, for every point.
#[allow(clippy::too_many_lines, reason = "one drawing, top to bottom")]
pub fn svg(results: &Results, points: &[Point]) -> String {
    let groups: Vec<(Mode, u32)> = Mode::ALL
        .iter()
        .flat_map(|&m| results.plan.concurrency.iter().map(move |&c| (m, c)))
        .collect();
    let (width, left, right) = (960.0, 80.0, 20.0);
    let plot_w = width - left - right;
    #[allow(clippy::cast_precision_loss, reason = "a handful of groups")]
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = group_w / 4.5;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="720" viewBox="0 0 {width} 720" font-family="sans-serif" font-size="12">"#
    );
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="24" font-size="16" font-weight="bold">ai-proxy vs nginx vs direct: {}</text>"#,
        esc(&results.command)
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="42" fill="#555">{}, {} cores, Linux {}; {}</text>"##,
        esc(&results.machine.cpu_model),
        results.machine.cores,
        esc(&results.machine.kernel),
        esc(&results.pinning)
    );
    for (i, (c, t)) in COLORS.iter().enumerate() {
        #[allow(clippy::cast_precision_loss, reason = "three legend entries")]
        let x = left + i as f64 * 120.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="52" width="12" height="12" fill="{c}"/><text x="{}" y="62">{}</text>"#,
            x + 16.0,
            t.name()
        );
    }

    // Panel 1: latency, log scale.
    let (top, height) = (90.0, 300.0);
    let values: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.p50_us, p.p99_us])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10()
        .floor();
    let hi = values
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y_of = |us: f64| top + height - (us.max(1.0).log10() - lo) / (hi - lo) * height;
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-weight="bold">Latency per request (log scale): bar = p50, ticks = p90 and p99</text>"#,
        top - 8.0
    );
    #[allow(clippy::cast_possible_truncation, reason = "decades of microseconds")]
    for e in (lo as i32)..=(hi as i32) {
        let us = 10f64.powi(e);
        let y = y_of(us);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - right,
            left - 6.0,
            y + 4.0,
            fmt_us(us)
        );
    }
    for (g, &(mode, c)) in groups.iter().enumerate() {
        #[allow(clippy::cast_precision_loss, reason = "a handful of groups")]
        let gx = left + g as f64 * group_w;
        for (i, target) in Target::ALL.iter().enumerate() {
            let Some(p) = find(points, mode, c, *target) else {
                continue;
            };
            #[allow(clippy::cast_precision_loss, reason = "three bars")]
            let x = gx + group_w * 0.1 + i as f64 * bar_w * 1.1;
            let y = y_of(p.p50_us);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}"><title>{} {} c={c}: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs</title></rect>"#,
                top + height - y,
                color(*target),
                target.name(),
                mode.name(),
                p.p50_us,
                p.p90_us,
                p.p99_us
            );
            for (v, w) in [(p.p90_us, 1.0), (p.p99_us, 2.0)] {
                let ty = y_of(v);
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#000" stroke-width="{w}"/>"##,
                    x + bar_w
                );
            }
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#000"/>"##,
                x + bar_w / 2.0,
                y,
                y_of(p.p99_us)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} c={c}</text>"#,
            gx + group_w / 2.0,
            top + height + 16.0,
            mode.name()
        );
    }

    // Panel 2: CPU per request, linear.
    let (top, height) = (460.0, 220.0);
    let max_cpu = points
        .iter()
        .filter_map(|p| p.cpu_us)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let step = nice_step(max_cpu / 4.0);
    let ceiling = (max_cpu / step).ceil() * step;
    let y_of = |v: f64| top + height - v / ceiling * height;
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="{}" font-weight="bold">CPU time per request of the proxy process (µs, from /proc/PID/stat)</text>"#,
        top - 8.0
    );
    let mut v = 0.0;
    while v <= ceiling + step / 2.0 {
        let y = y_of(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            width - right,
            left - 6.0,
            y + 4.0
        );
        v += step;
    }
    for (g, &(mode, c)) in groups.iter().enumerate() {
        #[allow(clippy::cast_precision_loss, reason = "a handful of groups")]
        let gx = left + g as f64 * group_w;
        for (i, target) in [Target::Nginx, Target::Proxy].iter().enumerate() {
            let Some(cpu) = find(points, mode, c, *target)
                .and_then(|p| p.cpu_us)
                .filter(|v| v.is_finite())
            else {
                continue;
            };
            #[allow(clippy::cast_precision_loss, reason = "two bars")]
            let x = gx + group_w * 0.2 + i as f64 * bar_w * 1.3;
            let y = y_of(cpu);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{cpu:.1}</text>"#,
                top + height - y,
                color(*target),
                x + bar_w / 2.0,
                y - 3.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} c={c}</text>"#,
            gx + group_w / 2.0,
            top + height + 16.0,
            mode.name()
        );
    }
    s.push_str("</svg>\n");
    s
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let base = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * base)
}

/// Prints the tables and writes target/bench/{results.json,benchmarks.svg}; with `write_docs`,
/// also docs/benchmarks.svg and the generated section of docs/benchmarks.md.
pub fn write_all(results: &Results, write_docs: bool) -> Result<()> {
    let points = points(results);
    let checks = checks(results, &points);
    let md = markdown(results, &points, &checks);
    println!("\n{md}");
    let out_dir = paths::target_dir().join("bench");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let json_path = out_dir.join("results.json");
    fs::write(&json_path, json(results, &points, &checks).render())
        .with_context(|| format!("writing {}", json_path.display()))?;
    let chart = svg(results, &points);
    let svg_path = out_dir.join("benchmarks.svg");
    fs::write(&svg_path, &chart).with_context(|| format!("writing {}", svg_path.display()))?;
    println!(
        "bench: raw results in {}, chart in {}",
        json_path.display(),
        svg_path.display()
    );
    if write_docs {
        let docs_svg = paths::docs_dir().join("benchmarks.svg");
        fs::write(&docs_svg, &chart).with_context(|| format!("writing {}", docs_svg.display()))?;
        let doc_path = paths::docs_dir().join("benchmarks.md");
        let doc = fs::read_to_string(&doc_path)
            .with_context(|| format!("reading {}", doc_path.display()))?;
        let updated = replace_section(&doc, &md).with_context(|| {
            format!(
                "{} needs the lines {DOCS_BEGIN} and {DOCS_END}",
                doc_path.display()
            )
        })?;
        fs::write(&doc_path, updated).with_context(|| format!("writing {}", doc_path.display()))?;
        println!(
            "bench: updated {} and {}",
            doc_path.display(),
            docs_svg.display()
        );
    }
    Ok(())
}

/// `doc` with the text between the markers replaced by `section`.
fn replace_section(doc: &str, section: &str) -> Option<String> {
    let start = doc.find(DOCS_BEGIN)? + DOCS_BEGIN.len();
    let end = start + doc[start..].find(DOCS_END)?;
    Some(format!(
        "{}\n\n{}\n{}",
        &doc[..start],
        section.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_and_skip_nan() {
        let v = [5.0, 1.0, f64::NAN, 3.0, 2.0, 4.0];
        assert!((median(&v) - 3.0).abs() < 1e-9);
        assert!((percentile(&v, 90.0) - 5.0).abs() < 1e-9);
        assert!((percentile(&v, 0.0) - 1.0).abs() < 1e-9);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn replaces_only_the_generated_section() {
        let doc = format!("intro\n{DOCS_BEGIN}\nold\n{DOCS_END}\noutro\n");
        let new = replace_section(&doc, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("intro\n{DOCS_BEGIN}\n\nnew table\n{DOCS_END}\noutro\n")
        );
        assert!(replace_section("no markers", "x").is_none());
    }

    #[test]
    fn nice_steps() {
        assert!((nice_step(3.2) - 5.0).abs() < 1e-9);
        assert!((nice_step(12.0) - 20.0).abs() < 1e-9);
        assert!((nice_step(0.7) - 1.0).abs() < 1e-9);
    }
}
