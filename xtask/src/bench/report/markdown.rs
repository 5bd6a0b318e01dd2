//! The results as Markdown: the tables printed to stdout and written into docs/benchmarks.md.

use std::fmt::Write as _;

use super::goals::Check;
use super::stats::{MIB, Point, kib_to_mib, median, percentile};
use crate::bench::variants::{CONNECTIONS, Variant, VariantSample};
use crate::bench::{Mode, Results, Sample, Target};

fn opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "–".to_owned(),
    }
}

/// The results section in Markdown: printed to stdout and written into docs/benchmarks.md.
pub fn markdown(results: &Results, points: &[Point], checks: &[Check]) -> String {
    let mut s = String::new();
    load_table(&mut s, results, points);
    variants_table(&mut s, results);
    ttfb_table(&mut s, results);
    footprint_table(&mut s, results);
    goals_table(&mut s, checks);
    allocators_table(&mut s, results);
    s
}

/// How the run was made, then one row per (mode, concurrency, target).
fn load_table(s: &mut String, results: &Results, points: &[Point]) {
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
}

/// The TLS and translated points, each with what it costs over its plain point.
fn variants_table(s: &mut String, results: &Results) {
    let samples = &results.measured.variants;
    if samples.is_empty() {
        return;
    }
    let med = |v: Variant, f: fn(&VariantSample) -> f64| {
        let values: Vec<f64> = samples.iter().filter(|x| x.variant == v).map(f).collect();
        median(&values)
    };
    let cpu = |v| med(v, VariantSample::cpu_us_per_request);
    let _ = writeln!(
        s,
        "\nTLS and translation (non-streaming, c={CONNECTIONS}, the same rounds; TLS: wrk over \
         HTTPS to nginx `listen ... ssl` and to ai-proxy with `TLS_CERT_FILE`, a self-signed P-256 \
         certificate; translated: the same conversation as an Anthropic `POST /v1/messages` to the \
         same `openai`-kind mock provider):\n"
    );
    s.push_str("| point | req/s | p50 µs | CPU µs/req | over its plain point |\n");
    s.push_str("|---|---:|---:|---:|---|\n");
    for v in Variant::ALL {
        let over = if v.plain() == v {
            "–".to_owned()
        } else {
            format!(
                "+{:.1} µs/req ({:.2}×)",
                cpu(v) - cpu(v.plain()),
                cpu(v) / cpu(v.plain())
            )
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.1} | {over} |",
            v.name(),
            med(v, |x| x.wrk.rps),
            med(v, |x| x.wrk.p50_us),
            cpu(v),
        );
    }
    let _ = writeln!(
        s,
        "\nai-proxy / nginx CPU per request: {:.2}× plain, {:.2}× with TLS.",
        cpu(Variant::Proxy) / cpu(Variant::Nginx),
        cpu(Variant::ProxyTls) / cpu(Variant::NginxTls)
    );
}

/// Time to first SSE event per target, and what each adds to direct's.
fn ttfb_table(s: &mut String, results: &Results) {
    let plan = &results.plan;
    let _ = writeln!(
        s,
        "\nTime to first SSE event ({} sequential samples per target, fresh connection, from sending \
         the request to the first `data:` byte):\n",
        plan.ttfb_samples
    );
    s.push_str("| target | median µs | p90 µs | added median µs |\n|---|---:|---:|---:|\n");
    let direct = results
        .measured
        .ttfb
        .iter()
        .find(|t| t.target == Target::Direct)
        .map(|t| median(&t.samples_us));
    for t in &results.measured.ttfb {
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
}

/// The proxy's memory, cold start and sizes.
fn footprint_table(s: &mut String, results: &Results) {
    let mem = &results.measured.memory;
    let cold = &results.measured.cold_start_ms;
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
        "| RSS after warm-up → after {} more requests → after {} s idle | {:.1} → {:.1} → {:.1} MiB |",
        mem.leak_requests,
        mem.idle_seconds,
        kib_to_mib(mem.warm_rss_kib),
        kib_to_mib(mem.after_rss_kib),
        kib_to_mib(mem.after_idle_rss_kib)
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
            results.measured.sizes.binary_bytes as f64 / MIB
        );
        let image = results.measured.sizes.image_bytes.map_or_else(
            || results.measured.sizes.image_note.clone(),
            |b| format!("{:.2} MiB", b as f64 / MIB),
        );
        let _ = writeln!(s, "| `FROM scratch` image with the binary | {image} |");
    }
}

/// Every goal with what was measured, PASS or MISS.
fn goals_table(s: &mut String, checks: &[Check]) {
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
}

/// With `--compare-allocators`: each allocator build side by side.
fn allocators_table(s: &mut String, results: &Results) {
    let plan = &results.plan;
    if !results.measured.allocators.is_empty() {
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
        for a in &results.measured.allocators {
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
}
