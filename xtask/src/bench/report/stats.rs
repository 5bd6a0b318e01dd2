//! The run's numbers reduced: nearest-rank percentiles, MiB from KiB, and per point the
//! medians over rounds.

use serde::Serialize;

use crate::bench::{Mode, Results, Sample, Target};

pub const MIB: f64 = 1024.0 * 1024.0;

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile; NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
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
pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Medians over rounds for one (mode, concurrency, target).
#[derive(Serialize)]
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
                        .measured
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

pub fn find(points: &[Point], mode: Mode, c: u32, target: Target) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.mode == mode && p.connections == c && p.target == target)
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
}
