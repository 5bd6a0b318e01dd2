//! The performance goals, each checked against the same run (ratios to nginx where the goal is
//! relative); informational: the bench does not fail on a miss.

use serde::Serialize;

use super::stats::{MIB, Point, find, kib_to_mib, median};
use crate::bench::{Mode, Results, Target};

/// One performance goal and what this run measured.
#[derive(Serialize)]
pub struct Check {
    pub name: String,
    pub measured: String,
    pub goal: String,
    pub pass: bool,
}

impl Check {
    fn new(name: &str, measured: String, goal: &str, pass: bool) -> Self {
        Self {
            name: name.to_owned(),
            measured,
            goal: goal.to_owned(),
            pass,
        }
    }
}

/// Issue 14's targets, each a ratio to nginx's figure in the same run (or, for RSS, a growth
/// in percent).
const CPU_RATIO: f64 = 1.25;
const ADDED_P50_RATIO: f64 = 1.5;
const TTFB_RATIO: f64 = 1.5;
const RSS_GROWTH_PERCENT: f64 = 5.0;

/// Ratio of the proxy's added cost to nginx's; nginx's is floored at 1 µs so a baseline that
/// adds nothing measurable does not divide by zero.
fn ratio(proxy: f64, nginx: f64) -> f64 {
    proxy / nginx.max(1.0)
}

/// Every goal, checked against this run.
pub fn checks(results: &Results, points: &[Point]) -> Vec<Check> {
    let mut out = speed_checks(results, points);
    out.extend(footprint_checks(results));
    out
}

/// CPU and latency, each as a ratio to nginx's in the same run.
fn speed_checks(results: &Results, points: &[Point]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |name: &str, measured: String, goal: &str, pass: bool| {
        out.push(Check::new(name, measured, goal, pass));
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
            &format!("≤ {CPU_RATIO}× nginx"),
            r <= CPU_RATIO,
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
            &format!("≤ {ADDED_P50_RATIO}× nginx"),
            r <= ADDED_P50_RATIO,
        );
    }
    let ttfb = |t: Target| {
        results
            .measured
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
            &format!("≤ {TTFB_RATIO}× nginx"),
            r <= TTFB_RATIO,
        );
    }
    out
}

/// Memory, size and start-up, in absolute terms.
fn footprint_checks(results: &Results) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |name: &str, measured: String, goal: &str, pass: bool| {
        out.push(Check::new(name, measured, goal, pass));
    };
    let m = &results.measured.memory;
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
    let growth_to = |kib: u64| (kib as f64 / m.warm_rss_kib as f64 - 1.0) * 100.0;
    let (growth, idle_growth) = (growth_to(m.after_rss_kib), growth_to(m.after_idle_rss_kib));
    // The definition: within 5% right after the load, or growth that the allocator
    // hands back once idle (retention, not a leak): the idle figure shows which.
    add(
        &format!(
            "RSS growth over {} requests, then {} s idle",
            m.leak_requests, m.idle_seconds
        ),
        format!(
            "{:.1} → {:.1} MiB ({growth:+.1}%) → {:.1} MiB idle ({idle_growth:+.1}%)",
            kib_to_mib(m.warm_rss_kib),
            kib_to_mib(m.after_rss_kib),
            kib_to_mib(m.after_idle_rss_kib)
        ),
        &format!("≤ +{RSS_GROWTH_PERCENT}%, or back within it when idle"),
        growth <= RSS_GROWTH_PERCENT || idle_growth <= RSS_GROWTH_PERCENT,
    );
    #[allow(clippy::cast_precision_loss, reason = "a file size")]
    let size = results.measured.sizes.binary_bytes as f64 / MIB;
    add(
        "stripped binary",
        format!("{size:.2} MiB"),
        "≤ 8 MiB",
        size <= 8.0,
    );
    let cold = median(&results.measured.cold_start_ms);
    add(
        "cold start to first /ping 200",
        format!("{cold:.1} ms (median)"),
        "≤ 20 ms",
        cold <= 20.0,
    );
    out
}
