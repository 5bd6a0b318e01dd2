//! The results as an SVG chart drawn by hand: latency (log scale) and CPU per request, for
//! every point.

use std::fmt::Write as _;

use super::stats::{Point, find};
use crate::bench::{Mode, Results, Target};

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

/// The chart's geometry, shared by its header and its two panels.
struct Layout {
    groups: Vec<(Mode, u32)>,
    width: f64,
    left: f64,
    right: f64,
    group_w: f64,
    bar_w: f64,
}

impl Layout {
    fn new(results: &Results) -> Self {
        let groups: Vec<(Mode, u32)> = Mode::ALL
            .iter()
            .flat_map(|&m| results.plan.concurrency.iter().map(move |&c| (m, c)))
            .collect();
        let (width, left, right) = (960.0, 80.0, 20.0);
        #[allow(clippy::cast_precision_loss, reason = "a handful of groups")]
        let group_w = (width - left - right) / groups.len().max(1) as f64;
        Self {
            groups,
            width,
            left,
            right,
            group_w,
            bar_w: group_w / 4.5,
        }
    }
}

/// Two panels: latency (log scale; bar = p50, ticks = p90 and p99) and CPU per request.
pub fn svg(results: &Results, points: &[Point]) -> String {
    let layout = Layout::new(results);
    let mut s = String::new();
    header(&mut s, results, &layout);
    latency_panel(&mut s, points, &layout);
    cpu_panel(&mut s, points, &layout);
    s.push_str("</svg>\n");
    s
}

/// The title, the machine and the legend.
fn header(s: &mut String, results: &Results, layout: &Layout) {
    let &Layout { width, left, .. } = layout;
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
}

/// Panel 1: latency, log scale.
fn latency_panel(s: &mut String, points: &[Point], layout: &Layout) {
    let (width, left, right) = (layout.width, layout.left, layout.right);
    let (groups, group_w, bar_w) = (&layout.groups, layout.group_w, layout.bar_w);
    let (top, height) = (90.0, 300.0);
    let (lo, hi) = decades(points);
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
}

/// The latency axis's range as powers of ten: whole decades around every p50 and p99.
fn decades(points: &[Point]) -> (f64, f64) {
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
    (lo, hi)
}

/// Panel 2: CPU per request, linear.
fn cpu_panel(s: &mut String, points: &[Point], layout: &Layout) {
    let (width, left, right) = (layout.width, layout.left, layout.right);
    let (groups, group_w, bar_w) = (&layout.groups, layout.group_w, layout.bar_w);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert!((nice_step(3.2) - 5.0).abs() < 1e-9);
        assert!((nice_step(12.0) - 20.0).abs() < 1e-9);
        assert!((nice_step(0.7) - 1.0).abs() < 1e-9);
    }
}
